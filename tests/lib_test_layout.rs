//! The test layout (ARCHITECTURE.md, `tests/`), checked so that no test can silently stop
//! running. Cargo builds every `tests/*.rs` as its own test binary by itself (no `[[test]]`
//! list to forget), so the rules are about names and places:
//! - a test target is `tests/bin_*.rs` (drives the built `codedeploy-agent`, or its packages,
//!   as a process) or `tests/lib_*.rs` (calls the crates in-process, or checks files of the
//!   repository);
//! - shared helpers are `tests/support/<topic>.rs`, included with `#[path]`, and each is
//!   included somewhere (a helper nobody includes is never compiled);
//! - no other Rust file lives under `tests/` (Cargo would not build it: a test put in a
//!   sub-directory would never run).

use std::fs;
use std::path::Path;

/// What a test that runs the built binary names (spelt in two parts so that this file does not).
const BIN_MARK: &str = concat!("CARGO_", "BIN_EXE");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` below `dir`, relative to the repository root; `fixtures/` holds data only.
fn rust_files(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p
            .strip_prefix(repo())
            .expect("below the repository")
            .to_string_lossy()
            .into_owned();
        if p.is_dir() {
            if rel != "tests/fixtures" {
                rust_files(&p, out);
            }
        } else if rel.ends_with(".rs") {
            out.push(rel);
        }
    }
}

fn read(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The support files `text` (a file in `dir`) includes with `#[path = "..."]`, recursively.
fn included(dir: &str, text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("#[path = \"") else {
            continue;
        };
        let Some(target) = rest.split('"').next() else {
            continue;
        };
        // `examples/` includes helpers as `../tests/support/<topic>.rs`.
        let rel = match target.strip_prefix("../") {
            Some(from_root) => from_root.to_string(),
            None => format!("{dir}/{target}"),
        };
        if rel.starts_with("tests/support/") && !out.contains(&rel) {
            out.push(rel.clone());
            included("tests/support", &read(&rel), out);
        }
    }
}

fn layout() -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut all = Vec::new();
    rust_files(&repo().join("tests"), &mut all);
    let (mut targets, mut helpers, mut misplaced) = (Vec::new(), Vec::new(), Vec::new());
    for rel in all {
        let name = rel.trim_start_matches("tests/");
        if !name.contains('/') && (name.starts_with("bin_") || name.starts_with("lib_")) {
            targets.push(rel);
        } else if name.starts_with("support/") && name.matches('/').count() == 1 {
            helpers.push(rel);
        } else {
            misplaced.push(rel);
        }
    }
    (targets, helpers, misplaced)
}

#[test]
fn every_rust_file_under_tests_is_a_target_or_a_helper() {
    let (targets, helpers, misplaced) = layout();
    assert!(
        misplaced.is_empty(),
        "not a test target (tests/bin_*.rs, tests/lib_*.rs) nor a helper (tests/support/<topic>.rs): {misplaced:?}"
    );
    assert!(targets.len() > 10 && !helpers.is_empty(), "{targets:?}");
    let mut used = Vec::new();
    for t in &targets {
        included("tests", &read(t), &mut used);
    }
    // The examples share the moto helper with the tests.
    for e in fs::read_dir(repo().join("examples"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(text) = fs::read_to_string(e.path()) {
            included("examples", &text, &mut used);
        }
    }
    let unused: Vec<&String> = helpers.iter().filter(|h| !used.contains(h)).collect();
    assert!(unused.is_empty(), "helpers no test includes: {unused:?}");
}

#[test]
fn bin_tests_drive_the_binary_and_lib_tests_do_not() {
    let (targets, _, _) = layout();
    for t in targets {
        let text = read(&t);
        let mut with = vec![text.clone()];
        let mut inc = Vec::new();
        included("tests", &text, &mut inc);
        with.extend(inc.iter().map(|h| read(h)));
        let names_binary = with.iter().any(|s| s.contains(BIN_MARK));
        if t.starts_with("tests/bin_") {
            // The package tests run the binary from the packages packaging/build.sh made.
            assert!(
                names_binary || text.contains("target/packages"),
                "{t} is a bin_ test but never runs the built binary"
            );
        } else {
            assert!(
                !names_binary,
                "{t} runs the built binary: name it tests/bin_{}",
                t.trim_start_matches("tests/lib_")
            );
        }
    }
}
