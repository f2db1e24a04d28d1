//! `codedeploy-emulator`: `serve` runs the emulator, `admin` drives a running one over its
//! admin API, `bench` measures one under a fleet-sized load.

use clap::{Parser, Subcommand};
use codedeploy_emulator::client::AdminClient;
use codedeploy_emulator::{bench, Emulator, EmulatorConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "codedeploy-emulator",
    version,
    about = "Local CodeDeploy host-command service for tests"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the host-command API and the admin API on one loopback port.
    Serve {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long, default_value_t = 45)]
        poll_idle_secs: u64,
        #[arg(long, default_value_t = 3600)]
        command_timeout_secs: u64,
        /// Directory holding the test CA and signer (created if missing).
        #[arg(long)]
        pki_dir: Option<PathBuf>,
        /// Load the state from this JSON file and keep saving it there.
        #[arg(long)]
        state_file: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Finished deployments kept with their commands and history; 0 keeps all.
        #[arg(long, default_value_t = codedeploy_emulator::retention::DEFAULT_KEEP_FINISHED)]
        keep_finished: usize,
    },
    /// Talk to a running emulator's admin API.
    Admin {
        /// Admin URL as printed by `serve`.
        #[arg(long, env = "CODEDEPLOY_EMULATOR_ADMIN")]
        url: String,
        #[command(subcommand)]
        op: AdminOp,
    },
    /// Start an emulator subprocess and load it; prints throughput, latency and RSS.
    Bench {
        #[arg(long, default_value_t = 500)]
        pollers: usize,
        #[arg(long, default_value_t = 32)]
        workers: usize,
        /// Target requests per second of poll/ack/complete traffic; 0 = unlimited.
        #[arg(long, default_value_t = 2000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
}

#[derive(Subcommand)]
enum AdminOp {
    Info,
    Hosts,
    Deployments,
    State,
    RegisterHost {
        #[arg(long)]
        host_id: String,
        #[arg(long)]
        access_key: String,
        #[arg(long)]
        secret_key: String,
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// Create a deployment: either `--json REQUEST` or the flags.
    Deploy {
        #[arg(long)]
        json: Option<String>,
        #[arg(long, default_value = "default")]
        group: String,
        #[arg(long, default_value = "app")]
        application: String,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = "tgz")]
        bundle_type: String,
        #[arg(long)]
        github_repo: Option<String>,
        #[arg(long)]
        commit: Option<String>,
        /// OneAtATime, HalfAtATime, AllAtOnce, host-count:N or fleet-percent:N.
        #[arg(long, default_value = "OneAtATime")]
        config: String,
        #[arg(long)]
        auto_rollback: bool,
        #[arg(long)]
        load_balancer: bool,
        /// Comma-separated replacement hosts: makes the deployment blue/green.
        #[arg(long)]
        replacement_hosts: Option<String>,
    },
    Status {
        deployment_id: String,
    },
    Stop {
        deployment_id: String,
    },
    History {
        host_id: String,
    },
    /// Inject a fault: KIND is server-error, throttle, drop, redeliver or slow:MILLIS.
    Fault {
        #[arg(long)]
        operation: Option<String>,
        #[arg(long)]
        host_id: Option<String>,
        #[arg(long)]
        kind: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    ClearFaults,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve {
            listen,
            region,
            poll_idle_secs,
            command_timeout_secs,
            pki_dir,
            state_file,
            threads,
            keep_finished,
        } => {
            let config = EmulatorConfig {
                listen,
                region,
                poll_idle: Duration::from_secs(poll_idle_secs),
                command_timeout: Duration::from_secs(command_timeout_secs),
                pki_dir,
                state_file,
                threads,
                keep_finished: (keep_finished > 0).then_some(keep_finished),
            };
            serve(config).await
        }
        Cmd::Admin { url, op } => admin(&url, op).await,
        Cmd::Bench {
            pollers,
            workers,
            rate,
            secs,
        } => run_bench(pollers, workers, rate, secs).await,
    };
    if let Err(e) = result {
        eprintln!("codedeploy-emulator: {e:#}");
        std::process::exit(1);
    }
}

async fn serve(config: EmulatorConfig) -> anyhow::Result<()> {
    let emu = Emulator::start(config)?;
    println!("endpoint: {}", emu.endpoint());
    println!("ca_cert: {}", emu.ca_cert_path().display());
    println!("admin_url: {}", emu.admin_url());
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tokio::task::spawn_blocking(move || emu.shutdown()).await?;
    println!("stopped");
    Ok(())
}

fn parse_config(s: &str) -> anyhow::Result<Value> {
    Ok(match s.split_once(':') {
        Some(("host-count", n)) => json!({ "HostCount": n.parse::<u32>()? }),
        Some(("fleet-percent", n)) => json!({ "FleetPercent": n.parse::<u32>()? }),
        _ => json!(s),
    })
}

fn parse_fault(kind: &str) -> anyhow::Result<Value> {
    Ok(match kind.split_once(':') {
        Some(("slow", ms)) => json!({ "fault": "Slow", "delay_ms": ms.parse::<u64>()? }),
        None if kind == "server-error" => json!({ "fault": "ServerError" }),
        None if kind == "throttle" => json!({ "fault": "Throttle" }),
        None if kind == "drop" => json!({ "fault": "Drop" }),
        None if kind == "redeliver" => json!({ "fault": "Redeliver" }),
        _ => anyhow::bail!(
            "unknown fault kind {kind:?}: use server-error, throttle, drop, redeliver or slow:MILLIS"
        ),
    })
}

async fn admin(url: &str, op: AdminOp) -> anyhow::Result<()> {
    let c = AdminClient::new(url);
    let out = match op {
        AdminOp::Info => c.request("GET", "", None).await?,
        AdminOp::Hosts => c.request("GET", "/hosts", None).await?,
        AdminOp::Deployments => c.request("GET", "/deployments", None).await?,
        AdminOp::State => c.request("GET", "/state", None).await?,
        AdminOp::RegisterHost {
            host_id,
            access_key,
            secret_key,
            group,
        } => {
            let body = json!({ "host_id": host_id, "access_key": access_key, "secret_key": secret_key, "group": group });
            c.request("POST", "/hosts", Some(&body)).await?
        }
        AdminOp::Deploy {
            json: Some(text), ..
        } => {
            let body: Value = serde_json::from_str(&text)?;
            c.request("POST", "/deployments", Some(&body)).await?
        }
        AdminOp::Deploy {
            json: None,
            group,
            application,
            bucket,
            key,
            bundle_type,
            github_repo,
            commit,
            config,
            auto_rollback,
            load_balancer,
            replacement_hosts,
        } => {
            let revision = match (bucket, key, github_repo, commit) {
                (Some(b), Some(k), None, None) => {
                    json!({ "type": "S3", "bucket": b, "key": k, "bundle_type": bundle_type })
                }
                (None, None, Some(repo), Some(commit)) => {
                    let (account, repository) = repo
                        .split_once('/')
                        .ok_or_else(|| anyhow::anyhow!("--github-repo must be ACCOUNT/REPO"))?;
                    json!({ "type": "GitHub", "account": account, "repository": repository, "commit_id": commit })
                }
                _ => anyhow::bail!("give either --bucket and --key, or --github-repo and --commit"),
            };
            let mut body = json!({ "group": group, "application": application, "revision": revision,
                "config": parse_config(&config)?, "auto_rollback": auto_rollback, "load_balancer": load_balancer });
            if let Some(r) = replacement_hosts {
                body["blue_green"] =
                    json!({ "replacement_hosts": r.split(',').collect::<Vec<_>>() });
            }
            c.request("POST", "/deployments", Some(&body)).await?
        }
        AdminOp::Status { deployment_id } => {
            c.request("GET", &format!("/deployments/{deployment_id}"), None)
                .await?
        }
        AdminOp::Stop { deployment_id } => {
            c.request("POST", &format!("/deployments/{deployment_id}/stop"), None)
                .await?
        }
        AdminOp::History { host_id } => {
            let q = codedeploy_emulator::admin::percent_encode(&host_id);
            c.request("GET", &format!("/history?host_id={q}"), None)
                .await?
        }
        AdminOp::Fault {
            operation,
            host_id,
            kind,
            count,
        } => {
            let mut body = parse_fault(&kind)?;
            body["operation"] = json!(operation);
            body["host_id"] = json!(host_id);
            body["count"] = json!(count);
            c.request("POST", "/faults", Some(&body)).await?
        }
        AdminOp::ClearFaults => c.request("DELETE", "/faults", None).await?,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn run_bench(pollers: usize, workers: usize, rate: u32, secs: u64) -> anyhow::Result<()> {
    let emulator_bin = std::env::current_exe()?;
    let opts = bench::BenchOptions {
        emulator_bin,
        pollers,
        workers,
        rate,
        secs: secs.clamp(1, 300),
    };
    let r = bench::run(opts).await?;
    let secs = r.elapsed.as_secs_f64();
    println!("pollers held at once: {} (of {pollers})", r.pollers_holding);
    println!(
        "poll/ack/complete requests: {} in {secs:.1} s = {:.0} req/s (target {rate}), errors {}",
        r.requests,
        r.requests as f64 / secs,
        r.errors
    );
    println!("deployments run: {}", r.deployments);
    println!(
        "latency us: p50 {} p90 {} p99 {} max {}",
        r.p50_us, r.p90_us, r.p99_us, r.max_us
    );
    println!(
        "emulator RSS: idle {} KiB, under load {} KiB, peak (VmHWM) {} KiB",
        r.rss_idle_kb, r.rss_kb, r.hwm_kb
    );
    println!(
        "emulator CPU: {:.2} s over {secs:.1} s ({:.0}% of one core)",
        r.cpu_secs,
        r.cpu_secs / secs * 100.0
    );
    println!("clean exit on SIGTERM: {}", r.clean_exit);
    Ok(())
}
