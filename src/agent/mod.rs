//! The daemon (`codedeploy-agent run`): identity, crash recovery, the poll loop, and a
//! graceful stop. One process; commands run on blocking threads through the same executor
//! as deploy-local.
//!
//! Invariants: at most `MAX_CONCURRENT_COMMANDS` commands run at once and at most one per
//! deployment group; a command the service delivers again while it still runs is not run twice;
//! every command polled gets exactly one completion, also across a restart (tracking files,
//! docs/behaviour/protocol.md#crash-recovery, and docs/crash-recovery.md); polling stops at once on
//! SIGTERM/SIGINT.

mod process;
mod refresh;
pub mod tracking;

use crate::config::{onprem, Config};
use crate::control::{
    self, Backoff, CommandClient, CommandStatus, HostCommand, SpecFormatPolicy, TrustAnchors,
};
use crate::diagnostics::Diagnostics;
use crate::executor::Executor;
use crate::status::StatusFile;
use crate::transfer::{Fetcher, GitHubSettings, S3Settings};
use crate::{notify, state};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{watch, Semaphore};
use tracing::{error, info, warn};
use tracking::Tracker;

/// Commands executing at once, across deployment groups (the official pool's size).
pub const MAX_CONCURRENT_COMMANDS: usize = 16;
/// How long one completion report is retried before the agent gives up on it.
const COMPLETE_MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Completions remembered so a command delivered again after it finished is answered, not rerun.
const REMEMBERED_COMPLETIONS: usize = 256;
/// The window over which the first poll after the last running command finished is spread
/// (uniformly, see [`spread_next_poll`]). 5 s: a fleet's polls then fall in 5 different
/// seconds instead of one, and a command arriving in that window waits at most 5 s (the
/// official agent pauses `wait_between_runs` after every poll anyway).
pub const FIRST_POLL_SPREAD: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot establish this host's identity: {0}")]
    Identity(control::ControlError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("cannot load the deployment-spec trust anchors from {path}: {message}")]
    Trust { path: String, message: String },
    #[error("cannot set up signal handling: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Transfer(Box<crate::transfer::TransferError>),
}

/// What the poll loop and the command tasks share.
pub(crate) struct Shared {
    pub client: CommandClient,
    pub host_id: String,
    pub executor: Arc<Executor>,
    pub tracker: Tracker,
    pub trust: Option<TrustAnchors>,
    pub spec_policy: SpecFormatPolicy,
    pub backoff: Arc<Backoff>,
    pub status: Arc<StatusFile>,
    in_flight: Mutex<HashSet<String>>,
    completed: Mutex<VecDeque<(String, CommandStatus, Diagnostics)>>,
    /// A command finished since the poll loop last looked (see [`spread_next_poll`]).
    finished: AtomicBool,
    group_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    /// The lock that keeps one deployment group's commands in sequence.
    pub fn group_lock(&self, group: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.group_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(group.to_string()).or_default().clone()
    }

    /// Reports a command's result, retrying until the service takes it (bounded); true
    /// when it did.
    pub async fn complete(
        &self,
        id: &str,
        status: CommandStatus,
        diagnostics: &Diagnostics,
    ) -> bool {
        let envelope = control::Envelope {
            format: "JSON".into(),
            payload: diagnostics.to_payload(),
        };
        let accepted = match control::complete_until_accepted(
            &self.client,
            id,
            status.clone(),
            Some(&envelope),
            &self.backoff,
            COMPLETE_MAX_WAIT,
        )
        .await
        {
            Ok(()) => {
                info!("reported {status:?} for command {id}");
                true
            }
            Err(e) => {
                error!("could not report {status:?} for command {id}: {e}");
                false
            }
        };
        let mut done = self.completed.lock().unwrap_or_else(|p| p.into_inner());
        done.push_back((id.to_string(), status, diagnostics.clone()));
        if done.len() > REMEMBERED_COMPLETIONS {
            done.pop_front();
        }
        accepted
    }

    fn already_completed(&self, id: &str) -> Option<(CommandStatus, Diagnostics)> {
        let done = self.completed.lock().unwrap_or_else(|p| p.into_inner());
        done.iter()
            .rev()
            .find(|(i, ..)| i == id)
            .map(|(_, s, d)| (s.clone(), d.clone()))
    }

    /// Marks `id` as running; false when it already is (a re-delivery).
    fn claim(&self, id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string())
    }
    fn release(&self, id: &str) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.finished.store(true, Ordering::SeqCst);
    }
    fn running(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Seconds since the epoch, for the watchdog heartbeat.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// PURE: whether the next poll waits a random part of [`FIRST_POLL_SPREAD`] first: when a
/// command finished since the last poll began and none is running now. A fleet that got a
/// deployment together finishes it together, and would otherwise start its next long polls
/// (and so every later one) in the same second; the wait gives each agent its own phase.
/// Polls while commands run are never delayed, so the next lifecycle event is not either.
fn spread_next_poll(finished_since_last_poll: bool, running: usize) -> bool {
    finished_since_last_poll && running == 0
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> Result<(), AgentError> {
    let onprem = onprem::load(&cfg.on_premises_config_file)?;
    let identity = control::resolve_identity(&cfg, onprem.as_ref())
        .await
        .map_err(AgentError::Identity)?;
    info!(
        "Initializing Host Agent: Host Identifier = {}",
        identity.host_identifier
    );
    info!("credentials: {}", identity.source);
    let endpoint = control::resolve_endpoint(&control::EndpointInputs {
        override_url: cfg.deploy_control_endpoint.clone(),
        region: identity.region.clone(),
        imds_domain: identity.imds_domain.clone(),
        enable_auth_policy: cfg.enable_auth_policy,
        use_fips: cfg.use_fips_mode,
    })?;
    info!("CodeDeploy endpoint: {}", endpoint.url);
    let version = crate::status::version::agent_version(&cfg.root_dir);
    let client = CommandClient::new(control::ClientSettings {
        endpoint: endpoint.url.clone(),
        region: endpoint.region.clone(),
        signing_name: endpoint.signing_name.clone(),
        target_prefix: endpoint.target_prefix.clone(),
        agent_version: version.value.clone(),
        proxy: cfg.command_proxy(),
        read_timeout: Duration::from_secs(cfg.http_read_timeout),
        credentials: identity.credentials.clone(),
    })?;
    let trust = match &cfg.deployment_spec_ca_file {
        None => None,
        Some(p) => Some(
            TrustAnchors::from_pem_file(p).map_err(|e| AgentError::Trust {
                path: p.display().to_string(),
                message: e.to_string(),
            })?,
        ),
    };
    let status = Arc::new(StatusFile::new(&cfg));
    status.agent_started(
        std::process::id(),
        &version.value,
        &identity.source,
        &endpoint.url,
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let mut executor = Executor::new(cfg.clone(), nix::unistd::geteuid().is_root());
    executor.cancel = Some(cancel.clone());
    executor.remote = Some(Arc::new(LazyFetcher {
        cfg: cfg.clone(),
        identity: identity.clone(),
        runtime: tokio::runtime::Handle::current(),
        fetcher: std::sync::OnceLock::new(),
    }));
    let layout = state::Layout::new(cfg.root_dir.clone());
    let shared = Arc::new(Shared {
        client,
        host_id: identity.host_identifier.clone(),
        executor: Arc::new(executor),
        tracker: Tracker::new(layout.ongoing_dir(&cfg.ongoing_deployment_tracking)),
        trust,
        spec_policy: if cfg.codedeploy_test_profile == "prod" {
            SpecFormatPolicy::PkcsOnly
        } else {
            SpecFormatPolicy::AllowTextJson
        },
        backoff: Arc::new(Backoff::new().with_waits(
            Duration::from_secs(cfg.wait_after_throttle_error),
            Duration::from_secs(cfg.wait_after_connection_problem),
        )),
        status: status.clone(),
        in_flight: Mutex::new(HashSet::new()),
        completed: Mutex::new(VecDeque::new()),
        finished: AtomicBool::new(false),
        group_locks: Mutex::new(HashMap::new()),
    });

    recover_from_crash(&shared).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_signal_handler(stop_tx)?;
    let heartbeat = Arc::new(AtomicU64::new(now_secs()));
    spawn_watchdog(heartbeat.clone(), cfg.http_read_timeout, stop_rx.clone());

    status.polling();
    crate::memory::release_startup_pages();
    notify::ready();
    notify::status(&status.line());
    info!("agent started; polling for commands");

    let refresher = refresh::spawn(status.clone());
    let tasks = poll_loop(&shared, &cfg, heartbeat, stop_rx).await;
    shutdown(&shared, &cfg, tasks, &cancel).await;
    refresher.abort();
    notify::status(&status.line());
    Ok(())
}

/// The S3 and GitHub downloader, built at the first download: the AWS SDK's set-up is the
/// largest part of the agent, and an idle agent need not carry it.
struct LazyFetcher {
    cfg: Config,
    identity: control::Identity,
    runtime: tokio::runtime::Handle,
    /// The first build's outcome, kept: a set-up that failed fails every download the same way.
    fetcher: std::sync::OnceLock<Result<Fetcher, Arc<AgentError>>>,
}

impl crate::executor::RemoteFetch for LazyFetcher {
    fn fetch(
        &self,
        spec: &crate::deployspec::DeploymentSpec,
        deployment_dir: &std::path::Path,
        opts: &crate::bundle::UnpackOptions,
    ) -> Result<crate::bundle::UnpackReport, Box<dyn std::error::Error + Send + Sync>> {
        let fetcher = self.fetcher.get_or_init(|| {
            remote_fetcher(&self.cfg, &self.identity, self.runtime.clone()).map_err(Arc::new)
        });
        match fetcher {
            Ok(f) => crate::executor::RemoteFetch::fetch(f, spec, deployment_dir, opts),
            Err(e) => Err(Box::new(Arc::clone(e))),
        }
    }
}

/// The S3 and GitHub downloader, with the agent's own credentials and region.
fn remote_fetcher(
    cfg: &Config,
    identity: &control::Identity,
    runtime: tokio::runtime::Handle,
) -> Result<Fetcher, AgentError> {
    let s3 = S3Settings {
        region: identity.region.clone(),
        endpoint_override: cfg.s3_endpoint_override.clone(),
        use_fips: cfg.use_fips_mode,
        proxy: cfg.s3_proxy(),
        credentials: identity.credentials.clone(),
    };
    let github = GitHubSettings {
        api_base: cfg.github_api_endpoint.clone(),
        token: None,
        proxy: Default::default(),
    };
    let tuning = crate::transfer::Tuning::from_config(cfg);
    Fetcher::with_tuning(Some(s3), github, Some(runtime), tuning)
        .map_err(|e| AgentError::Transfer(Box::new(e)))
}

/// Crash recovery (docs/behaviour/protocol.md#crash-recovery) before polling resumes, less
/// docs/behaviour/official-quirks.md#quirk-16 (only the newest reported): first every hook a dead
/// agent (or deploy-local) left running is ended (see `crate::group`), then every tracked command
/// is reported once: with its recorded result when it had finished, else as interrupted (code 7).
/// See docs/crash-recovery.md.
async fn recover_from_crash(shared: &Shared) {
    let layout = shared.executor.layout.clone();
    let swept = tokio::task::spawn_blocking(move || crate::group::end_all_leftovers(&layout))
        .await
        .unwrap_or_default();
    if !swept.is_empty() {
        info!("checked the groups with a recorded running hook: {swept:?}");
    }
    let interrupted = shared.tracker.interrupted(SystemTime::now());
    if interrupted.is_empty() {
        return;
    }
    warn!(
        "Deployment tracking file found: {}. The agent likely restarted while running a customer-supplied script. Failing the lifecycle event.",
        shared.tracker.dir().display()
    );
    for i in &interrupted {
        match &i.result {
            Some((status, diagnostics)) => {
                info!(
                    "command {} had finished before the restart; reporting its result",
                    i.command_id
                );
                shared
                    .complete(&i.command_id, status.clone(), diagnostics)
                    .await
            }
            None => {
                shared
                    .complete(
                        &i.command_id,
                        CommandStatus::Failed,
                        &Diagnostics::failed_after_restart(),
                    )
                    .await
            }
        };
    }
    if let Err(e) = shared.tracker.clear() {
        warn!("Exception thrown during restart recovery: {e}");
    }
}

fn spawn_signal_handler(stop: watch::Sender<bool>) -> Result<(), AgentError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("received SIGTERM: stopping"),
            _ = int.recv() => info!("received SIGINT: stopping"),
        }
        notify::stopping();
        let _ = stop.send(true);
    });
    Ok(())
}

/// Feeds the systemd watchdog only while the poll loop's heartbeat is recent, so a stuck
/// poll loop gets the agent restarted.
fn spawn_watchdog(heartbeat: Arc<AtomicU64>, read_timeout: u64, mut stop: watch::Receiver<bool>) {
    let Some(every) = notify::watchdog_interval() else {
        return;
    };
    let allowed = read_timeout + 60;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if now_secs().saturating_sub(heartbeat.load(Ordering::Relaxed)) <= allowed {
                notify::watchdog();
            } else {
                warn!("the poll loop has not moved for over {allowed} s; not feeding the watchdog");
            }
        }
    });
}

async fn poll_loop(
    shared: &Arc<Shared>,
    cfg: &Config,
    heartbeat: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinSet<()> {
    let capacity = Arc::new(Semaphore::new(MAX_CONCURRENT_COMMANDS));
    let mut tasks = tokio::task::JoinSet::new();
    while !*stop.borrow() {
        heartbeat.store(now_secs(), Ordering::Relaxed);
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = capacity.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        if spread_next_poll(
            shared.finished.swap(false, Ordering::SeqCst),
            shared.running(),
        ) {
            let wait = crate::random::below(FIRST_POLL_SPREAD);
            info!(
                "no command is running: next poll in {:.3} s (spread so a fleet does not poll in step)",
                wait.as_secs_f64()
            );
            pause(wait, &mut stop).await;
            if *stop.borrow() {
                break;
            }
        }
        notify::status(&shared.status.line());
        let started = Instant::now();
        let polled = tokio::select! {
            r = shared.client.poll_host_command(&shared.host_id) => r,
            _ = stop.changed() => break,
        };
        heartbeat.store(now_secs(), Ordering::Relaxed);
        match polled {
            Ok(None) => {
                shared.backoff.record_success();
                // The long poll is the wait; a service that answers at once gets the
                // configured pause instead of a busy loop.
                if started.elapsed() < Duration::from_secs(1) {
                    pause(Duration::from_secs(cfg.wait_between_runs), &mut stop).await;
                }
            }
            Ok(Some(cmd)) => {
                shared.backoff.record_success();
                if let Some(problem) = check_command(&shared.host_id, &cmd) {
                    warn!("ignoring a command: {problem}");
                    continue;
                }
                dispatch(shared, cmd, permit, &mut tasks);
            }
            Err(e) => {
                shared.backoff.record_failure();
                let delay = shared.backoff.delay_after(&e);
                warn!(
                    "Error polling for host commands: {e}; retrying in {:.3} s",
                    delay.as_secs_f64()
                );
                pause(delay, &mut stop).await;
            }
        }
    }
    tasks
}

async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// The checks of docs/behaviour/protocol.md#poll-iteration; `None` when the command may be
/// processed.
fn check_command(host_id: &str, cmd: &HostCommand) -> Option<String> {
    if cmd.command_name.is_empty() {
        return Some("Command Name missing".into());
    }
    // The service may answer with a shorter form of the identifier
    // (docs/behaviour/protocol.md#poll-iteration accepts a substring); anything else is someone
    // else's command.
    if cmd.host_identifier != host_id && !host_id.contains(&cmd.host_identifier) {
        return Some(format!(
            "Host Identifier mismatch: {host_id} != {}",
            cmd.host_identifier
        ));
    }
    None
}

fn dispatch(
    shared: &Arc<Shared>,
    cmd: HostCommand,
    permit: tokio::sync::OwnedSemaphorePermit,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let id = cmd.host_command_identifier.clone();
    if !shared.claim(&id) {
        info!("command {id} was delivered again while it runs; it runs once");
        return;
    }
    let shared = shared.clone();
    tasks.spawn(async move {
        let _permit = permit;
        if let Some((status, diagnostics)) = shared.already_completed(&id) {
            info!("command {id} was delivered again after it finished; repeating its result");
            shared.complete(&id, status, &diagnostics).await;
        } else {
            process::handle(shared.clone(), cmd).await;
        }
        shared.release(&id);
    });
}

/// Lets running commands finish for up to kill_agent_max_wait_time_seconds, then ends their
/// hooks (they are reported failed) and waits a bounded time for those reports.
async fn shutdown(
    shared: &Shared,
    cfg: &Config,
    mut tasks: tokio::task::JoinSet<()>,
    cancel: &AtomicBool,
) {
    shared.status.agent_stopping();
    notify::stopping();
    notify::status(&shared.status.line());
    if !tasks.is_empty() {
        info!(
            "Gracefully shutting down agent child threads now, will wait up to {} seconds",
            cfg.kill_agent_max_wait_time_seconds
        );
    }
    let grace = Duration::from_secs(cfg.kill_agent_max_wait_time_seconds);
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(
            "commands still running after {} s: ending their hooks",
            grace.as_secs()
        );
        cancel.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
    info!("All agent child threads have been shut down");
    shared.status.agent_stopped();
    info!("agent exiting now");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(host: &str, name: &str) -> HostCommand {
        HostCommand {
            host_command_identifier: "hc".into(),
            host_identifier: host.into(),
            deployment_execution_id: "a/b/c/d".into(),
            command_name: name.into(),
            nonce: None,
        }
    }

    #[test]
    fn first_poll_spread_only_when_idle_after_a_command() {
        assert!(spread_next_poll(true, 0));
        assert!(
            !spread_next_poll(true, 1),
            "a running command's next event is not delayed"
        );
        assert!(
            !spread_next_poll(false, 0),
            "an idle agent keeps its own phase"
        );
    }

    #[test]
    fn command_checks() {
        let me = "arn:aws:ec2:us-east-1:1:instance/i-1";
        assert_eq!(check_command(me, &cmd(me, "Install")), None);
        assert_eq!(check_command(me, &cmd("i-1", "Install")), None);
        assert!(
            check_command(me, &cmd("arn:aws:ec2:us-east-1:1:instance/i-2", "Install"))
                .unwrap()
                .contains("mismatch")
        );
        assert_eq!(
            check_command(me, &cmd(me, "")).as_deref(),
            Some("Command Name missing")
        );
    }
}
