//! Retries spread out (issue 12 item 4): the daemon against the emulator, which throttles or
//! drops its polls. The agent logs each wait it chose ("retrying in X s"); the emulator
//! records when each faulted call arrived. The test checks the chosen waits follow the
//! configured `wait_after_throttle_error` / `wait_after_connection_problem` with their ±20 %
//! spread (ranges and distinct values), and that the calls really were that far apart
//! (never sooner; a generous bound on later, which is scheduling, not performance).

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::{FaultKind, FaultRule};
use common::*;
use daemon_support::*;
use std::collections::HashSet;
use std::fs;
use std::time::Duration;

/// The waits the agent announced for failed polls, in order, with the error text.
fn announced_waits(log: &str) -> Vec<(String, f64)> {
    log.lines()
        .filter(|l| l.contains("Error polling for host commands"))
        .filter_map(|l| {
            let rest = l.split("retrying in ").nth(1)?;
            let secs: f64 = rest.split(' ').next()?.parse().ok()?;
            Some((l.to_string(), secs))
        })
        .collect()
}

/// Arrival times (ms) of the faulted polls.
fn poll_hits(w: &World) -> Vec<(u64, FaultKind)> {
    w.emu
        .fault_hits()
        .into_iter()
        .filter(|h| h.operation == "PollHostCommand")
        .map(|h| (h.at_ms, h.kind))
        .collect()
}

#[test]
fn throttled_polls_wait_the_configured_time_spread_by_a_fifth() {
    let Some(w) = World::new() else { return };
    w.write_config(&[
        "wait_after_throttle_error: 1",
        "wait_after_connection_problem: 1",
    ]);
    const N: usize = 8;
    w.emu.inject_fault(FaultRule::new(
        "PollHostCommand",
        FaultKind::Throttle,
        N as u32,
    ));
    let _agent = w.agent();
    assert!(
        eventually(Duration::from_secs(40), || announced_waits(&w.agent_log())
            .len()
            >= N),
        "{}",
        w.agent_log()
    );
    let waits = announced_waits(&w.agent_log());
    for (line, s) in &waits[..N] {
        assert!(line.contains("throttled"), "{line}");
        assert!(
            (0.8..=1.2).contains(s),
            "wait {s} outside 1 s ± 20 %: {line}"
        );
    }
    // Spread, not one value: the old clamp gave +20 % four times in five.
    let distinct: HashSet<u64> = waits[..N]
        .iter()
        .map(|(_, s)| (s * 1000.0) as u64)
        .collect();
    assert!(distinct.len() >= N - 1, "{waits:?}");
    let (lo, hi) = waits[..N]
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), (_, s)| {
            (lo.min(*s), hi.max(*s))
        });
    assert!(hi - lo > 0.02, "all waits within 20 ms: {waits:?}");
    // The polls really were that far apart.
    let hits = poll_hits(&w);
    assert_eq!(hits.len(), N, "{hits:?}");
    for i in 1..N {
        let gap = (hits[i].0 - hits[i - 1].0) as f64 / 1000.0;
        let planned = waits[i - 1].1;
        assert!(
            gap >= planned - 0.02 && gap <= planned + 3.0,
            "poll {i} came {gap} s after the previous one, the agent planned {planned} s"
        );
    }
}

#[test]
fn a_dropped_connection_waits_the_connection_time_then_a_throttle_its_own() {
    let Some(w) = World::new() else { return };
    w.write_config(&[
        "wait_after_throttle_error: 2",
        "wait_after_connection_problem: 1",
    ]);
    w.emu
        .inject_fault(FaultRule::new("PollHostCommand", FaultKind::Drop, 1));
    w.emu
        .inject_fault(FaultRule::new("PollHostCommand", FaultKind::Throttle, 1));
    let _agent = w.agent();
    assert!(
        eventually(Duration::from_secs(30), || announced_waits(&w.agent_log())
            .len()
            >= 2),
        "{}",
        w.agent_log()
    );
    let waits = announced_waits(&w.agent_log());
    let (drop_line, conn) = &waits[0];
    assert!(drop_line.contains("network error"), "{drop_line}");
    assert!((0.8..=1.2).contains(conn), "{drop_line}");
    let (throttle_line, thr) = &waits[1];
    assert!(throttle_line.contains("throttled"), "{throttle_line}");
    assert!((1.6..=2.4).contains(thr), "{throttle_line}");
    let hits = poll_hits(&w);
    assert_eq!(
        hits.iter().map(|h| h.1).collect::<Vec<_>>(),
        [FaultKind::Drop, FaultKind::Throttle]
    );
    let gap = (hits[1].0 - hits[0].0) as f64 / 1000.0;
    assert!(gap >= conn - 0.02 && gap <= conn + 3.0, "{gap} vs {conn}");
}

#[test]
fn the_first_poll_after_the_last_command_is_spread() {
    // Idle polls answer after 1 s, so the spread shows soon after each deployment.
    let Some(w) = World::with_poll_idle(
        "arn:aws:iam::111122223333:user/host-1",
        Duration::from_secs(1),
    ) else {
        return;
    };
    let dir = w.path().join("quick");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: hi.sh\n",
        false,
    );
    write(&dir.join("hi.sh"), "#!/bin/sh\necho hi\n", true);
    let tgz = w.path().join("quick.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("quick.tgz", fs::read(&tgz).unwrap());
    let _agent = w.agent();
    let mut spreads = Vec::new();
    for round in 0..3 {
        let id = w.deploy(w.s3_request("quick.tgz", "tgz", &v, &e));
        let d = w.wait_done(&id, Duration::from_secs(120));
        assert_eq!(
            d.status,
            codedeploy_emulator::DeploymentStatus::Succeeded,
            "{}",
            w.agent_log()
        );
        // The poll outstanding when the last command finished answers empty after the
        // emulator's idle time (1 s); the next one waits its spread first.
        assert!(
            eventually(Duration::from_secs(20), || spread_waits(&w.agent_log())
                .len()
                > round),
            "{}",
            w.agent_log()
        );
        spreads = spread_waits(&w.agent_log());
    }
    assert!(spreads.len() >= 3, "{spreads:?}");
    for s in &spreads {
        assert!((0.0..5.0).contains(s), "{spreads:?}");
    }
    let distinct: HashSet<u64> = spreads.iter().map(|s| (s * 1000.0) as u64).collect();
    assert!(distinct.len() >= spreads.len() - 1, "{spreads:?}");
    // Polls while a command ran were never delayed: one spread per deployment at most.
    assert!(spreads.len() <= 4, "{spreads:?}");
}

fn spread_waits(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("next poll in ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect()
}
