//! Daemon benchmark: idle RSS after long polling, and pickup latency (a command becoming
//! ready in the emulator -> the agent's acknowledgement), against the release binary.
//!
//! Usage: cargo build --release && cargo run --release --example daemon_bench -- [IDLE_SECS] [ROUNDS]
//! Prints figures; asserts nothing.

use codedeploy_emulator::{DeploymentRequest, Emulator, EmulatorConfig, HostRegistration};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let idle_secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
    let bin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/release/codedeploy-agent"
    );
    let emu = Emulator::start(EmulatorConfig::default())?; // 45 s long polls, as the service
    let host = "arn:aws:iam::111122223333:user/bench-host";
    emu.register(HostRegistration {
        host_id: host.into(),
        access_key: "AKIABENCH".into(),
        secret_key: "bench-secret".into(),
        session_token: None,
        group: "default".into(),
    })?;
    let dir = tempfile::tempdir()?;
    let p = dir.path();
    std::fs::write(
        p.join("onprem.yml"),
        format!("region: us-east-1\niam_user_arn: {host}\naws_access_key_id: AKIABENCH\naws_secret_access_key: bench-secret\n"),
    )?;
    std::fs::write(
        p.join("agent.yml"),
        format!(
            "root_dir: {p}/root\nlog_dir: {p}/log\npid_dir: {p}/state\non_premises_config_file: {p}/onprem.yml\n\
             deploy_control_endpoint: {}\ndeployment_spec_ca_file: {}\nwait_between_runs: 1\n\
             s3_endpoint_override: http://127.0.0.1:9\n",
            emu.endpoint(),
            emu.ca_cert_path().display(),
            p = p.display()
        ),
    )?;
    let mut agent = Command::new(bin)
        .args(["run", "--config-file"])
        .arg(p.join("agent.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = agent.id();
    println!("agent pid {pid}; idling {idle_secs} s with long polls held ...");
    std::thread::sleep(Duration::from_secs(idle_secs));
    println!(
        "idle after {idle_secs} s: VmRSS {:.1} MiB, VmHWM (peak) {:.1} MiB, threads {}",
        status_kib(pid, "VmRSS:") as f64 / 1024.0,
        status_kib(pid, "VmHWM:") as f64 / 1024.0,
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0)
    );
    // Pickup latency: each deployment's first command (ApplicationStop, a noop here) is ready
    // at creation; the agent's long poll wakes, fetches and checks the signed spec, and acks.
    let mut lat = Vec::new();
    for _ in 0..rounds {
        let id = emu.create_deployment(DeploymentRequest::s3(
            "default",
            "no-bucket",
            "k.zip",
            "zip",
        ))?;
        let until = Instant::now() + Duration::from_secs(30);
        let cmd_id = loop {
            let hist = emu.host_history(host);
            if let Some(c) = hist
                .iter()
                .rev()
                .find(|e| e.deployment_id == id)
                .and_then(|e| e.command.clone())
            {
                if let Some(c) = emu.command(&c) {
                    if c.acked_ms.is_some() {
                        break Some(c.id);
                    }
                }
            }
            if Instant::now() > until {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(c) = cmd_id.and_then(|c| emu.command(&c)) {
            if let Some(acked) = c.acked_ms {
                lat.push(acked.saturating_sub(c.created_ms));
            }
        }
        // Let the deployment end before the next one: DownloadBundle fails at once, the S3
        // endpoint being a closed loopback port (no traffic leaves the machine).
        let until = Instant::now() + Duration::from_secs(30);
        while emu
            .deployment(&id)
            .is_some_and(|d| d.status == codedeploy_emulator::DeploymentStatus::InProgress)
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    lat.sort_unstable();
    if !lat.is_empty() {
        println!(
            "pickup latency (ready -> acknowledged) over {} commands: median {} ms, p90 {} ms, max {} ms",
            lat.len(),
            lat[lat.len() / 2],
            lat[lat.len() * 9 / 10],
            lat[lat.len() - 1]
        );
    }
    println!(
        "after the deployments: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        status_kib(pid, "VmRSS:") as f64 / 1024.0,
        status_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = agent.wait();
    emu.shutdown();
    Ok(())
}
