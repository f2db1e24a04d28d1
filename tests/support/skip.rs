//! How a test skips when this machine lacks something it needs: one line on stdout,
//! `SKIPPED <test>: <what> is missing; <how to get it>`, then the test returns. Never a panic.
//!
//! `scripts/test` installs every tool the suite uses and sets `CODEDEPLOY_TEST_STRICT=1`;
//! then a missing tool that it installs ([`Kind::Tool`]) fails the test instead, so a green
//! run of `scripts/test` means the test ran. What a machine may legitimately lack
//! ([`Kind::Machine`]: root, a container runtime, a kernel feature) always skips.
#![allow(dead_code)]

/// Whether `scripts/test` provides the missing thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tool `scripts/test` installs (moto, rpm, the packaging tools, systemd-analyze).
    Tool,
    /// Something only the machine decides (root, nspawn, cgroup v2).
    Machine,
}

/// The environment variable that turns a missing [`Kind::Tool`] into a failure.
pub const STRICT_VAR: &str = "CODEDEPLOY_TEST_STRICT";

/// The line a skip prints (PURE, for the tests of this helper).
pub fn line(test: &str, missing: &str, how: &str) -> String {
    format!("SKIPPED {test}: {missing} is missing; {how}")
}

/// Prints the skip line for the running test (or fails it, see the module doc). Call it and
/// return from the test.
pub fn skip(missing: &str, how: &str, kind: Kind) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("test");
    let text = line(test, missing, how);
    let strict = std::env::var_os(STRICT_VAR).is_some_and(|v| v == "1");
    if strict && kind == Kind::Tool {
        panic!("{text} ({STRICT_VAR}=1: scripts/test should have installed it)");
    }
    println!("{text}");
}

/// Whether `tool --version` runs.
pub fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// `Some(())` when `tool` runs, else the skip line and `None`.
pub fn require_tool(tool: &str, how: &str) -> Option<()> {
    if have(tool) {
        Some(())
    } else {
        skip(tool, how, Kind::Tool);
        None
    }
}
