//! The daemon's logs: the size-rotated text file everywhere, with the deployment fields on
//! each line and hook output left out; journald fields where a journal is available.

use codedeploy_agent::config::Config;
use codedeploy_agent::hooks::{HookProgress, Stream};
use codedeploy_agent::logging::{self, LogTarget};
use std::process::Command;
use std::time::Duration;

fn emit_deployment_events(marker: &str) {
    let span = logging::command_span("hc-1", "d-LOGTEST", "g-1", "AfterInstall");
    let _entered = span.enter();
    tracing::info!(marker, "command received");
    let mut journal = logging::HookJournal::new(1000, std::path::Path::new("scripts.log"));
    journal.log(&HookProgress::ScriptStarted {
        location: "scripts/migrate.sh".into(),
        index: 1,
        count: 1,
        timeout_secs: 60,
    });
    journal.log(&HookProgress::Output {
        location: "scripts/migrate.sh".into(),
        stream: Stream::Stdout,
        line: format!("hook-says-{marker}\n"),
    });
}

#[test]
fn text_log_has_fields_rotates_and_skips_hook_output() {
    let t = tempfile::tempdir().unwrap();
    let cfg = Config {
        log_dir: t.path().join("log"),
        log_max_bytes: 2000,
        log_keep_files: 2,
        ..Config::default()
    };
    let path = cfg.log_dir.join("codedeploy-agent.log");
    let (sub, guard) = logging::daemon_subscriber(&cfg, LogTarget::File(path.clone())).unwrap();
    assert_eq!(guard.target, LogTarget::File(path.clone()));
    tracing::subscriber::with_default(sub, || {
        emit_deployment_events("m1");
        for i in 0..60 {
            tracing::info!("filler line {i} to make the log rotate");
        }
        emit_deployment_events("m2");
    });
    // Where the rotation boundary falls depends on the pid's digit count, so look at the
    // current file and both rotated ones, oldest first.
    let rotated = |n: u32| cfg.log_dir.join(format!("codedeploy-agent.log.{n}"));
    let text: String = [rotated(2), rotated(1), path.clone()]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let line = text
        .lines()
        .find(|l| l.contains("command received"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(&format!(
            "INFO  [codedeploy-agent({})]: ",
            std::process::id()
        )),
        "{line}"
    );
    for field in [
        "deployment_id=d-LOGTEST",
        "deployment_group_id=g-1",
        "lifecycle_event=AfterInstall",
        "host_command_id=hc-1",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(text.contains("script=scripts/migrate.sh"), "{text}");
    assert!(
        !text.contains("hook-says"),
        "hook output belongs to scripts.log: {text}"
    );
    assert!(rotated(1).is_file() && rotated(2).is_file());
    assert!(!rotated(3).exists());
    for n in [1, 2] {
        assert!(std::fs::metadata(rotated(n)).unwrap().len() <= 2000);
    }
}

#[test]
fn journald_fields_when_a_journal_is_available() {
    if !std::path::Path::new(logging::JOURNAL_SOCKET).exists() {
        println!(
            "SKIPPED: no journal here ({} is absent)",
            logging::JOURNAL_SOCKET
        );
        return;
    }
    let cfg = Config::default();
    let (sub, guard) = logging::daemon_subscriber(&cfg, LogTarget::Journald).unwrap();
    if guard.target != LogTarget::Journald {
        println!(
            "SKIPPED: journald did not accept a connection: {:?}",
            guard.fallback_reason
        );
        return;
    }
    let marker = format!("m{}", std::process::id());
    tracing::subscriber::with_default(sub, || emit_deployment_events(&marker));
    // The journal indexes asynchronously; bounded retries.
    for _ in 0..50 {
        let out = Command::new("journalctl")
            .args(["-o", "json", "--no-pager", "DEPLOYMENT_ID=d-LOGTEST"])
            .arg(format!("MARKER={marker}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().next() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["DEPLOYMENT_GROUP_ID"], "g-1");
            assert_eq!(v["LIFECYCLE_EVENT"], "AfterInstall");
            assert_eq!(v["HOST_COMMAND_ID"], "hc-1");
            let hook = Command::new("journalctl")
                .args([
                    "-o",
                    "cat",
                    "--no-pager",
                    "DEPLOYMENT_ID=d-LOGTEST",
                    "SCRIPT=scripts/migrate.sh",
                ])
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&hook.stdout)
                .contains(&format!("[stdout]hook-says-{marker}")));
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the journal never showed the event");
}
