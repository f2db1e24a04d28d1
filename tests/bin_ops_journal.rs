//! The journal keeps the agent's own records (issue 12 item 5), checked by counting what the
//! agent sent: the daemon runs against the emulator and moto with its journal pointed at a
//! datagram socket this test binds (`CODEDEPLOY_JOURNAL_SOCKET`, a test aid), a hook prints
//! 200,000 lines, and the test counts the hook lines forwarded (the budget), the one
//! "left out" record (count and scripts.log path), the agent's own records of every command
//! of this and the next deployment, and the lines in scripts.log (all of them).

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::DeploymentStatus;
use common::*;
use daemon_support::*;
use std::collections::HashMap;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LINES: usize = 200_000;
const BUDGET: usize = 1000;

type Record = HashMap<String, String>;

/// PURE: the fields of one native-protocol datagram.
fn parse(mut d: &[u8]) -> Record {
    let mut r = Record::new();
    while !d.is_empty() {
        let Some(end) = d.iter().position(|b| *b == b'=' || *b == b'\n') else {
            break;
        };
        let name = String::from_utf8_lossy(&d[..end]).into_owned();
        if d[end] == b'=' {
            let rest = &d[end + 1..];
            let stop = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            r.insert(name, String::from_utf8_lossy(&rest[..stop]).into_owned());
            d = rest.get(stop + 1..).unwrap_or(&[]);
        } else {
            let rest = &d[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            r.insert(
                name,
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            );
            d = rest.get(8 + len + 1..).unwrap_or(&[]);
        }
    }
    r
}

/// A bound journal socket and the thread that collects what arrives.
struct Journal {
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    fn bind(path: &std::path::Path) -> Journal {
        let sock = UnixDatagram::bind(path).expect("bind the journal socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    if n > 0 {
                        r.lock().unwrap().push(parse(&buf[..n]));
                    }
                }
            }
        });
        Journal {
            records,
            stop,
            thread: Some(thread),
        }
    }
    fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn field<'a>(r: &'a Record, k: &str) -> &'a str {
    r.get(k).map(String::as_str).unwrap_or("")
}

#[test]
fn a_flooding_hook_costs_the_agent_none_of_its_journal_records() {
    let Some(w) = World::new() else { return };
    let dir = w.path().join("flood");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: flood.sh\n      timeout: 300\n",
        false,
    );
    write(
        &dir.join("flood.sh"),
        &format!("#!/bin/sh\nseq 1 {LINES}\n"),
        true,
    );
    let tgz = w.path().join("flood.tgz");
    make_tgz(&dir, &tgz);
    let (v, e) = w.upload("flood.tgz", fs::read(&tgz).unwrap());
    let sock = w.path().join("journal.sock");
    let journal = Journal::bind(&sock);
    let _agent = w.agent_with(&[
        ("CODEDEPLOY_JOURNAL_SOCKET", sock.to_str().unwrap()),
        ("INVOCATION_ID", "0123456789abcdef0123456789abcdef"),
    ]);

    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = w.deploy(w.s3_request("flood.tgz", "tgz", &v, &e));
        let d = w.wait_done(&id, Duration::from_secs(240));
        assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
        ids.push(id);
    }
    // Every command's "reported" record, for both deployments (bounded wait: the last one
    // is sent once the service took the result).
    let hcs: Vec<(String, String)> = ids
        .iter()
        .flat_map(|id| {
            w.commands(id)
                .into_iter()
                .map(move |c| (id.clone(), c.id.clone()))
        })
        .collect();
    assert!(hcs.len() >= 2 * 7, "{hcs:?}");
    let reported = |rs: &[Record], hc: &str| {
        rs.iter().any(|r| {
            field(r, "MESSAGE") == format!("reported Succeeded for command {hc}")
                && field(r, "PRIORITY") == "5"
        })
    };
    assert!(
        eventually(Duration::from_secs(30), || {
            let rs = journal.records();
            hcs.iter().all(|(_, hc)| reported(&rs, hc))
        }),
        "missing 'reported' records"
    );
    let rs = journal.records();

    for id in &ids {
        let of_deployment: Vec<(usize, &Record)> = rs
            .iter()
            .enumerate()
            .filter(|(_, r)| field(r, "DEPLOYMENT_ID") == id)
            .collect();
        let hook_lines: Vec<&(usize, &Record)> = of_deployment
            .iter()
            .filter(|(_, r)| field(r, "TARGET") == "codedeploy_agent::hook_output")
            .collect();
        assert_eq!(hook_lines.len(), BUDGET, "hook lines forwarded for {id}");
        for (n, (_, r)) in hook_lines.iter().enumerate() {
            assert_eq!(field(r, "MESSAGE"), format!("[stdout]{}", n + 1));
            assert_eq!(field(r, "PRIORITY"), "6", "hook output is info");
            assert_eq!(field(r, "SCRIPT"), "flood.sh");
            assert_eq!(field(r, "LIFECYCLE_EVENT"), "AfterInstall");
        }
        let summaries: Vec<&(usize, &Record)> = of_deployment
            .iter()
            .filter(|(_, r)| field(r, "TARGET") == "codedeploy_agent::hook_output::summary")
            .collect();
        assert_eq!(summaries.len(), 1, "one 'left out' record for {id}");
        let (at, s) = summaries[0];
        let left_out = (LINES - BUDGET).to_string();
        assert_eq!(field(s, "HOOK_LINES_LEFT_OUT"), left_out);
        assert_eq!(field(s, "SCRIPT"), "flood.sh");
        assert_eq!(field(s, "LIFECYCLE_EVENT"), "AfterInstall");
        assert_eq!(field(s, "PRIORITY"), "5");
        let log = std::path::PathBuf::from(field(s, "SCRIPTS_LOG"));
        assert!(
            log.starts_with(w.root()) && log.ends_with(format!("{id}/logs/scripts.log")),
            "{log:?}"
        );
        let msg = field(s, "MESSAGE");
        assert!(
            msg.contains(&left_out) && msg.contains(log.to_str().unwrap()),
            "{msg}"
        );
        assert!(
            *at > hook_lines.last().unwrap().0,
            "summary after the lines"
        );
        // The agent's own record of the script's end, after the summary.
        let finished = of_deployment
            .iter()
            .find(|(_, r)| field(r, "MESSAGE").starts_with("Script flood.sh finished"))
            .unwrap_or_else(|| panic!("no 'finished' record for {id}"));
        assert!(finished.0 > *at);
        assert_eq!(field(finished.1, "PRIORITY"), "5");
        // scripts.log has every line.
        let text = fs::read_to_string(&log).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.contains("[stdout]")).count(),
            LINES
        );
        assert!(text.contains(&format!("[stdout]{LINES}\n")));
    }
    // Every record names the agent.
    assert!(rs
        .iter()
        .all(|r| field(r, "SYSLOG_IDENTIFIER") == "codedeploy-agent"));
}
