//! scripts.log lines (written by the agent, but holding whatever hook scripts print) as the
//! `logs` command reads them: tracking, rendering and merging.
#![no_main]

use codedeploy_agent::logs::parse::{merge, parse_all, render, Source, Tracker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    // `logs` reads the file lossily: hook output need not be UTF-8.
    let text = String::from_utf8_lossy(data);
    let source = Source {
        group: "group".into(),
        deployment: "d-FUZZ".into(),
    };
    let records = parse_all(&mut Tracker::new(source), &text);
    assert_eq!(records.len(), text.lines().count());
    for r in &records {
        let line = render(r);
        assert!(line.contains(&r.entry));
    }
    let n = records.len();
    assert_eq!(merge(records).len(), n);
});
