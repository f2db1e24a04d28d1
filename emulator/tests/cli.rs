//! The binary: `serve` prints endpoint, CA and admin URL and stops cleanly on SIGTERM;
//! `admin` drives it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_codedeploy-emulator");

/// Kills the server if the test fails before stopping it.
struct Reap(std::process::Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_prints_its_endpoints_admin_works_and_sigterm_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--pki-dir"])
        .arg(dir.path().join("pki"))
        .arg("--state-file")
        .arg(&state)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut fields = std::collections::HashMap::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let (k, v) = line.trim().split_once(": ").unwrap();
        fields.insert(k.to_string(), v.to_string());
    }
    assert!(fields["endpoint"].starts_with("http://127.0.0.1:"));
    assert!(std::path::Path::new(&fields["ca_cert"]).exists());
    let admin = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(["admin", "--url", &fields["admin_url"]])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    admin(&[
        "register-host",
        "--host-id",
        "arn:aws:ec2:us-east-1:1:instance/i-9",
        "--access-key",
        "AK",
        "--secret-key",
        "S",
    ]);
    let d = admin(&[
        "deploy",
        "--bucket",
        "b",
        "--key",
        "k.zip",
        "--bundle-type",
        "zip",
        "--config",
        "host-count:0",
    ]);
    let id = d["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(admin(&["status", &id])["status"], "InProgress");
    let history = admin(&["history", "arn:aws:ec2:us-east-1:1:instance/i-9"]);
    assert_eq!(history[1]["detail"], "ApplicationStop");
    admin(&[
        "fault",
        "--operation",
        "PollHostCommand",
        "--kind",
        "slow:10",
        "--count",
        "2",
    ]);
    assert_eq!(admin(&["stop", &id]), serde_json::json!({}));

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let code = child.0.wait().unwrap();
    assert!(code.success(), "{code:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest.trim(), "stopped");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["deployments"][&id]["status"], "Stopped");
}
