//! scripts.log lines (written by the agent, but holding whatever hook scripts print) as the
//! `logs` command reads them: tracking, rendering, the streaming time-ordered merge of several
//! deployments' logs, and `-n`'s tail.
#![no_main]

use codedeploy_agent::logs::parse::{last_n, parse_all, render, Merge, Source, Tracker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    // `logs` reads the file lossily: hook output need not be UTF-8.
    let text = String::from_utf8_lossy(data);
    let source = |d: &str| Source {
        group: "group".into(),
        deployment: d.into(),
    };
    let records = parse_all(&mut Tracker::new(source("d-FUZZ")), &text);
    assert_eq!(records.len(), text.lines().count());
    for r in &records {
        let line = render(r);
        assert!(line.contains(&r.entry));
    }
    // The same input as two deployments' logs: the merge yields every record once and
    // keeps each stream's own order.
    let half = text.len() / 2;
    let cut = (0..=half).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    let (a, b) = text.split_at(cut);
    let ra = parse_all(&mut Tracker::new(source("d-A")), a);
    let rb = parse_all(&mut Tracker::new(source("d-B")), b);
    let (na, nb) = (ra.len(), rb.len());
    let merged: Vec<_> = Merge::new(vec![ra.clone().into_iter(), rb.clone().into_iter()]).collect();
    assert_eq!(merged.len(), na + nb);
    let only = |d: &str| -> Vec<_> { merged.iter().filter(|r| r.deployment == d).cloned().collect() };
    assert_eq!(only("d-A"), ra);
    assert_eq!(only("d-B"), rb);
    let tail = last_n(merged.iter(), 10);
    assert_eq!(tail.len(), merged.len().min(10));
});
