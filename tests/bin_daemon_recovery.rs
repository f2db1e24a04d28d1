//! The daemon after a crash and beside deploy-local: a SIGKILLed agent's running hook is
//! ended by the restarted agent before it reports the command (cgroup and fallback), while
//! the daemons of hooks that had finished keep running; deploy-local and the daemon never
//! run one group's deployments at the same time.

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::{CommandState, DeploymentStatus};
use common::*;
use daemon_support::*;
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(120);
/// The emulator's idle long poll; after killing the agent a test waits a little longer, so
/// that no command goes to the dead agent's outstanding poll.
const POLL_IDLE: Duration = Duration::from_millis(800);

/// Kills every process carrying one of the markers when dropped.
struct Markers(Vec<String>);
impl Drop for Markers {
    fn drop(&mut self) {
        for m in &self.0 {
            kill_marker(m);
        }
    }
}

/// Uploads a tgz of `dir`; returns (key, version, etag).
fn publish(w: &World, dir: &Path, key: &str) -> (String, String, String) {
    let tgz = w.path().join(format!("{key}.tgz"));
    make_tgz(dir, &tgz);
    let (v, e) = w.upload(key, fs::read(&tgz).unwrap());
    (key.to_string(), v, e)
}

fn deploy(w: &World, b: &(String, String, String)) -> String {
    w.deploy(w.s3_request(&b.0, "tgz", &b.1, &b.2))
}

/// A bundle whose hooks only log `<event> <deployment>` lines.
fn plain_bundle(w: &World, name: &str, log: &Path) -> PathBuf {
    let dir = w.path().join(name);
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: ok.sh\n",
        false,
    );
    write(
        &dir.join("ok.sh"),
        &format!(
            "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID\" >> {}\n",
            log.display()
        ),
        true,
    );
    dir
}

fn recovery_ends_the_running_hook_only(env: &[(&str, &str)]) {
    let Some(w) = World::with_poll_idle("arn:aws:iam::111122223333:user/host-1", POLL_IDLE) else {
        return;
    };
    let tag = format!("{}-{}", std::process::id(), env.len());
    let (daemon, running) = (
        format!("cd-rec-daemon-{tag}"),
        format!("cd-rec-running-{tag}"),
    );
    let _cleanup = Markers(vec![daemon.clone(), running.clone()]);
    let log = w.path().join("hooks.log");
    let dir = w.path().join("crashy");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: start-daemon.sh\n  AfterInstall:\n    - location: hang.sh\n      timeout: 300\n",
        false,
    );
    // BeforeInstall finishes successfully and leaves a daemon (setsid, own session).
    write(
        &dir.join("start-daemon.sh"),
        &format!(
            "#!/bin/bash\nsetsid bash -c 'exec -a {daemon} sleep 600' </dev/null >/dev/null 2>&1 &\necho daemon started\n"
        ),
        true,
    );
    // AfterInstall is killed mid-way: its own child escapes the process group too.
    write(
        &dir.join("hang.sh"),
        &format!(
            "#!/bin/bash\necho \"hang start\" >> {l}\nsetsid bash -c 'exec -a {running} sleep 600' </dev/null >/dev/null 2>&1 &\nsleep 600\necho \"hang end\" >> {l}\n",
            l = log.display()
        ),
        true,
    );
    let bundle = publish(&w, &dir, "crashy");
    let mut agent = w.agent_with(env);
    let id = deploy(&w, &bundle);
    assert!(
        eventually(LONG, || !pids_with_marker(&running).is_empty()),
        "AfterInstall never started\n{}",
        w.agent_log()
    );
    let record = w.root().join("deployment-instructions").join(format!(
        "{}.running-hook",
        w.emu.deployment(&id).unwrap().group_id
    ));
    let recorded = fs::read_to_string(&record).expect("the running hook is recorded");
    assert!(recorded.contains("event=AfterInstall"), "{recorded}");
    if env.is_empty() {
        assert!(recorded.contains("cgroup="), "{recorded}");
    } else {
        assert!(!recorded.contains("cgroup="), "{recorded}");
    }
    agent.signal(Signal::SIGKILL);
    agent.wait(Duration::from_secs(10)).expect("agent died");
    drop(agent);
    std::thread::sleep(POLL_IDLE + Duration::from_millis(400));
    // As under KillMode=process, the hook outlives the agent.
    assert!(!pids_with_marker(&running).is_empty());
    let _agent = w.agent_with(env);
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed);
    // Recovery ended the hook before it reported the command.
    assert!(
        pids_with_marker(&running).is_empty(),
        "the interrupted hook's processes are gone\n{}",
        w.agent_log()
    );
    assert!(!fs::read_to_string(&log).unwrap().contains("hang end"));
    assert!(!record.exists(), "the record went with the hook");
    assert_eq!(
        pids_with_marker(&daemon).len(),
        1,
        "the daemon of BeforeInstall, which had finished, still runs"
    );
    let cmds = w.commands(&id);
    let after = cmds.iter().find(|c| c.name == "AfterInstall").unwrap();
    assert_eq!(diagnostics(after)["error_code"], 7);
    assert!(
        w.agent_log()
            .contains("ended a hook whose agent stopped while it ran"),
        "{}",
        w.agent_log()
    );
    let next = publish(&w, &plain_bundle(&w, "next", &log), "next");
    let n = deploy(&w, &next);
    assert_eq!(
        w.wait_done(&n, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    assert_eq!(pids_with_marker(&daemon).len(), 1);
}

#[test]
fn recovery_ends_the_interrupted_hook_and_keeps_finished_hooks_daemons_with_cgroups() {
    recovery_ends_the_running_hook_only(&[]);
}

#[test]
fn recovery_ends_the_interrupted_hook_and_keeps_finished_hooks_daemons_with_the_fallback() {
    recovery_ends_the_running_hook_only(&[("CODEDEPLOY_HOOK_CONTAINMENT", "process-group")]);
}

/// A bundle installing `files` into `dest` whose `event` hook logs `<tag> start|end <ns>`
/// around a `secs` sleep.
fn timed_bundle(
    base: &Path,
    tag: &str,
    dest: &Path,
    files: &[&str],
    event: &str,
    log: &Path,
    secs: u32,
) -> PathBuf {
    let dir = base.join(tag);
    write(
        &dir.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\nhooks:\n  {event}:\n    - location: hook.sh\n      timeout: 120\n",
            dest.display()
        ),
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
    for f in files {
        write(&dir.join("site").join(f), tag, false);
    }
    dir
}

fn window(lines: &str, tag: &str) -> (u128, u128) {
    let find = |what: &str| -> u128 {
        lines
            .lines()
            .find(|l| l.starts_with(&format!("{tag} {what} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {tag} {what} in\n{lines}"))
    };
    (find("start"), find("end"))
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `deploy-local` with the daemon's configuration, in the background.
fn local(w: &World, group: &str, bundle: &Path) -> std::process::Child {
    Command::new(common::BIN)
        .args(["deploy-local", "-c"])
        .arg(w.config())
        .args(["-g", group, "-l"])
        .arg(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deploy-local")
}

/// Waits (bounded) for a background deploy-local; kills it if it overruns.
fn finish(mut c: std::process::Child) -> std::process::Output {
    let until = Instant::now() + LONG;
    while c.try_wait().expect("try_wait").is_none() {
        if Instant::now() > until {
            let _ = c.kill();
            let _ = c.wait();
            panic!("deploy-local did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    c.wait_with_output().expect("output")
}

#[test]
fn deploy_local_and_the_daemon_take_turns_on_one_group() {
    let Some(w) = World::new() else { return };
    let dest = w.path().join("dest");
    let log = w.path().join("hooks.log");
    let svc = timed_bundle(
        w.path(),
        "svc",
        &dest,
        &["svc.txt"],
        "AfterInstall",
        &log,
        3,
    );
    let loc = timed_bundle(
        w.path(),
        "loc",
        &dest,
        &["loc.txt"],
        "BeforeInstall",
        &log,
        3,
    );
    let agent = w.agent();
    // 1. The daemon holds the group (its AfterInstall runs): deploy-local waits for it.
    let first = deploy(&w, &publish(&w, &svc, "svc"));
    let group = w.emu.deployment(&first).unwrap().group_id;
    assert!(
        eventually(LONG, || fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("svc start"))),
        "{}",
        w.agent_log()
    );
    let out = finish(local(&w, &group, &loc));
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Deployment group {group} is busy: held by pid {} (agent: AfterInstall) for deployment {first}",
            agent.pid()
        )),
        "{err}"
    );
    assert_eq!(
        w.wait_done(&first, LONG).status,
        DeploymentStatus::Succeeded
    );
    let lines = fs::read_to_string(&log).unwrap();
    let (s0, s1) = window(&lines, "svc");
    let (l0, _) = window(&lines, "loc");
    assert!(
        s1 < l0,
        "deploy-local ran only after the daemon's command:\n{lines}"
    );
    assert_eq!(files_in(&dest), ["loc.txt".to_string()].into());
    let _ = s0;
    // 2. deploy-local holds the group: the daemon's next command waits for its whole run.
    fs::remove_file(&log).unwrap();
    let running = local(&w, &group, &loc);
    assert!(eventually(LONG, || fs::read_to_string(&log)
        .is_ok_and(|l| l.contains("loc start"))));
    let second = deploy(&w, &publish(&w, &svc, "svc2"));
    let out = finish(running);
    assert!(out.status.success(), "{}", text(&out));
    let d = w.wait_done(&second, LONG);
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
    let lines = fs::read_to_string(&log).unwrap();
    let (_, l1) = window(&lines, "loc");
    let (s0, _) = window(&lines, "svc");
    assert!(
        l1 < s0,
        "the daemon's hook ran after deploy-local:\n{lines}"
    );
    assert!(
        w.agent_log().contains("(deploy-local) for deployment d-"),
        "the daemon said whom it waited for\n{}",
        w.agent_log()
    );
    // One revision's files, and a journal that names exactly them.
    assert_eq!(files_in(&dest), ["svc.txt".to_string()].into());
    let journal = fs::read_to_string(
        w.root()
            .join("deployment-instructions")
            .join(format!("{group}-cleanup")),
    )
    .unwrap();
    let named: BTreeSet<&str> = journal.lines().collect();
    let svc_txt = dest.join("svc.txt");
    assert!(named.contains(svc_txt.to_str().unwrap()), "{journal}");
    assert!(!journal.contains("loc.txt"), "{journal}");
    let cmds = w.commands(&second);
    assert!(cmds.iter().all(|c| c.state == CommandState::Succeeded));
}
