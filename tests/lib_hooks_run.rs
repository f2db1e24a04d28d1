//! Black-box tests of running hook scripts: codes and messages
//! (docs/behaviour/protocol.md#diagnostics-payload, docs/behaviour/hooks.md#running-an-event,
//! docs/behaviour/hooks.md#hook-process), the environment, and both logs
//! (docs/behaviour/hooks.md#scripts-log, docs/behaviour/layout.md#deployments-log).

#[path = "support/hooks.rs"]
mod hooks_common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use codedeploy_agent::diagnostics::ErrorCode;
use codedeploy_agent::hooks::{
    own_cgroup_dir, Containment, ExitStatusDescr, HookProgress, HOOKS_CGROUP_DIR,
};
use hooks_common::{script, Fixture};

fn is_timestamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && b[19] == b' '
}

#[test]
fn success_writes_both_logs_in_the_official_format() {
    let f = Fixture::new();
    f.script(
        "scripts/start.sh",
        "#!/bin/sh\necho \"event=$LIFECYCLE_EVENT id=$DEPLOYMENT_ID app=$APPLICATION_NAME grp=$DEPLOYMENT_GROUP_NAME gid=$DEPLOYMENT_GROUP_ID\"\n\
         printf '\\033[1;32mgreen\\033[0m\\n'\necho oops >&2\n",
        0o755,
    );
    // Alone in its script, so the stdout/stderr race cannot reorder it.
    f.script("scripts/tail.sh", "#!/bin/sh\nprintf 'no newline'\n", 0o755);
    let ctx = f.ctx("ApplicationStart", Containment::Auto);
    let (r, seen) = f.run(
        &ctx,
        &[
            script("scripts/start.sh", 30),
            script("scripts/tail.sh", 30),
        ],
    );
    let report = r.unwrap();
    assert_eq!(report.scripts.len(), 2);
    assert_eq!(report.scripts[0].exit, ExitStatusDescr::Code(0));
    assert_eq!(report.scripts[0].survivors, 0);
    assert_eq!(report.scripts[0].cgroup, None);

    let text = f.scripts_log_text();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(lines.iter().all(|l| is_timestamped(l)), "{text}");
    let entries: Vec<&str> = lines.iter().map(|l| &l[20..]).collect();
    assert_eq!(entries[0], "LifecycleEvent - ApplicationStart\n");
    assert_eq!(entries[1], "Script - scripts/start.sh\n");
    assert!(
        entries.contains(&"[stdout]event=ApplicationStart id=d-TEST app=app grp=grp gid=gid-1\n")
    );
    assert!(entries.contains(&"[stdout]green\n"), "{text}");
    assert!(entries.contains(&"[stderr]oops\n"));
    assert_eq!(entries[5], "Script - scripts/tail.sh\n");
    assert_eq!(*entries.last().unwrap(), "[stdout]no newline");
    assert_eq!(lines.len(), 7);

    let dlog = fs::read_to_string(&f.deployments_log).unwrap();
    let dlines: Vec<&str> = dlog.lines().collect();
    assert_eq!(dlines.len(), 7, "{dlog}");
    assert!(
        dlines[0].starts_with('[')
            && dlines[0].ends_with("] [d-TEST]LifecycleEvent - ApplicationStart")
    );
    assert_eq!(&dlines[0][24..26], "] ", "{}", dlines[0]);
    assert!(dlines.iter().any(|l| l.ends_with("[d-TEST][stdout]green")));
    assert!(dlines[6].ends_with("[d-TEST][stdout]no newline"));

    assert!(report
        .log_tail
        .starts_with("LifecycleEvent - ApplicationStart\nScript - scripts/start.sh\n"));
    assert!(
        matches!(&seen[0], HookProgress::ScriptStarted { location, index: 1, count: 2, timeout_secs: 30 } if location == "scripts/start.sh")
    );
    assert!(matches!(
        seen.last().unwrap(),
        HookProgress::ScriptFinished {
            code: ErrorCode::Succeeded,
            ..
        }
    ));
    assert!(seen
        .iter()
        .any(|p| matches!(p, HookProgress::Output { line, .. } if line == "green\n")));
}

#[test]
fn environment_has_revision_vars_and_no_agent_credentials() {
    // Set once for this test binary; the other tests do not look at these names.
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "agent-secret");
    std::env::set_var("NOTIFY_SOCKET", "/run/systemd/notify");
    std::env::set_var("BUNDLE_ETAG", "stale");
    let f = Fixture::new();
    f.script(
        "env.sh",
        "#!/bin/sh\ncat /proc/self/cgroup | grep ^0:: | sed s/^/cg=/\necho \"secret=${AWS_SECRET_ACCESS_KEY-unset} notify=${NOTIFY_SOCKET-unset} bucket=$BUNDLE_BUCKET etag=${BUNDLE_ETAG-unset} cwd=$(pwd)\"\n",
        0o755,
    );
    let mut ctx = f.ctx("AfterInstall", Containment::Auto);
    ctx.revision_env = vec![("BUNDLE_BUCKET".into(), "my-bucket".into())];
    let (r, _) = f.run(&ctx, &[script("env.sh", 30)]);
    r.unwrap();
    let expected = format!(
        "[stdout]secret=unset notify=unset bucket=my-bucket etag=unset cwd={}\n",
        f.archive.display()
    );
    let log = f.scripts_log_text();
    assert!(log.contains(&expected), "{log}");
    // Where the host allows cgroup v2, the hook ran in its own cgroup.
    let own = own_cgroup_dir(
        &fs::read_to_string("/proc/self/mountinfo").unwrap(),
        &fs::read_to_string("/proc/self/cgroup").unwrap(),
    );
    if own.is_some_and(|d| d.join(HOOKS_CGROUP_DIR).is_dir()) {
        assert!(
            // A parallel test may hold the plain name; then a `.N` suffix is added.
            log.contains(&format!("cg=0::/{HOOKS_CGROUP_DIR}/d-TEST.AfterInstall.0")),
            "{log}"
        );
    }
}

#[test]
fn failing_script_is_code_4_with_exit_code_and_tail_and_stops_the_event() {
    let f = Fixture::new();
    f.script("fail.sh", "#!/bin/sh\necho before failing\nexit 3\n", 0o755);
    f.script("never.sh", "#!/bin/sh\necho never\n", 0o755);
    let ctx = f.ctx("ValidateService", Containment::Auto);
    let (r, _) = f.run(&ctx, &[script("fail.sh", 30), script("never.sh", 30)]);
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    assert_eq!(e.script_name, "fail.sh");
    assert_eq!(
        e.message,
        "Script at specified location: fail.sh failed with exit code 3"
    );
    assert_eq!(e.exit, Some(ExitStatusDescr::Code(3)));
    assert_eq!(
        e.log_tail,
        "LifecycleEvent - ValidateService\nScript - fail.sh\n[stdout]before failing\n"
    );
    assert!(!f.scripts_log_text().contains("never"));
    let payload = e.diagnostics().to_payload();
    assert!(payload.starts_with(r#"{"error_code":4,"script_name":"fail.sh","message":"Script at"#));
}

#[test]
fn script_killed_by_a_signal_names_the_signal() {
    let f = Fixture::new();
    f.script("kill.sh", "#!/bin/sh\nkill -9 $$\n", 0o755);
    let (r, _) = f.run(
        &f.ctx("ApplicationStart", Containment::Auto),
        &[script("kill.sh", 30)],
    );
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    assert_eq!(e.exit, Some(ExitStatusDescr::Signal(9)));
    assert_eq!(
        e.message,
        "Script at specified location: kill.sh was killed by signal 9 (SIGKILL)"
    );
}

#[test]
fn missing_script_is_code_1_with_the_expanded_path() {
    let f = Fixture::new();
    let (r, _) = f.run(
        &f.ctx("BeforeInstall", Containment::Auto),
        &[script("scripts/../nope.sh", 30)],
    );
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptMissing);
    assert_eq!(
        e.message,
        format!(
            "Script does not exist at specified location: {}/nope.sh",
            f.archive.display()
        )
    );
    assert_eq!(e.log_tail, "LifecycleEvent - BeforeInstall\n");
}

#[test]
fn a_location_outside_the_archive_is_refused() {
    let f = Fixture::new();
    let outside = f.dir.path().join("outside.sh");
    fs::write(&outside, "#!/bin/sh\necho escaped\n").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&outside, f.archive.join("link.sh")).unwrap();
    for loc in ["../../outside.sh", "link.sh"] {
        let (r, _) = f.run(
            &f.ctx("BeforeInstall", Containment::Auto),
            &[script(loc, 30)],
        );
        let e = r.unwrap_err();
        assert_eq!(e.code, ErrorCode::ScriptMissing, "{loc}");
        assert!(
            e.message.contains("outside the deployment archive"),
            "{}",
            e.message
        );
    }
    assert!(!f.scripts_log_text().contains("escaped"));
}

#[test]
fn non_executable_script_is_made_executable_and_one_without_shebang_runs_via_sh() {
    let f = Fixture::new();
    f.script("plain.sh", "#!/bin/sh\necho made executable\n", 0o644);
    f.script("noshebang.sh", "echo ran by sh\n", 0o755);
    let (r, _) = f.run(
        &f.ctx("AfterInstall", Containment::Auto),
        &[script("plain.sh", 30), script("noshebang.sh", 30)],
    );
    r.unwrap();
    let mode = fs::metadata(f.archive.join("plain.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let log = f.scripts_log_text();
    assert!(log.contains("[stdout]made executable\n"));
    assert!(log.contains("[stdout]ran by sh\n"));
}

#[test]
fn script_that_cannot_be_made_executable_is_code_2() {
    let f = Fixture::new();
    f.script("locked.sh", "#!/bin/sh\necho hi\n", 0o644);
    let target = f.archive.join("locked.sh");
    // An immutable file refuses chmod even to root.
    let ok = Command::new("chattr")
        .arg("+i")
        .arg(&target)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chattr +i is needed for this test (ext4 tmp)");
    let (r, _) = f.run(
        &f.ctx("AfterInstall", Containment::Auto),
        &[script("locked.sh", 30)],
    );
    Command::new("chattr")
        .arg("-i")
        .arg(&target)
        .status()
        .unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptNotExecutable);
    assert_eq!(
        e.message,
        "Unable to set script at specified location: locked.sh as executable"
    );
}

#[test]
fn unknown_runas_user_is_code_4() {
    let f = Fixture::new();
    f.script("s.sh", "#!/bin/sh\necho hi\n", 0o755);
    let mut s = script("s.sh", 30);
    s.runas = Some("no-such-user-xyz".into());
    let (r, _) = f.run(&f.ctx("AfterInstall", Containment::Auto), &[s]);
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    assert_eq!(
        e.message,
        "Script at specified location: s.sh run as user no-such-user-xyz failed with error user no-such-user-xyz does not exist"
    );
}

#[test]
fn scripts_log_rotates_by_size_and_noop_writes_nothing() {
    let f = Fixture::new();
    let (r, _) = f.run(&f.ctx("AfterInstall", Containment::Auto), &[]);
    assert!(r.unwrap().scripts.is_empty());
    assert!(!f.scripts_log.exists());

    f.script(
        "chatty.sh",
        "#!/bin/sh\ni=0\nwhile [ $i -lt 50 ]; do echo line $i; i=$((i+1)); done\n",
        0o755,
    );
    let mut ctx = f.ctx("AfterInstall", Containment::Auto);
    ctx.scripts_log_max_bytes = 500;
    let (r, _) = f.run(&ctx, &[script("chatty.sh", 30)]);
    r.unwrap();
    let current = fs::metadata(&f.scripts_log).unwrap().len();
    assert!(current <= 500);
    let rotated = f.scripts_log.with_file_name("scripts.log.1");
    assert!(fs::read_to_string(rotated)
        .unwrap()
        .contains("[stdout]line"));
    assert!(f.scripts_log_text().ends_with("[stdout]line 49\n"));
}

#[test]
fn a_final_line_without_newline_is_continued_by_the_next_entry() {
    let f = Fixture::new();
    f.script("a.sh", "#!/bin/sh\nprintf partial\n", 0o755);
    f.script("b.sh", "#!/bin/sh\necho next\n", 0o755);
    let (r, _) = f.run(
        &f.ctx("AfterInstall", Containment::Auto),
        &[script("a.sh", 30), script("b.sh", 30)],
    );
    r.unwrap();
    let text = f.scripts_log_text();
    let joined = text
        .lines()
        .find(|l| l.contains("[stdout]partial"))
        .unwrap();
    assert!(joined.ends_with(" Script - b.sh"), "{text}");
    assert!(is_timestamped(
        &joined[joined.find("partial").unwrap() + 7..]
    ));
}

#[test]
fn a_reboot_request_stops_the_event_and_a_leftover_request_is_never_taken() {
    let f = Fixture::new();
    let asks = "#!/bin/sh\necho \"$CODEDEPLOY_REBOOT_REQUEST\" > \"$0.seen\"\ntouch \"$CODEDEPLOY_REBOOT_REQUEST\"\n";
    f.script("one.sh", "#!/bin/sh\nexit 0\n", 0o755);
    f.script("two.sh", asks, 0o755);
    f.script("three.sh", "#!/bin/sh\ntouch \"$0.ran\"\n", 0o755);
    let requests = f.dir.path().join("reboot-request");
    let mut ctx = f.ctx("AfterInstall", Containment::Auto);
    ctx.reboot_requests = Some(requests.clone());
    // A request left behind for the first script (an earlier run) is removed before it runs.
    let leftover = codedeploy_agent::hooks::reboot_request_path(&requests, "AfterInstall", 0);
    fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    fs::write(&leftover, "old").unwrap();
    let scripts = [
        script("one.sh", 30),
        script("two.sh", 30),
        script("three.sh", 30),
    ];
    let (r, _) = f.run(&ctx, &scripts);
    let report = r.unwrap();
    let ask = report.reboot.expect("two.sh asked for a reboot");
    assert_eq!(ask.location, "two.sh");
    assert_eq!(ask.next_script, 2);
    assert_eq!(report.scripts.len(), 2);
    assert!(
        !report.scripts[0].reboot_requested,
        "the leftover was not taken"
    );
    assert!(!leftover.exists());
    assert!(
        !f.archive.join("three.sh.ran").exists(),
        "the event stopped"
    );
    let seen = fs::read_to_string(f.archive.join("two.sh.seen")).unwrap();
    assert_eq!(
        seen.trim(),
        requests.join("AfterInstall.2/reboot").display().to_string()
    );

    // The resume: from the next script, which runs; nothing asks again.
    ctx.start_at = 2;
    let (r, _) = f.run(&ctx, &scripts);
    let report = r.unwrap();
    assert_eq!(report.reboot, None);
    assert_eq!(report.scripts.len(), 1);
    assert!(f.archive.join("three.sh.ran").exists());
}
