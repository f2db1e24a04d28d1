//! A `<group>-cleanup` journal as the next install reads it (core's `plan::journal`, read where
//! it lies and indexed by parent directory): the removals are the journal's lines, last first,
//! as a plain split would give them, and every path among them is found by a lookup, whether
//! the index stays in memory or goes to a spill.
#![no_main]

use codedeploy_agent::plan::testing::{journal_model, MemSpills};
use codedeploy_agent::plan::{Previous, PreviousInstall, Removal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    // The first byte picks the index's home: odd, a spill whatever the journal's size.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = rest.to_vec();
    let (removals, paths) = journal_model(&text);
    let j = if pick % 2 == 1 {
        PreviousInstall::open_spilling_past(Box::new(text), &MemSpills::default(), 0)
    } else {
        PreviousInstall::open(Box::new(text), Some(&MemSpills::default()))
    }
    .expect("memory reads");
    let got: Vec<Removal> = j.removals().map(|r| r.expect("memory reads")).collect();
    assert_eq!(got, removals);
    assert_eq!(j.len(), removals.len());
    for p in paths.iter().take(64) {
        assert!(j.installed(p).expect("memory reads"), "{p:?}");
    }
});
