//! HTTP plumbing: the shared state of a running emulator, the accept loop with graceful
//! shutdown, the background ticker (command time-outs, state-file saves), and routing
//! between the host-command API (`POST /`) and the admin API (`/admin...`).

use crate::faults::FaultRule;
use crate::pki::Pki;
use crate::state::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub type Body = Full<Bytes>;

/// Returned by a handler to close the connection without answering (injected `Drop` fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub struct DropConnection;

/// Everything the handlers of one emulator share. Lock order: `state` before `faults` (a
/// `Redeliver` rule is taken while the state is locked); never `state` while holding `faults`.
pub struct Shared {
    pub state: Mutex<State>,
    pub notifiers: Mutex<HashMap<String, Arc<Notify>>>,
    pub faults: Mutex<Vec<FaultRule>>,
    /// Faults applied, oldest first (bounded, see `faults::FAULT_HITS_KEPT`).
    pub fault_hits: Mutex<std::collections::VecDeque<crate::faults::FaultHit>>,
    /// Signed envelopes by deployment id: signing once per deployment keeps RSA off the hot path.
    pub spec_cache: Mutex<HashMap<String, String>>,
    pub pki: Pki,
    pub poll_idle: Duration,
    pub command_timeout: Duration,
    pub endpoint: String,
    pub state_file: Option<PathBuf>,
    pub shutdown: watch::Receiver<bool>,
}

/// Locks a mutex, recovering the data if a handler panicked while holding it: the state is
/// only ever changed by complete operations, so it stays consistent.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    pub fn notifier(&self, host: &str) -> Arc<Notify> {
        lock(&self.notifiers)
            .entry(host.to_string())
            .or_default()
            .clone()
    }

    /// Runs `f` on the state, then wakes the long polls of hosts that got new commands.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, wake) = {
            let mut st = lock(&self.state);
            let out = f(&mut st);
            (out, std::mem::take(&mut st.wake))
        };
        if !wake.is_empty() {
            let notifiers = lock(&self.notifiers);
            for h in wake {
                if let Some(n) = notifiers.get(&h) {
                    n.notify_waiters();
                }
            }
        }
        out
    }

    fn save_if_dirty(&self) {
        let Some(path) = &self.state_file else { return };
        let mut st = lock(&self.state);
        if !st.dirty {
            return;
        }
        st.dirty = false;
        if let Err(e) = st.save(path) {
            eprintln!("codedeploy-emulator: {e}");
        }
    }
}

pub fn json_response(status: u16, body: String, content_type: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    if req.uri().path().starts_with("/admin") {
        Ok(crate::admin::handle(&shared, req).await)
    } else {
        crate::api::handle(&shared, req).await
    }
}

/// Serves until `stop` turns true, then drains connections (long polls answer at once).
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("codedeploy-emulator: listener: {e}");
            return;
        }
    };
    let ticker = tokio::spawn(tick(shared.clone(), stop.clone()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let svc = hyper::service::service_fn(move |req| route(shared.clone(), req));
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move { let _ = conn.await; });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    let _ = ticker.await;
    shared.save_if_dirty();
}

async fn tick(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    // Fine enough to time out short test timeouts, coarse enough to cost nothing.
    let period =
        (shared.command_timeout / 10).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let timeout_ms = shared.command_timeout.as_millis() as u64;
    let mut last_save = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        shared.with_state(|st| st.expire(now_ms(), timeout_ms));
        if last_save.elapsed() >= Duration::from_secs(1) {
            shared.save_if_dirty();
            last_save = std::time::Instant::now();
        }
    }
}
