//! Black-box tests of hook containment with real processes: timeouts and open outputs end
//! every process the hook started (setsid daemons and TERM-ignoring ones included), with
//! cgroups and with the fallback; a successful hook's daemon survives; runas switches user.

#[path = "support/hooks.rs"]
mod hooks_common;

use codedeploy_agent::diagnostics::ErrorCode;
use codedeploy_agent::hooks::{Containment, HookProgress};
use hooks_common::{pids_with, script, wait_for, Fixture};

/// A hook that starts a setsid daemon (which ignores SIGTERM) and then hangs.
fn timed_out_daemon_leaves_nothing(containment: Containment) {
    let mut f = Fixture::new();
    let daemon = f.marker();
    let main = f.marker();
    f.script(
        "hang.sh",
        &format!(
            "#!/bin/bash\nsetsid bash -c 'trap \"\" TERM; exec -a {daemon} sleep 1000' </dev/null >/dev/null 2>&1 &\n\
             echo started\nexec -a {main} sleep 1000\n"
        ),
        0o755,
    );
    let ctx = f.ctx("ApplicationStart", containment);
    let (r, seen) = f.run(&ctx, &[script("hang.sh", 1)]);
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptTimedOut, "{e:?}");
    assert_eq!(
        e.message,
        "Script at specified location: hang.sh failed to complete in 1 seconds"
    );
    assert!(e.log_tail.ends_with("[stdout]started\n"), "{}", e.log_tail);
    assert!(pids_with(&daemon).is_empty(), "setsid daemon survived");
    assert!(pids_with(&main).is_empty(), "hook process survived");
    assert!(matches!(
        seen.last().unwrap(),
        HookProgress::ScriptFinished {
            code: ErrorCode::ScriptTimedOut,
            exit: None,
            ..
        }
    ));
}

#[test]
fn timeout_kills_setsid_daemon_with_cgroup() {
    timed_out_daemon_leaves_nothing(Containment::Auto);
}

#[test]
fn timeout_kills_setsid_daemon_with_fallback() {
    timed_out_daemon_leaves_nothing(Containment::ProcessGroup);
}

fn outputs_left_open(containment: Containment) {
    let mut f = Fixture::new();
    let holder = f.marker();
    f.script(
        "leaky.sh",
        &format!("#!/bin/bash\nbash -c 'exec -a {holder} sleep 1000' &\necho leaving\nexit 0\n"),
        0o755,
    );
    let (r, _) = f.run(
        &f.ctx("ApplicationStart", containment),
        &[script("leaky.sh", 1)],
    );
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::OutputsLeftOpen, "{e:?}");
    assert_eq!(
        e.message,
        "Script at specified location: leaky.sh failed to close STDOUT"
    );
    assert!(
        pids_with(&holder).is_empty(),
        "holder of the outputs survived"
    );
}

#[test]
fn outputs_left_open_is_code_6_with_cgroup() {
    outputs_left_open(Containment::Auto);
}

#[test]
fn outputs_left_open_is_code_6_with_fallback() {
    outputs_left_open(Containment::ProcessGroup);
}

fn successful_daemon_survives(containment: Containment) {
    let mut f = Fixture::new();
    let daemon = f.marker();
    f.script(
        "start.sh",
        &format!(
            "#!/bin/bash\nsetsid nohup bash -c 'exec -a {daemon} sleep 1000' </dev/null >/dev/null 2>&1 &\necho up\n"
        ),
        0o755,
    );
    let (r, _) = f.run(
        &f.ctx("ApplicationStart", containment.clone()),
        &[script("start.sh", 30)],
    );
    let report = r.unwrap();
    let pids = wait_for(&daemon);
    assert!(
        !pids.is_empty(),
        "the daemon did not survive its successful hook"
    );
    if containment == Containment::Auto {
        if let Some(cg) = &report.scripts[0].cgroup {
            let members = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
            assert!(pids
                .iter()
                .any(|p| members.lines().any(|m| m == p.to_string())));
        }
    }
    // Fixture drop kills the daemon.
}

#[test]
fn successful_hook_keeps_its_daemon_with_cgroup() {
    successful_daemon_survives(Containment::Auto);
}

#[test]
fn successful_hook_keeps_its_daemon_with_fallback() {
    successful_daemon_survives(Containment::ProcessGroup);
}

#[test]
fn runas_nobody_runs_as_nobody_with_its_environment() {
    let f = Fixture::new();
    f.script(
        "who.sh",
        "#!/bin/sh\necho \"user=$(id -un) USER=$USER LOGNAME=$LOGNAME HOME=$HOME\"\nread x && echo \"stdin had $x\" || echo stdin closed\n",
        0o755,
    );
    let mut s = script("who.sh", 30);
    s.runas = Some("nobody".into());
    let (r, _) = f.run(&f.ctx("ApplicationStart", Containment::Auto), &[s]);
    r.unwrap();
    let home = nix::unistd::User::from_name("nobody").unwrap().unwrap().dir;
    let log = f.scripts_log_text();
    assert!(
        log.contains(&format!(
            "[stdout]user=nobody USER=nobody LOGNAME=nobody HOME={}\n",
            home.display()
        )),
        "{log}"
    );
    assert!(log.contains("[stdout]stdin closed\n"), "{log}");
}

#[test]
fn agent_shutdown_ends_the_running_hook_and_everything_it_started() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut f = Fixture::new();
    let daemon = f.marker();
    f.script(
        "long.sh",
        &format!(
            "#!/bin/bash\nsetsid bash -c 'exec -a {daemon} sleep 1000' </dev/null >/dev/null 2>&1 &\nsleep 1000\n"
        ),
        0o755,
    );
    f.script("next.sh", "#!/bin/sh\necho should not run\n", 0o755);
    let cancel = Arc::new(AtomicBool::new(false));
    let mut ctx = f.ctx("ApplicationStart", Containment::Auto);
    ctx.cancel = Some(cancel.clone());
    let stopper = {
        let daemon = daemon.clone();
        std::thread::spawn(move || {
            // Stop the agent once the hook's daemon is up (bounded wait).
            let up = !wait_for(&daemon).is_empty();
            cancel.store(true, Ordering::Relaxed);
            up
        })
    };
    let (r, _) = f.run(&ctx, &[script("long.sh", 600), script("next.sh", 600)]);
    assert!(stopper.join().unwrap(), "the hook's daemon never started");
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownError);
    assert_eq!(
        e.message,
        "Script at specified location: long.sh was stopped because the agent is shutting down"
    );
    assert!(
        pids_with(&daemon).is_empty(),
        "daemon survived the shutdown"
    );
    assert!(!f.scripts_log_text().contains("should not run"));
}
