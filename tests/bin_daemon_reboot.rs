//! The daemon against the emulator (and moto, SigV4 on): a hook asks for a reboot
//! (docs/reboot.md). `reboot_command` is a script that records that it ran and SIGKILLs the
//! agent (its parent), the way a reboot ends it; the test then starts the agent again, as a
//! boot would. The command stays in progress at the service across the reboot, the event goes
//! on from the next script, and every command is completed Succeeded exactly once.
#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::DeploymentStatus;
use common::*;
use daemon_support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);
/// The emulator's idle long poll; after a "reboot" the test waits a little longer, so that no
/// command goes to the dead agent's outstanding poll.
const POLL_IDLE: Duration = Duration::from_millis(800);

/// A world whose `reboot_command` appends to `reboots` and kills the agent.
fn world() -> Option<(World, PathBuf)> {
    world_with_timeout(Duration::from_secs(300))
}

fn world_with_timeout(command_timeout: Duration) -> Option<(World, PathBuf)> {
    let w = World::with_timeouts(
        "arn:aws:iam::111122223333:user/host-1",
        POLL_IDLE,
        command_timeout,
    )?;
    let reboots = w.path().join("reboots");
    let script = w.path().join("fake-reboot.sh");
    write(
        &script,
        &format!(
            "#!/bin/sh\necho reboot >> {}\nkill -KILL $PPID\n",
            reboots.display()
        ),
        true,
    );
    w.write_config(&[&format!("reboot_command: {}", script.display())]);
    Some((w, reboots))
}

/// A script that logs `<event> <name>` and, with `reboot`, asks for a reboot.
fn script(log: &Path, name: &str, reboot: bool) -> String {
    format!(
        "#!/bin/sh\necho \"$LIFECYCLE_EVENT {name}\" >> {}\n{}",
        log.display(),
        if reboot {
            "touch \"$CODEDEPLOY_REBOOT_REQUEST\"\n"
        } else {
            ""
        }
    )
}

/// AfterInstall's first script asks for a reboot (a second follows), and so does
/// ApplicationStart's only (last) script.
fn publish_bundle(w: &World, log: &Path) -> String {
    let dir = w.path().join("app");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n  AfterInstall:\n    - location: b1.sh\n      timeout: 60\n    - location: b2.sh\n      timeout: 60\n  ApplicationStart:\n    - location: s1.sh\n  ValidateService:\n    - location: v.sh\n",
        false,
    );
    write(&dir.join("a.sh"), &script(log, "a", false), true);
    write(&dir.join("b1.sh"), &script(log, "b1", true), true);
    write(&dir.join("b2.sh"), &script(log, "b2", false), true);
    write(&dir.join("s1.sh"), &script(log, "s1", true), true);
    write(&dir.join("v.sh"), &script(log, "v", false), true);
    let tgz = w.path().join("app.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("app", fs::read(&tgz).unwrap());
    w.deploy(w.s3_request("app", "tgz", &v, &e))
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits for the fake reboot number `n` to have killed `agent`, then for the dead agent's
/// long poll to lapse.
fn rebooted(w: &World, agent: &mut Agent, reboots: &Path, n: usize) {
    assert!(
        eventually(LONG, || lines(reboots).len() >= n),
        "reboot {n} never came\n{}",
        w.agent_log()
    );
    assert!(
        agent.wait(Duration::from_secs(20)).is_some(),
        "the reboot ended the agent"
    );
    std::thread::sleep(POLL_IDLE + Duration::from_millis(400));
}

#[test]
fn the_deployment_goes_on_after_reboots_from_a_middle_script_and_from_application_start() {
    let Some((w, reboots)) = world() else {
        return;
    };
    let log = w.path().join("hooks.log");
    let mut agent = w.agent();
    let id = publish_bundle(&w, &log);
    rebooted(&w, &mut agent, &reboots, 1);
    assert_eq!(lines(&log), ["BeforeInstall a", "AfterInstall b1"]);
    let group = w.emu.deployment(&id).unwrap().group_id;
    let record = w
        .root()
        .join("deployment-instructions")
        .join(format!("{group}.reboot"));
    assert!(record.is_file(), "the record is written before the reboot");
    assert_eq!(
        w.emu.deployment_status(&id),
        Some(DeploymentStatus::InProgress),
        "the command stays in progress across the reboot"
    );

    let mut agent = w.agent();
    rebooted(&w, &mut agent, &reboots, 2);
    assert_eq!(
        lines(&log),
        [
            "BeforeInstall a",
            "AfterInstall b1",
            "AfterInstall b2",
            "ApplicationStart s1"
        ]
    );

    let _agent = w.agent();
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
    assert_eq!(
        lines(&log),
        [
            "BeforeInstall a",
            "AfterInstall b1",
            "AfterInstall b2",
            "ApplicationStart s1",
            "ValidateService v"
        ],
        "each script ran once"
    );
    assert_eq!(lines(&reboots).len(), 2);
    assert!(!record.exists());
    let cmds = w.commands(&id);
    assert!(!cmds.is_empty());
    for c in &cmds {
        assert!(succeeded(c), "{} {:?}\n{}", c.name, c.state, w.agent_log());
    }
    for event in ["AfterInstall", "ApplicationStart"] {
        assert_eq!(
            cmds.iter().filter(|c| c.name == event).count(),
            1,
            "{event} is one command, completed once"
        );
    }
    let history = w.emu.host_history(&w.host_id);
    let kinds: Vec<&str> = history
        .iter()
        .filter(|e| e.deployment_id == id)
        .map(|e| e.kind.as_str())
        .collect();
    assert!(
        !kinds.iter().any(|k| k.starts_with("DuplicateComplete")),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().filter(|k| **k == "Update").count() >= 4,
        "a note before each reboot and a question after it: {kinds:?}"
    );
}

#[test]
fn a_deployment_stopped_during_the_reboot_is_not_resumed() {
    let Some((w, reboots)) = world() else {
        return;
    };
    let log = w.path().join("hooks.log");
    let mut agent = w.agent();
    let id = publish_bundle(&w, &log);
    rebooted(&w, &mut agent, &reboots, 1);
    w.emu.stop_deployment(&id).expect("stop");
    let _agent = w.agent();
    let group = w.emu.deployment(&id).unwrap().group_id;
    assert_not_resumed(&w, &group, &log);
    assert_eq!(
        w.emu.deployment_status(&id),
        Some(DeploymentStatus::Stopped)
    );
    assert_eq!(lines(&reboots).len(), 1);
}

#[test]
fn a_host_back_after_the_command_timed_out_runs_nothing_more() {
    // Long enough for every command before the reboot on a loaded machine, short enough to
    // pass while the host is "down".
    let Some((w, reboots)) = world_with_timeout(Duration::from_secs(20)) else {
        return;
    };
    let log = w.path().join("hooks.log");
    let mut agent = w.agent();
    let id = publish_bundle(&w, &log);
    rebooted(&w, &mut agent, &reboots, 1);
    // The service fails the command by its time-out, as for any host that stops answering.
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed, "{}", w.agent_log());
    let after = w
        .commands(&id)
        .into_iter()
        .find(|c| c.name == "AfterInstall")
        .expect("AfterInstall was issued");
    assert!(!succeeded(&after));
    let _agent = w.agent();
    assert_not_resumed(&w, &d.group_id, &log);
    let kinds: Vec<String> = w
        .emu
        .host_history(&w.host_id)
        .into_iter()
        .filter(|e| e.deployment_id == id)
        .map(|e| e.kind)
        .collect();
    assert!(
        !kinds.iter().any(|k| k.starts_with("DuplicateComplete")),
        "nothing is reported for a command the service ended: {kinds:?}"
    );
}

#[test]
fn a_reboot_command_that_fails_fails_the_command_and_the_agent_goes_back_to_work() {
    let Some((w, reboots)) = world() else {
        return;
    };
    w.write_config(&["reboot_command: /bin/false"]);
    let log = w.path().join("hooks.log");
    let _agent = w.agent();
    let id = publish_bundle(&w, &log);
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed, "{}", w.agent_log());
    let after = w
        .commands(&id)
        .into_iter()
        .find(|c| c.name == "AfterInstall")
        .expect("AfterInstall was issued");
    let diag = diagnostics(&after);
    assert_eq!(diag["script_name"], "b1.sh", "{diag}");
    assert!(
        diag["message"]
            .as_str()
            .unwrap_or_default()
            .contains("reboot_command"),
        "{diag}"
    );
    assert!(lines(&reboots).is_empty());
    assert_eq!(lines(&log), ["BeforeInstall a", "AfterInstall b1"]);
    // Polling again: the next deployment (no reboot asked) succeeds.
    let plain = w.path().join("plain");
    write(
        &plain.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: p.sh\n",
        false,
    );
    write(&plain.join("p.sh"), &script(&log, "p", false), true);
    let tgz = w.path().join("plain.tgz");
    make_tgz(&plain, &tgz);
    let (v, e) = w.upload("plain", fs::read(&tgz).unwrap());
    let next = w.deploy(w.s3_request("plain", "tgz", &v, &e));
    assert_eq!(
        w.wait_done(&next, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    let group = d.group_id;
    assert!(!w
        .root()
        .join("deployment-instructions")
        .join(format!("{group}.reboot"))
        .exists());
}

/// The agent, back after the reboot, drops the group's reboot record, says it is not
/// resuming, and runs nothing after the hook that asked for the reboot.
fn assert_not_resumed(w: &World, group: &str, log: &std::path::Path) {
    let record = w
        .root()
        .join("deployment-instructions")
        .join(format!("{group}.reboot"));
    assert!(
        eventually(LONG, || !record.exists()),
        "the record is dropped\n{}",
        w.agent_log()
    );
    assert!(
        eventually(LONG, || w.agent_log().contains("not resuming")),
        "{}",
        w.agent_log()
    );
    assert_eq!(
        lines(log),
        ["BeforeInstall a", "AfterInstall b1"],
        "nothing ran"
    );
}
