//! `logs` over a long history (four deployments, rotated files, 600,000 lines, about 50 MB),
//! black box: every line once, in time order across deployments, in bounded memory (the
//! process's peak RSS stays far below the history's size); `-n` prints the end; `--follow`
//! starts with the last lines, as `tail -f`, then prints what is appended.

#[path = "support/common.rs"]
mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEPLOYMENTS: [(&str, &str); 4] = [
    ("g-1", "d-A"),
    ("g-1", "d-B"),
    ("g-2", "d-C"),
    ("g-2", "d-D"),
];
/// Lines per file; each deployment has scripts.log.2, scripts.log.1 and scripts.log.
const PER_FILE: u64 = 50_000;
const TOTAL: u64 = PER_FILE * 3 * DEPLOYMENTS.len() as u64;
/// Peak RSS allowed for reading the whole history: a fraction of its size (the history is
/// about 50 MB; holding it, as `logs` once did, takes several times that).
const MAX_RSS_KIB: i64 = 24 * 1024;

/// `2024-01-DD HH:MM:SS` for second `s` of January 2024.
fn stamp(s: u64) -> String {
    format!(
        "2024-01-{:02} {:02}:{:02}:{:02}",
        1 + s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// Line `seq` of the whole history belongs to deployment `seq % 4`, at second `seq`, so the
/// merged order is 0, 1, 2, ...
fn write_history(root: &Path) {
    let n = DEPLOYMENTS.len() as u64;
    for (k, (group, dep)) in DEPLOYMENTS.iter().enumerate() {
        let logs = root.join(group).join(dep).join("logs");
        fs::create_dir_all(&logs).unwrap();
        for (f, name) in ["scripts.log.2", "scripts.log.1", "scripts.log"]
            .iter()
            .enumerate()
        {
            let mut out = std::io::BufWriter::new(fs::File::create(logs.join(name)).unwrap());
            for i in 0..PER_FILE {
                let seq = (f as u64 * PER_FILE + i) * n + k as u64;
                writeln!(out, "{} [stdout]seq-{seq} {}", stamp(seq), "x".repeat(40)).unwrap();
            }
        }
    }
}

fn seq_of(line: &str) -> u64 {
    let at = line.find("seq-").unwrap_or_else(|| panic!("{line}")) + 4;
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

/// Waits for `pid` and returns its peak RSS in KiB (wait4, so other tests' children do not
/// count). nix has no wait4, and getrusage(RUSAGE_CHILDREN) would mix in every other test's
/// children, hence the one unsafe call in this test.
#[allow(unsafe_code)]
fn reap_max_rss(pid: u32) -> i64 {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped; both pointers are to live locals.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4");
    usage.ru_maxrss
}

fn logs(sb: &Sandbox) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--config-file").arg(sb.config()).arg("logs");
    c
}

// Children are reaped with wait4 (for their rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
#[test]
fn whole_history_streams_in_time_order_in_bounded_memory() {
    let sb = Sandbox::new();
    write_history(&sb.root());
    let mut child = logs(&sb).stdout(Stdio::piped()).spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut expected = 0u64;
    for line in out.lines() {
        let line = line.unwrap();
        assert_eq!(seq_of(&line), expected, "out of order: {line}");
        expected += 1;
    }
    let rss = reap_max_rss(child.id());
    assert_eq!(expected, TOTAL, "every line once");
    println!("logs over {TOTAL} lines: peak RSS {rss} KiB");
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");

    let out = logs(&sb)
        .args(["-n", "3", "--group", "g-2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(seq_of)
        .collect();
    // g-2 holds deployments 2 and 3 of every round of four.
    assert_eq!(seqs, [TOTAL - 5, TOTAL - 2, TOTAL - 1]);
}

#[allow(clippy::zombie_processes)]
#[test]
fn follow_starts_like_tail_f_then_prints_what_is_appended() {
    let sb = Sandbox::new();
    write_history(&sb.root());
    let mut child = logs(&sb)
        .args(["--follow", "-n", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A hang guard, not a timing assertion: the history is read before anything is printed.
    let patience = Duration::from_secs(120);
    let mut first = Vec::new();
    while first.len() < 5 {
        match rx.recv_timeout(patience) {
            Ok(l) => first.push(seq_of(&l)),
            Err(_) => {
                let _ = child.kill();
                reap_max_rss(pid);
                panic!("only {first:?} after {patience:?}");
            }
        }
    }
    assert_eq!(first, (TOTAL - 5..TOTAL).collect::<Vec<_>>());
    let live = sb.root().join("g-1/d-B/logs/scripts.log");
    fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(format!("{} [stdout]seq-{TOTAL} appended\n", stamp(TOTAL)).as_bytes())
        .unwrap();
    let next = rx.recv_timeout(patience);
    let _ = child.kill();
    let rss = reap_max_rss(pid);
    reader.join().unwrap();
    let next = next.expect("the appended line");
    assert!(next.contains("[g-1/d-B] [stdout]seq-"), "{next}");
    assert_eq!(seq_of(&next), TOTAL, "nothing of the history again: {next}");
    assert!(rx.try_recv().is_err(), "printed more than appended");
    println!("logs --follow over {TOTAL} lines: peak RSS {rss} KiB");
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");
}
