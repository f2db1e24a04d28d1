//! The daemon end to end: `codedeploy-agent run` against the emulator and moto (SigV4 on).

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::{CommandState, DeploymentStatus, FaultKind, FaultRule};
use common::*;
use daemon_support::*;
use nix::sys::signal::Signal;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

/// The seed app moved under `base`, zipped.
struct Seed {
    app: SeedApp,
    zip: PathBuf,
}

fn seed_zip(base: &Path, name: &str) -> Seed {
    let app = seed_app(base, name);
    let zip = base.join(format!("{name}.zip"));
    make_zip(&app.bundle, &zip);
    Seed { app, zip }
}

fn names(cmds: &[codedeploy_emulator::Command]) -> Vec<String> {
    cmds.iter()
        .map(|c| format!("{}:{:?}", c.name, c.state))
        .collect()
}

#[test]
fn seed_app_deploys_from_an_s3_zip_pinned_by_version_and_etag() {
    let Some(w) = World::new() else { return };
    let seed = seed_zip(w.path(), "seed");
    let (version, etag) = w.upload("seed.zip", fs::read(&seed.zip).unwrap());
    let _agent = w.agent();
    let id = w.deploy(w.s3_request("seed.zip", "zip", &version, &etag));
    let d = w.wait_done(&id, LONG);
    let cmds = w.commands(&id);
    assert_eq!(
        d.status,
        DeploymentStatus::Succeeded,
        "{:?}\n{}",
        names(&cmds),
        w.agent_log()
    );
    let expected = [
        "ApplicationStop",
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ];
    assert_eq!(
        cmds.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert!(cmds.iter().all(succeeded));
    // ApplicationStop of a first deployment is a noop, and said so at acknowledgement.
    assert_eq!(cmds[0].noop, Some(true));
    assert_eq!(cmds[2].noop, Some(false));
    assert_eq!(
        diagnostics(&cmds[6]),
        serde_json::json!({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""})
    );
    assert_eq!(
        http_get_status(seed.app.port, "/health").as_deref(),
        Some("HTTP/1.0 200 OK")
    );
    assert!(seed.app.dest.join("public/installed_at").is_file());
    // The official layout, as users' scripts read it.
    let group_dirs: Vec<_> = fs::read_dir(w.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        group_dirs.iter().any(|n| n == "deployment-instructions"),
        "{group_dirs:?}"
    );
    assert!(
        group_dirs.iter().any(|n| n == "deployment-logs"),
        "{group_dirs:?}"
    );
}

#[test]
fn failed_validate_service_is_rolled_back_to_the_previous_revision() {
    let Some(w) = World::new() else { return };
    let good = seed_zip(w.path(), "good");
    let (v1, e1) = w.upload("app.zip", fs::read(&good.zip).unwrap());
    // Revision 2: same app, but its health check fails and it ships an extra file.
    let bad_dir = w.path().join("bad");
    copy_tree(&w.path().join("good"), &bad_dir);
    write(
        &bad_dir.join("scripts/health_check.sh"),
        "#!/bin/bash\necho unhealthy\nexit 1\n",
        true,
    );
    write(&bad_dir.join("public/only-in-bad.txt"), "bad", false);
    let bad_zip = w.path().join("bad.zip");
    make_zip(&bad_dir, &bad_zip);
    let (v2, e2) = w.upload("app.zip", fs::read(&bad_zip).unwrap());
    let _agent = w.agent();
    let first = w.deploy(w.s3_request("app.zip", "zip", &v1, &e1));
    assert_eq!(
        w.wait_done(&first, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    let mut req = w.s3_request("app.zip", "zip", &v2, &e2);
    req.auto_rollback = true;
    let second = w.deploy(req);
    let d = w.wait_done(&second, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed);
    let cmds = w.commands(&second);
    let failed = cmds
        .iter()
        .find(|c| c.state == CommandState::Failed)
        .expect("a failed command");
    assert_eq!(failed.name, "ValidateService");
    let diag = diagnostics(failed);
    assert_eq!(diag["error_code"], 4, "{diag}");
    assert_eq!(diag["script_name"], "scripts/health_check.sh");
    assert!(
        diag["log"].as_str().unwrap().contains("[stdout]unhealthy"),
        "{diag}"
    );
    let rollback = d
        .rolled_back_by
        .clone()
        .expect("an automatic rollback deployment");
    let r = w.wait_done(&rollback, LONG);
    assert_eq!(
        r.status,
        DeploymentStatus::Succeeded,
        "{:?}\n{}",
        names(&w.commands(&rollback)),
        w.agent_log()
    );
    assert!(
        !good.app.dest.join("public/only-in-bad.txt").exists(),
        "the failed revision's files are gone"
    );
    assert_eq!(
        http_get_status(good.app.port, "/health").as_deref(),
        Some("HTTP/1.0 200 OK")
    );
}

#[test]
fn tampered_spec_is_refused_and_reported() {
    let Some(w) = World::new() else { return };
    let seed = seed_zip(w.path(), "seed");
    let (v, e) = w.upload("seed.zip", fs::read(&seed.zip).unwrap());
    w.emu.inject_fault(FaultRule::new(
        "GetDeploymentSpecification",
        FaultKind::TamperSpec,
        1,
    ));
    let _agent = w.agent();
    let id = w.deploy(w.s3_request("seed.zip", "zip", &v, &e));
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed);
    let cmds = w.commands(&id);
    assert_eq!(cmds.len(), 1, "{:?}", names(&cmds));
    assert_eq!(cmds[0].state, CommandState::Failed);
    let diag = diagnostics(&cmds[0]);
    assert_eq!(diag["error_code"], 5);
    assert!(
        diag["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("signature"),
        "{diag}"
    );
    assert!(
        cmds[0].acked_ms.is_none(),
        "a refused spec is never acknowledged"
    );
    assert!(!seed.app.dest.exists(), "nothing was installed");
}

#[test]
fn throttling_and_server_faults_lose_no_result() {
    let Some(w) = World::new() else { return };
    // Throttled calls wait wait_after_throttle_error (60 s by default); 1 s keeps this quick.
    w.write_config(&["wait_after_throttle_error: 1"]);
    let seed = seed_zip(w.path(), "seed");
    let (v, e) = w.upload("seed.zip", fs::read(&seed.zip).unwrap());
    w.emu
        .inject_fault(FaultRule::new("PollHostCommand", FaultKind::Throttle, 2));
    w.emu.inject_fault(FaultRule::new(
        "PutHostCommandComplete",
        FaultKind::ServerError,
        2,
    ));
    w.emu.inject_fault(FaultRule::new(
        "PutHostCommandComplete",
        FaultKind::Throttle,
        1,
    ));
    w.emu.inject_fault(FaultRule::new(
        "PutHostCommandAcknowledgement",
        FaultKind::Drop,
        1,
    ));
    let _agent = w.agent();
    let id = w.deploy(w.s3_request("seed.zip", "zip", &v, &e));
    let d = w.wait_done(&id, Duration::from_secs(240));
    let cmds = w.commands(&id);
    // The dropped acknowledgement fails that one command (the agent reports it); every
    // injected completion fault is retried until the service takes the result.
    let log = w.agent_log();
    assert!(log.contains("retrying") || log.contains("Throttl"), "{log}");
    for c in &cmds {
        assert!(
            matches!(c.state, CommandState::Succeeded | CommandState::Failed),
            "command {} never got its result: {:?}",
            c.name,
            names(&cmds)
        );
        assert!(c.diagnostics.is_some(), "{} has no diagnostics", c.name);
    }
    let _ = d;
}

#[test]
fn sigkill_during_a_hook_then_restart_reports_code_7_and_the_next_deployment_works() {
    // A short idle poll: the killed agent's outstanding poll must be answered (into the void)
    // before the next deployment, or the emulator may hand it that deployment's first command.
    let poll_idle = Duration::from_millis(800);
    let Some(w) = World::with_poll_idle("arn:aws:iam::111122223333:user/host-1", poll_idle) else {
        return;
    };
    let dir = w.path().join("slow");
    let marker = format!("cd-e2e-slow-{}", std::process::id());
    struct Reap(String);
    impl Drop for Reap {
        fn drop(&mut self) {
            kill_marker(&self.0);
        }
    }
    let _reap = Reap(marker.clone());
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: slow.sh\n      timeout: 300\n",
        false,
    );
    write(
        &dir.join("slow.sh"),
        &format!("#!/bin/bash\necho waiting\nexec -a {marker} sleep 300\n"),
        true,
    );
    let tgz = w.path().join("slow.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("slow.tgz", fs::read(&tgz).unwrap());
    let mut agent = w.agent();
    let id = w.deploy(w.s3_request("slow.tgz", "tgz", &v, &e));
    assert!(
        eventually(LONG, || !pids_with_marker(&marker).is_empty()),
        "the hook never started\n{}",
        w.agent_log()
    );
    let tracking = w.root().join("ongoing-deployment");
    assert_eq!(
        fs::read_dir(&tracking).unwrap().count(),
        1,
        "a tracking file while the hook runs"
    );
    agent.signal(Signal::SIGKILL);
    agent.wait(Duration::from_secs(10)).expect("agent died");
    drop(agent);
    std::thread::sleep(poll_idle + Duration::from_millis(400));
    let _agent = w.agent();
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed);
    let cmds = w.commands(&id);
    let after = cmds
        .iter()
        .find(|c| c.name == "AfterInstall")
        .expect("AfterInstall issued");
    let diag = diagnostics(after);
    assert_eq!(diag["error_code"], 7, "{diag}");
    assert_eq!(
        diag["message"],
        "Failed: Failing in-progress lifecycle event after an agent restart."
    );
    // The service has the report before the agent, having heard back, clears the files:
    // wait for that, bounded.
    let cleared_by = std::time::Instant::now() + Duration::from_secs(10);
    while tracking.exists() && std::time::Instant::now() < cleared_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !tracking.exists(),
        "tracking files are cleared after recovery"
    );
    assert!(
        pids_with_marker(&marker).is_empty(),
        "the restart ended the interrupted hook"
    );
    // The group is usable again.
    let ok_dir = w.path().join("ok");
    write(
        &ok_dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: ok.sh\n",
        false,
    );
    write(&ok_dir.join("ok.sh"), "#!/bin/sh\necho fine\n", true);
    let ok_tgz = w.path().join("ok.tgz");
    make_tgz(&ok_dir, &ok_tgz);
    let (v2, e2) = w.upload("ok.tgz", fs::read(&ok_tgz).unwrap());
    let next = w.deploy(w.s3_request("ok.tgz", "tgz", &v2, &e2));
    assert_eq!(
        w.wait_done(&next, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
}

#[test]
fn sigterm_during_a_long_hook_lets_it_finish_then_exits_and_reports() {
    let Some(w) = World::new() else { return };
    let dir = w.path().join("long");
    let done = w.path().join("hook-finished");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: long.sh\n      timeout: 60\n",
        false,
    );
    write(
        &dir.join("long.sh"),
        &format!(
            "#!/bin/bash\necho started > {p}.started\nsleep 3\necho done > {p}\n",
            p = done.display()
        ),
        true,
    );
    let tgz = w.path().join("long.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("long.tgz", fs::read(&tgz).unwrap());
    let mut agent = w.agent();
    let id = w.deploy(w.s3_request("long.tgz", "tgz", &v, &e));
    let started = PathBuf::from(format!("{}.started", done.display()));
    assert!(
        eventually(LONG, || started.exists()),
        "hook never started\n{}",
        w.agent_log()
    );
    agent.signal(Signal::SIGTERM);
    let status = agent
        .wait(Duration::from_secs(60))
        .expect("the agent exits after the hook");
    assert!(status.success(), "{status:?}\n{}", w.agent_log());
    assert!(done.exists(), "the running hook was allowed to finish");
    let cmds = w.commands(&id);
    let after = cmds
        .iter()
        .find(|c| c.name == "AfterInstall")
        .expect("issued");
    assert_eq!(after.state, CommandState::Succeeded, "{:?}", names(&cmds));
    // Polling stopped: nothing after AfterInstall was taken by this agent.
    assert!(
        cmds.iter()
            .all(|c| c.name != "ApplicationStart" || c.state == CommandState::Pending),
        "{:?}",
        names(&cmds)
    );
}

/// A tgz whose AfterInstall hook appends "<tag> start|end <unix ns>" lines to `log`,
/// sleeping `secs` in between.
fn timed_bundle(w: &World, tag: &str, log: &Path, secs: u32) -> (String, String, String) {
    let dir = w.path().join(tag);
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: hook.sh\n      timeout: 120\n",
        false,
    );
    write(
        &dir.join("hook.sh"),
        &format!(
            "#!/bin/bash\necho \"{tag} start $(date +%s%N)\" >> {l}\nsleep {secs}\necho \"{tag} end $(date +%s%N)\" >> {l}\n",
            l = log.display()
        ),
        true,
    );
    let tgz = w.path().join(format!("{tag}.tgz"));
    make_tgz(&dir, &tgz);
    let key = format!("{tag}.tgz");
    let (v, e) = w.upload(&key, fs::read(&tgz).unwrap());
    (key, v, e)
}

fn stamp(lines: &str, what: &str) -> u128 {
    lines
        .lines()
        .find(|l| l.starts_with(what))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what:?} in {lines}"))
}

#[test]
fn two_deployment_groups_deploy_at_the_same_time() {
    let Some(w) = World::new() else { return };
    // The same host, in a second group (same keys: the emulator adds the group).
    w.emu
        .register(codedeploy_emulator::HostRegistration {
            host_id: w.host_id.clone(),
            access_key: w.moto.access_key_id.clone(),
            secret_key: w.moto.secret_access_key.clone(),
            session_token: None,
            group: "second".into(),
        })
        .unwrap();
    let log = w.path().join("hooks.log");
    let (ka, va, ea) = timed_bundle(&w, "alpha", &log, 3);
    let (kb, vb, eb) = timed_bundle(&w, "beta", &log, 3);
    let _agent = w.agent();
    let a = w.deploy(w.s3_request(&ka, "tgz", &va, &ea));
    let mut rb = w.s3_request(&kb, "tgz", &vb, &eb);
    rb.group = "second".into();
    let b = w.deploy(rb);
    assert_eq!(
        w.wait_done(&a, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    assert_eq!(
        w.wait_done(&b, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    let lines = fs::read_to_string(&log).unwrap();
    let (a0, a1) = (stamp(&lines, "alpha start"), stamp(&lines, "alpha end"));
    let (b0, b1) = (stamp(&lines, "beta start"), stamp(&lines, "beta end"));
    assert!(
        a0 < b1 && b0 < a1,
        "the two groups' hooks overlapped in time:\n{lines}"
    );
    // Each group has its own directory and pointer files.
    let groups: Vec<String> = [&a, &b]
        .iter()
        .map(|id| w.emu.deployment(id).unwrap().group_id)
        .collect();
    for g in &groups {
        assert!(w
            .root()
            .join("deployment-instructions")
            .join(format!("{g}_last_successful_install"))
            .is_file());
    }
}

#[test]
fn a_command_delivered_again_while_it_runs_runs_once() {
    let Some(w) = World::new() else { return };
    let log = w.path().join("hooks.log");
    let (k, v, e) = timed_bundle(&w, "once", &log, 3);
    let _agent = w.agent();
    let id = w.deploy(w.s3_request(&k, "tgz", &v, &e));
    assert!(eventually(LONG, || fs::read_to_string(&log)
        .is_ok_and(|s| s.contains("once start"))));
    w.emu
        .inject_fault(FaultRule::new("PollHostCommand", FaultKind::Redeliver, 1));
    assert!(
        eventually(Duration::from_secs(30), || w.emu.faults().is_empty()),
        "the command was re-delivered"
    );
    assert_eq!(
        w.wait_done(&id, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    let lines = fs::read_to_string(&log).unwrap();
    assert_eq!(lines.matches("once start").count(), 1, "{lines}");
    assert!(
        w.agent_log().contains("delivered again while it runs"),
        "{}",
        w.agent_log()
    );
}
