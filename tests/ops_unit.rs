//! The shipped systemd unit: `systemd-analyze verify` accepts it without a single
//! diagnostic, and the settings the agent relies on are there (ADR 0007).

use codedeploy_agent::config::Config;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: systemd-analyze is not installed");
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
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: systemd-analyze is not installed");
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
