//! codedeploy-emulator: a local stand-in for the AWS CodeDeploy host-command service.
//!
//! It speaks the host-command API (AWS JSON 1.1, SigV4-checked, long-polled) on a loopback
//! port, signs deployment specs with a CA it generates, and drives fleets of registered hosts
//! through deployments with the service's scheduling rules. Tests start it in-process with
//! [`Emulator::start`] or run the `codedeploy-emulator serve` binary.
//!
//! Layout: `schedule` and `spec` are pure; `state`, `engine` and `commands` are the state
//! machine (no I/O); `api`, `admin` and `server` are the HTTP edge; `pki` does the crypto.

pub mod admin;
pub mod api;
pub mod bench;
pub mod client;
mod commands;
mod engine;
pub mod error;
pub mod faults;
pub mod model;
pub mod pki;
mod request;
pub mod schedule;
pub mod server;
pub mod sigv4;
pub mod spec;
pub mod state;

pub use error::{ApiError, EmulatorError};
pub use faults::{FaultHit, FaultKind, FaultRule};
pub use model::*;
pub use state::HostRegistration;

use server::{lock, now_ms, Shared};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    pub region: String,
    /// How long an idle `PollHostCommand` is held before answering empty.
    pub poll_idle: Duration,
    /// How long a host has to complete a command once it is ready.
    pub command_timeout: Duration,
    /// Directory for the CA and signer; `None` uses a fresh directory under the temp dir,
    /// removed at shutdown.
    pub pki_dir: Option<PathBuf>,
    /// Where to load and persist the state as JSON.
    pub state_file: Option<PathBuf>,
    /// Worker threads of the emulator's own runtime.
    pub threads: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            region: "us-east-1".into(),
            poll_idle: Duration::from_secs(45),
            command_timeout: Duration::from_secs(3600),
            pki_dir: None,
            state_file: None,
            threads: 2,
        }
    }
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] stops it too.
pub struct Emulator {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    stop: tokio::sync::watch::Sender<bool>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
    owned_dir: Option<PathBuf>,
}

impl Emulator {
    /// Binds, loads or creates the CA, loads the state file if any, and starts serving on a
    /// runtime of its own. Callable from synchronous code and from inside a tokio runtime.
    pub fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| EmulatorError::Bind {
                addr: config.listen.to_string(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| EmulatorError::io("listener", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| EmulatorError::io("listener", e))?;
        let (pki_dir, owned_dir) = match &config.pki_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "codedeploy-emulator-{}-{}",
                    std::process::id(),
                    addr.port()
                ));
                (d.clone(), Some(d))
            }
        };
        let pki = pki::Pki::load_or_create(&pki_dir)?;
        let state = match &config.state_file {
            Some(p) if p.exists() => state::State::load(p)?,
            _ => state::State::new(&config.region),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("codedeploy-emulator")
            .enable_all()
            .build()
            .map_err(|e| EmulatorError::io("tokio runtime", e))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            notifiers: Mutex::default(),
            faults: Mutex::default(),
            fault_hits: Mutex::default(),
            spec_cache: Mutex::default(),
            pki,
            poll_idle: config.poll_idle,
            command_timeout: config.command_timeout,
            endpoint: format!("http://{addr}"),
            state_file: config.state_file.clone(),
            shutdown: stop_rx.clone(),
        });
        let (done_tx, done_rx) = mpsc::channel();
        let s = shared.clone();
        runtime.spawn(async move {
            server::serve(listener, s, stop_rx).await;
            let _ = done_tx.send(());
        });
        Ok(Emulator {
            shared,
            runtime: Some(runtime),
            stop,
            done: Mutex::new(Some(done_rx)),
            owned_dir,
        })
    }

    /// Base URL of the host-command API, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        self.shared.endpoint.clone()
    }

    pub fn admin_url(&self) -> String {
        format!("{}/admin", self.shared.endpoint)
    }

    /// PEM file of the CA that signs deployment specs.
    pub fn ca_cert_path(&self) -> &Path {
        self.shared.pki.ca_cert_path()
    }

    pub fn region(&self) -> String {
        lock(&self.shared.state).region.clone()
    }

    /// Registers a host in the `default` group.
    pub fn register_host(
        &self,
        host_id: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<(), EmulatorError> {
        self.register(HostRegistration {
            host_id: host_id.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            session_token: None,
            group: "default".into(),
        })
    }

    /// Registers a host; a known host registered again with the same keys joins `reg.group`
    /// as well (see [`HostRegistration`]).
    pub fn register(&self, reg: HostRegistration) -> Result<(), EmulatorError> {
        self.shared.with_state(|st| st.register_host(reg))
    }

    pub fn create_deployment(&self, req: DeploymentRequest) -> Result<String, EmulatorError> {
        self.shared
            .with_state(|st| st.create_deployment(req, now_ms()))
    }

    pub fn stop_deployment(&self, deployment_id: &str) -> Result<(), EmulatorError> {
        self.shared
            .with_state(|st| st.stop_deployment(deployment_id, now_ms()))
    }

    /// The deployment with its per-host runs.
    pub fn deployment(&self, deployment_id: &str) -> Option<Deployment> {
        lock(&self.shared.state)
            .deployments
            .get(deployment_id)
            .cloned()
    }

    pub fn deployment_status(&self, deployment_id: &str) -> Option<DeploymentStatus> {
        lock(&self.shared.state)
            .deployments
            .get(deployment_id)
            .map(|d| d.status)
    }

    pub fn host(&self, host_id: &str) -> Option<Host> {
        lock(&self.shared.state).hosts.get(host_id).cloned()
    }

    pub fn command(&self, command_id: &str) -> Option<Command> {
        lock(&self.shared.state).commands.get(command_id).cloned()
    }

    /// Every event recorded for a host, oldest first, with times in Unix milliseconds.
    pub fn host_history(&self, host_id: &str) -> Vec<Event> {
        lock(&self.shared.state)
            .history
            .get(host_id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn inject_fault(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// The fault rules not yet used up.
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.shared.faults).clone()
    }

    /// The faults applied so far, oldest first (at most `faults::FAULT_HITS_KEPT`).
    pub fn fault_hits(&self) -> Vec<FaultHit> {
        lock(&self.shared.fault_hits).iter().cloned().collect()
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Stops accepting, answers pending long polls, drains connections, saves the state file,
    /// and removes the CA directory if the emulator created it.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rx) = lock(&self.done).take() {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        if let Some(d) = self.owned_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_now();
    }
}
