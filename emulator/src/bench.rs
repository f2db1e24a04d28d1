//! Fleet benchmark: an emulator subprocess under many long-polling hosts plus a signed
//! poll/spec/ack/complete load, reporting throughput, latency percentiles and the emulator's
//! RSS and CPU. Bounded in time; stops the emulator with SIGTERM at the end.

use crate::client::{self, AdminClient, HostClient};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `codedeploy-emulator` binary to run as the server.
    pub emulator_bin: PathBuf,
    /// Hosts that only hold idle long polls.
    pub pollers: usize,
    /// Hosts that run deployments back to back.
    pub workers: usize,
    /// Target request rate of the workers together; 0 means as fast as possible.
    pub rate: u32,
    pub secs: u64,
}

#[derive(Debug, Default)]
pub struct BenchReport {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub pollers_holding: u64,
    pub deployments: u64,
    pub rss_idle_kb: u64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub cpu_secs: f64,
    pub clean_exit: bool,
}

fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in seconds (assumes the usual 100 ticks per second).
fn proc_cpu_secs(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<BenchReport> {
    let idle = opts.secs + 60;
    let mut child = tokio::process::Command::new(&opts.emulator_bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--poll-idle-secs",
            &idle.to_string(),
            "--threads",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("emulator exited at once"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut endpoint = None;
    while let Some(line) =
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??
    {
        if let Some(v) = line.strip_prefix("endpoint: ") {
            endpoint = Some(v.to_string());
        }
        if line.starts_with("admin_url: ") {
            break;
        }
    }
    let endpoint = endpoint.ok_or_else(|| anyhow::anyhow!("emulator printed no endpoint"))?;
    let admin = AdminClient::new(&format!("{endpoint}/admin"));
    let http = client::http(opts.pollers + opts.workers + 16);
    let mut hosts = Vec::new();
    for i in 0..opts.pollers + opts.workers {
        let (id, group) = if i < opts.pollers {
            (format!("idle-{i}"), "idle".to_string())
        } else {
            (format!("busy-{i}"), format!("g{i}"))
        };
        let (ak, sk) = (format!("AKIDBENCH{i:06}"), format!("secret-{i}"));
        admin
            .request(
                "POST",
                "/hosts",
                Some(&json!({ "host_id": id, "access_key": ak, "secret_key": sk, "group": group })),
            )
            .await?;
        hosts.push((
            HostClient::new(http.clone(), &endpoint, &id, &ak, &sk, "us-east-1"),
            group,
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle_kb = proc_status(pid, "VmRSS:");
    let cpu_before = proc_cpu_secs(pid);
    let holding = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(opts.secs);
    let mut idle_tasks = Vec::new();
    for (h, _) in hosts.iter().take(opts.pollers) {
        let h = h.clone();
        let holding = holding.clone();
        idle_tasks.push(tokio::spawn(async move {
            holding.fetch_add(1, Ordering::Relaxed);
            let r = h.poll().await;
            holding.fetch_sub(1, Ordering::Relaxed);
            r.is_ok()
        }));
    }
    let deployments = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for (h, group) in hosts.iter().skip(opts.pollers).cloned() {
        let admin = admin.clone();
        let deployments = deployments.clone();
        let pace = (opts.rate > 0)
            .then(|| Duration::from_secs_f64(opts.workers as f64 / opts.rate as f64));
        workers.push(tokio::spawn(worker(
            h,
            group,
            admin,
            deployments,
            pace,
            deadline,
        )));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let pollers_holding = holding.load(Ordering::Relaxed);
    let cpu_secs = proc_cpu_secs(pid) - cpu_before;
    let (rss_kb, hwm_kb) = (proc_status(pid, "VmRSS:"), proc_status(pid, "VmHWM:"));
    // SIGTERM must answer the held long polls and exit cleanly.
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let clean_exit = matches!(tokio::time::timeout(Duration::from_secs(15), child.wait()).await, Ok(Ok(s)) if s.success());
    for t in idle_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(BenchReport {
        requests: lat.len() as u64,
        errors,
        elapsed,
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        max_us: lat.last().copied().unwrap_or(0),
        pollers_holding,
        deployments: deployments.load(Ordering::Relaxed),
        rss_idle_kb,
        rss_kb,
        hwm_kb,
        cpu_secs,
        clean_exit,
    })
}

async fn worker(
    h: HostClient,
    group: String,
    admin: AdminClient,
    deployments: Arc<AtomicU64>,
    pace: Option<Duration>,
    deadline: Instant,
) -> (Vec<u64>, u64) {
    let mut lat = Vec::new();
    let mut errors = 0u64;
    let mut ticker = pace.map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut need_deployment = true;
    let mut pending: Option<serde_json::Value> = None;
    while Instant::now() < deadline {
        if need_deployment {
            let req = json!({ "group": group, "config": "AllAtOnce",
                "revision": { "type": "S3", "bucket": "bench", "key": "app.tgz", "bundle_type": "tgz" } });
            if admin
                .request("POST", "/deployments", Some(&req))
                .await
                .is_err()
            {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            deployments.fetch_add(1, Ordering::Relaxed);
            need_deployment = false;
        }
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let t0 = Instant::now();
        let ok = match pending.take() {
            None => match h.poll().await {
                Ok(cmd) => {
                    pending = cmd;
                    true
                }
                Err(_) => false,
            },
            Some(cmd) => {
                let id = cmd["HostCommandIdentifier"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let name = cmd["CommandName"].as_str().unwrap_or("").to_string();
                // Alternate ack and complete over two ticks so every request is paced alike.
                if cmd.get("acked").is_none() {
                    let mut c = cmd.clone();
                    c["acked"] = json!(true);
                    pending = Some(c);
                    h.ack(&id, false).await.is_ok()
                } else {
                    need_deployment = name == "ValidateService";
                    h.complete(&id, "Succeeded").await.is_ok()
                }
            }
        };
        lat.push(t0.elapsed().as_micros() as u64);
        if !ok {
            errors += 1;
        }
    }
    (lat, errors)
}
