//! The shipped systemd unit: `systemd-analyze verify` accepts it without a single
//! diagnostic, and the settings the agent relies on are there (ADR 0007).

use codedeploy_agent::config::Config;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[path = "support/skip.rs"]
mod skip;

/// How to get systemd-analyze, for the skip line.
const GET_ANALYZE: &str = "apt-get install systemd (scripts/test does)";

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/systemd/codedeploy-agent.service"
);

/// `Key=value` lines of the [Service] section.
fn service_settings() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(UNIT).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[Service]" && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

fn get(settings: &[(String, String)], key: &str) -> String {
    settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{key} is not set"))
}

#[test]
fn systemd_analyze_verify_is_silent() {
    if skip::require_tool("systemd-analyze", GET_ANALYZE).is_none() {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", UNIT])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and bad values; it only prints them.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("codedeploy-agent.service"))
        .collect();
    assert!(out.status.success(), "{stderr}");
    assert!(about_unit.is_empty(), "{stderr}");
}

#[test]
fn verify_catches_a_bad_setting() {
    if skip::require_tool("systemd-analyze", GET_ANALYZE).is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("codedeploy-agent.service");
    let text = std::fs::read_to_string(UNIT).unwrap();
    std::fs::write(&bad, text.replace("KillMode=process", "KillMode=proces")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("kill mode"));
}

#[test]
fn settings_the_agent_relies_on() {
    let s = service_settings();
    assert_eq!(get(&s, "Type"), "notify");
    assert_eq!(get(&s, "NotifyAccess"), "main");
    assert_eq!(get(&s, "KillMode"), "process");
    assert_eq!(get(&s, "Delegate"), "yes");
    assert_eq!(get(&s, "Restart"), "on-failure");
    assert_eq!(get(&s, "WatchdogSec"), "10min");
    let stop: u64 = get(&s, "TimeoutStopSec").parse().unwrap();
    assert!(stop > Config::default().kill_agent_max_wait_time_seconds);
    // The journal budget (ADR 0007): the unit's rate limit leaves the agent room above the
    // most hook output it forwards in one interval.
    assert_eq!(get(&s, "LogRateLimitIntervalSec"), "30s");
    assert_eq!(
        codedeploy_agent::logging::WINDOW,
        Duration::from_secs(30),
        "the agent's window is the unit's interval"
    );
    let burst: u64 = get(&s, "LogRateLimitBurst").parse().unwrap();
    assert!(
        burst >= codedeploy_agent::logging::WINDOW_LINES + 5000,
        "{burst}"
    );
    let exec = get(&s, "ExecStart");
    assert!(
        exec.contains("exec /opt/codedeploy-agent/bin/codedeploy-agent run"),
        "{exec}"
    );
    for sandbox in [
        "PrivateTmp",
        "ProtectSystem",
        "NoNewPrivileges",
        "ProtectHome",
    ] {
        assert!(
            !s.iter().any(|(k, _)| k == sandbox),
            "{sandbox} would apply to hooks"
        );
    }
    assert!(Path::new(UNIT).is_file());
}

const HARDENING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/systemd/hardening.conf.example"
);

/// `<score> <label>` from `systemd-analyze security --offline=true UNIT`.
fn exposure(unit: &Path) -> String {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    let after = line.rsplit_once(": ").unwrap().1;
    let mut words = after.split_whitespace();
    format!("{} {}", words.next().unwrap(), words.next().unwrap())
}

/// The example drop-in verifies cleanly, lowers the exposure, and the figures in
/// docs/operations.md are the ones measured; the default unit stays without it.
#[test]
fn hardening_example_verifies_and_its_exposure_is_documented() {
    if skip::require_tool("systemd-analyze", GET_ANALYZE).is_none() {
        return;
    }
    let dropin = std::fs::read_to_string(HARDENING).unwrap();
    let service = dropin
        .split_once("[Service]\n")
        .expect("the drop-in has a [Service] section")
        .1;
    // A drop-in's settings are the unit's own settings added last: offline analysis reads
    // one file, so the test makes that file.
    let t = tempfile::tempdir().unwrap();
    let hardened = t.path().join("codedeploy-agent.service");
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let (head, install) = unit.split_once("\n[Install]").unwrap();
    std::fs::write(&hardened, format!("{head}\n{service}\n[Install]{install}")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&hardened)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("codedeploy-agent.service"),
        "verify complains: {stderr}"
    );
    let before = exposure(Path::new(UNIT));
    let after = exposure(&hardened);
    let score = |s: &str| s.split(' ').next().unwrap().parse::<f64>().unwrap();
    assert!(score(&after) < score(&before), "{before} -> {after}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    for line in [
        format!("default unit: {before}"),
        format!("with hardening.conf.example: {after}"),
    ] {
        assert!(doc.contains(&line), "docs/operations.md lacks {line:?}");
    }
}
