//! `logs` and `status`, black box, against real deploy-local runs whose hook waits for the
//! test: output of a hook that is still running shows in `logs --follow` (started before the
//! deployment), and `status --json` names the running event and script, then lists the
//! finished local deployments with their result.

#[path = "support/common.rs"]
mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Upper bound for waiting on a child's output; a hang guard, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(90);

/// Kills and reaps the child on drop, so a failing test leaves nothing running.
struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Setup {
    sb: Sandbox,
    bundle: PathBuf,
    release: PathBuf,
}

/// A sandbox with pid_dir, and a bundle whose AfterInstall hook prints a line, waits until
/// the test creates `release` (at most 60 s), then prints another.
fn setup() -> Setup {
    let sb = Sandbox::new();
    let pid_dir = sb.path().join("pid");
    fs::create_dir_all(&pid_dir).unwrap();
    let mut cfg = fs::read_to_string(sb.config()).unwrap();
    cfg.push_str(&format!(":pid_dir: '{}'\n", pid_dir.display()));
    fs::write(sb.config(), cfg).unwrap();
    let release = sb.path().join("release");
    let bundle = sb.path().join("bundle");
    write(
        &bundle.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: quick.sh\n      timeout: 30\n    - location: slow.sh\n      timeout: 120\n",
        false,
    );
    write(
        &bundle.join("quick.sh"),
        "#!/bin/sh\necho quick-done\n",
        true,
    );
    write(
        &bundle.join("slow.sh"),
        &format!(
            "#!/bin/sh\necho first-line\ni=0\nwhile [ ! -e '{}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\necho second-line >&2\n",
            release.display()
        ),
        true,
    );
    Setup {
        sb,
        bundle,
        release,
    }
}

fn agent(sb: &Sandbox) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--config-file").arg(sb.config());
    c
}

fn start_deploy(s: &Setup) -> Reaped {
    let child = Command::new(BIN)
        .arg("deploy-local")
        .arg("-c")
        .arg(s.sb.config())
        .arg("-l")
        .arg(&s.bundle)
        .arg("-g")
        .arg("grp")
        .stdout(fs::File::create(s.sb.path().join("deploy.out")).unwrap())
        .stderr(fs::File::create(s.sb.path().join("deploy.err")).unwrap())
        .spawn()
        .unwrap();
    Reaped(child)
}

/// Lines of a child's stdout, read on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects lines until one contains `needle`; panics with what was seen otherwise.
fn wait_for(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !seen.iter().any(|l| l.contains(needle)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("never saw {needle:?}; got {seen:#?}"),
        }
    }
}

fn wait_exit(mut child: Reaped) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "deploy-local did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_json(sb: &Sandbox) -> (serde_json::Value, Option<i32>) {
    let out = agent(sb).args(["status", "--json"]).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (v, out.status.code())
}

fn wait_until(cond: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scripts_log_has(root: &Path, needle: &str) -> bool {
    fs::read_dir(root.join("grp"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| {
            fs::read_to_string(d.path().join("logs/scripts.log")).is_ok_and(|t| t.contains(needle))
        })
}

#[test]
fn logs_follow_shows_a_running_hook_of_a_deployment_started_later() {
    let s = setup();
    let mut follow = agent(&s.sb)
        .args(["logs", "--follow", "--group", "grp"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut follow);
    let follow = Reaped(follow);
    let deploy = start_deploy(&s);
    let mut seen = Vec::new();
    let out = s.sb.path().join("deploy.out");
    let err = s.sb.path().join("deploy.err");
    let wait = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&rx, &mut seen, "[stdout]first-line")
    }));
    assert!(
        wait.is_ok(),
        "deploy-local said:\n{}{}",
        fs::read_to_string(&out).unwrap_or_default(),
        fs::read_to_string(&err).unwrap_or_default()
    );
    // The hook is still waiting for us, so this line came from a running hook.
    assert!(!s.release.exists());
    assert!(!seen.iter().any(|l| l.contains("second-line")));
    let first = seen.iter().find(|l| l.contains("first-line")).unwrap();
    assert!(first.contains("[grp/d-"), "{first}");
    fs::write(&s.release, "go").unwrap();
    wait_for(&rx, &mut seen, "[stderr]second-line");
    assert!(wait_exit(deploy).success());
    drop(follow);
    // Order is the hook's: event header, scripts, then output.
    let pos = |n: &str| seen.iter().position(|l| l.contains(n)).unwrap();
    assert!(pos("LifecycleEvent - AfterInstall") < pos("quick-done"));
    assert!(pos("quick-done") < pos("Script - slow.sh"));
    assert!(pos("first-line") < pos("second-line"));

    // Without --follow: the whole history, filtered by event.
    let out = agent(&s.sb)
        .args(["logs", "--event", "AfterInstall"])
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        all.contains("[stdout]first-line") && all.contains("[stderr]second-line"),
        "{all}"
    );
    let out = agent(&s.sb)
        .args(["logs", "--event", "BeforeInstall"])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

#[test]
fn status_json_reports_the_running_event_and_script() {
    let s = setup();
    let (idle, code) = status_json(&s.sb);
    assert_eq!(code, Some(3), "no agent runs: LSB 3");
    assert_eq!(idle["running"], false);
    assert_eq!(idle["local_deployments"], serde_json::json!([]));

    let deploy = start_deploy(&s);
    wait_until(
        || scripts_log_has(&s.sb.root(), "first-line"),
        "the slow hook",
    );
    let (running, code) = status_json(&s.sb);
    assert_eq!(code, Some(3));
    let local = &running["local_deployments"];
    assert_eq!(local.as_array().map(Vec::len), Some(1), "{running:#}");
    let p = &local[0]["in_progress"][0];
    assert_eq!(p["event"], "AfterInstall", "{running:#}");
    assert_eq!(p["script"], "slow.sh", "{running:#}");
    assert_eq!(p["script_index"], 2, "{running:#}");
    assert_eq!(p["deployment_group_id"], "grp");
    assert!(p["deployment_id"].as_str().unwrap().starts_with("d-"));
    let text_out = agent(&s.sb).arg("status").output().unwrap();
    let shown = String::from_utf8_lossy(&text_out.stdout);
    assert!(shown.contains("AfterInstall: slow.sh (2 of 2)"), "{shown}");

    fs::write(&s.release, "go").unwrap();
    assert!(wait_exit(deploy).success());
    let (after, _) = status_json(&s.sb);
    assert_eq!(
        after["local_deployments"],
        serde_json::json!([]),
        "{after:#}"
    );
    // The finished run is listed with its result; its progress file is gone.
    let recent = &after["recent_local_deployments"];
    assert_eq!(recent.as_array().map(Vec::len), Some(1), "{after:#}");
    assert_eq!(recent[0]["result"], "Succeeded", "{after:#}");
    assert_eq!(recent[0]["group_id"], "grp");
    let id = recent[0]["deployment_id"].as_str().unwrap().to_string();
    let left: Vec<String> = fs::read_dir(s.sb.path().join("pid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [format!("local-result-{id}.json")]);

    // A failing run is listed first, with the event and the message.
    write(
        &s.bundle.join("slow.sh"),
        "#!/bin/sh
echo broken >&2
exit 3
",
        true,
    );
    assert!(!wait_exit(start_deploy(&s)).success());
    let shown = agent(&s.sb).arg("status").output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    let listed: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.contains("latest local deployments:"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert_eq!(listed.len(), 2, "{shown}");
    assert!(
        listed[0].contains("(group grp, ") && listed[0].contains("): Failed in AfterInstall: "),
        "{shown}"
    );
    assert!(listed[1].contains(&format!("{id} (group grp, ")), "{shown}");
    assert!(listed[1].contains("): Succeeded ("), "{shown}");
}
