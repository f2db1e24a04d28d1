//! The daemon's sd_notify messages, read from a NOTIFY_SOCKET the test binds (a Unix
//! datagram socket, as systemd's): READY, then a STATUS= line whose elapsed time moves while
//! a hook runs, and after SIGTERM, STOPPING and a "stopping: waiting for" line that keeps
//! moving until the hook ends; the agent (emulator + moto, SigV4 on) then exits cleanly. A
//! large download shows its progress there too (moto paced, as S3's per-connection ceiling).

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::DeploymentStatus;
use common::*;
use daemon_support::*;
use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(120);

/// Reads datagrams until `done` says so or `within` passes (a hang guard, not a timing
/// assertion); returns everything read.
fn collect(sock: &UnixDatagram, within: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let until = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&seen) && Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    seen
}

/// Elapsed seconds of STATUS= lines that name the running script, in order.
fn elapsed_of(seen: &[String], prefix: &str) -> Vec<u64> {
    seen.iter()
        .filter_map(|m| m.strip_prefix(prefix))
        .filter(|m| m.contains("ApplicationStart: slow.sh (1 of 1), "))
        .filter_map(|m| {
            let rest = m.rsplit_once("), ")?.1;
            let (secs, limit) = rest.split_once(" s of ")?;
            (limit == "60 s").then(|| secs.parse().ok())?
        })
        .collect()
}

#[test]
fn status_line_moves_while_a_hook_runs_and_while_stopping() {
    let Some(w) = World::new() else { return };
    let sock_path = w.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let dir = w.path().join("slow");
    let release = w.path().join("release");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: slow.sh\n      timeout: 60\n",
        false,
    );
    // Runs until the test releases it (at most 50 s).
    write(
        &dir.join("slow.sh"),
        &format!(
            "#!/bin/sh\ni=0\nwhile [ ! -e '{}' ] && [ $i -lt 500 ]; do sleep 0.1; i=$((i+1)); done\n",
            release.display()
        ),
        true,
    );
    let tgz = w.path().join("slow.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("slow.tgz", fs::read(&tgz).unwrap());
    let mut agent = w.agent_with(&[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let ready = collect(&sock, LONG, |s| s.iter().any(|m| m == "READY=1"));
    assert!(
        ready.iter().any(|m| m == "READY=1"),
        "{ready:?}\n{}",
        w.agent_log()
    );
    let id = w.deploy(w.s3_request("slow.tgz", "tgz", &v, &e));

    // While the hook runs, with no other step of the agent, the elapsed time moves.
    let running = collect(&sock, LONG, |s| elapsed_of(s, "STATUS=").len() >= 3);
    let secs = elapsed_of(&running, "STATUS=");
    assert!(secs.len() >= 3, "{running:?}\n{}", w.agent_log());
    assert!(secs.windows(2).all(|p| p[0] <= p[1]), "{secs:?}");
    assert!(
        secs.last() > secs.first(),
        "the clock never moved: {running:?}"
    );
    assert!(
        running.iter().any(|m| m.starts_with("STATUS=")
            && m.contains(&id)
            && m.contains("ApplicationStart: slow.sh (1 of 1)")),
        "{running:?}"
    );

    // Stopping: it says so and what it waits for, and keeps saying it with a moving clock.
    agent.signal(Signal::SIGTERM);
    let prefix = "STATUS=stopping: waiting for ";
    let stopping = collect(&sock, LONG, |s| elapsed_of(s, prefix).len() >= 3);
    assert!(stopping.iter().any(|m| m == "STOPPING=1"), "{stopping:?}");
    let secs = elapsed_of(&stopping, prefix);
    assert!(secs.len() >= 3, "{stopping:?}\n{}", w.agent_log());
    assert!(
        secs.last() > secs.first(),
        "the clock never moved: {stopping:?}"
    );
    assert!(
        stopping
            .iter()
            .any(|m| m.starts_with(prefix) && m.contains(&id)),
        "{stopping:?}"
    );

    fs::write(&release, "go").unwrap();
    let exit = agent.wait(LONG).expect("agent exits after the hook");
    assert!(exit.success(), "{exit:?}\n{}", w.agent_log());
    let last = collect(&sock, Duration::from_secs(2), |_| false);
    assert_eq!(
        last.iter()
            .rev()
            .find(|m| m.starts_with("STATUS="))
            .map(String::as_str),
        Some("STATUS=stopped"),
        "{last:?}"
    );
    // The drained hook's command was reported as it ended.
    let cmds = w.commands(&id);
    let start = cmds.iter().find(|c| c.name == "ApplicationStart");
    assert!(start.is_some_and(succeeded), "{cmds:?}");
}

/// A large download shows its progress in the STATUS= line (issue 15): bytes of the total,
/// percent, rate. moto paces every connection at 1 MiB/s, so the 16 MiB bundle (two 8 MiB
/// parts on two connections) takes about 8 s however fast the machine is, several STATUS=
/// refreshes. `CODEDEPLOY_PROGRESS` lowers the report interval and size so the install of
/// this small tree also reports, in the agent's log.
#[test]
fn status_line_shows_download_progress() {
    let Some(w) = World::paced(1 << 20) else {
        return;
    };
    let sock_path = w.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let dir = w.path().join("big");
    write(
        &dir.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: data\n    destination: {}\n",
            w.path().join("dest").display()
        ),
        false,
    );
    // Incompressible, so the tgz is as large as its content: 16 MiB in 16 files.
    fs::create_dir_all(dir.join("data")).unwrap();
    for i in 0..16 {
        let bytes = bundle_support::noise(1 << 20, i);
        fs::write(dir.join(format!("data/part{i:02}.bin")), bytes).unwrap();
    }
    let tgz = w.path().join("big.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("big.tgz", fs::read(&tgz).unwrap());
    let _agent = w.agent_with(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("CODEDEPLOY_PROGRESS", "1,1"),
    ]);
    let ready = collect(&sock, LONG, |s| s.iter().any(|m| m == "READY=1"));
    assert!(ready.iter().any(|m| m == "READY=1"), "{}", w.agent_log());
    let id = w.deploy(w.s3_request("big.tgz", "tgz", &v, &e));
    let prefix = format!("STATUS={id} DownloadBundle: downloading s3://");
    let progress = |s: &[String]| -> Vec<String> {
        let mut lines: Vec<String> = s
            .iter()
            .filter(|m| m.starts_with(&prefix))
            // The text up to the rate: the bytes and percent, which must move.
            .filter_map(|m| m.split_once(" %),").map(|(p, _)| p.to_string()))
            .collect();
        lines.dedup();
        lines
    };
    let seen = collect(&sock, LONG, |s| {
        progress(s).len() >= 2 || s.iter().any(|m| m.contains(" Install"))
    });
    // `<d> DownloadBundle: downloading s3://bundles/big.tgz: 5.9 MiB of 16.0 MiB (36 %),
    // 2.0 MiB/s, about 5 s left, 3 s`
    let lines = progress(&seen);
    assert!(
        lines.len() >= 2,
        "fewer than two download progress lines in STATUS=: {seen:?}\n{}",
        w.agent_log()
    );
    let line = seen
        .iter()
        .find(|m| m.starts_with(&prefix))
        .expect("a progress line");
    assert!(
        line.contains("/big.tgz: ") && line.contains(" of 16.0 MiB ("),
        "{line}"
    );
    assert!(line.contains(" %), ") && line.contains("/s"), "{line}");
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
    let log = w.agent_log();
    assert!(
        log.lines()
            .any(|l| l.contains("installing") && l.contains(" of 16 files")),
        "no install progress in the log:\n{log}"
    );
}
