//! Fleet metrics (`metrics_textfile`): the daemon's collector and the file it writes for the
//! node_exporter textfile collector. docs/metrics.md lists the metrics and an alert.
//!
//! Invariants: the file is only ever replaced whole (a temporary file in the same directory,
//! then a rename), so a scrape never reads half a file; the temporary name starts with `.` and
//! does not end in `.prom`, so the textfile collector never reads it; the deciding and the
//! rendering are pure (`model`, `render`), this module only holds the state behind a lock and
//! writes.

pub mod model;
pub mod render;

use crate::control::ControlError;
use crate::deployspec::DeploymentSpec;
use crate::state::StateError;
use model::{Finished, GroupKey, Outcome, State};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often the file is written even when nothing happened (the "every minute"):
/// a file whose mtime stops moving tells the fleet's watcher the agent is stuck or gone.
pub const WRITE_EVERY: Duration = Duration::from_secs(60);

/// PURE: the `kind` label a failed poll is counted under (one of `model::POLL_ERROR_KINDS`).
pub fn poll_error_kind(e: &ControlError) -> &'static str {
    match e {
        ControlError::Throttled { .. } => "throttled",
        ControlError::Server { .. } => "server",
        ControlError::Client { .. } => "client",
        ControlError::Network { .. } => "network",
        ControlError::Decode { .. } => "decode",
        ControlError::Credentials { .. }
        | ControlError::CredentialsFile { .. }
        | ControlError::Metadata { .. }
        | ControlError::MetadataDocument { .. } => "credentials",
        ControlError::Config { .. } => "other",
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The daemon's metrics and where they go.
#[derive(Debug)]
pub struct Metrics {
    path: PathBuf,
    state: Mutex<State>,
}

impl Metrics {
    pub fn new(path: &Path, version: &str, started: SystemTime) -> Self {
        Self {
            path: path.to_path_buf(),
            state: Mutex::new(State::new(version, unix_secs(started))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records one executed lifecycle event of `spec`.
    pub fn command_finished(
        &self,
        spec: &DeploymentSpec,
        event: &str,
        succeeded: bool,
        took: Duration,
        bundle_bytes: Option<u64>,
        now: SystemTime,
    ) {
        let key = GroupKey {
            application: spec.application_name.clone(),
            group: spec.group_name.clone(),
        };
        let finished = Finished {
            key: &key,
            deployment_id: &spec.deployment_id,
            kind: spec.deployment_type,
            event,
            outcome: if succeeded {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            seconds: took.as_secs_f64(),
            bundle_bytes,
            now: unix_secs(now),
        };
        self.with_state(|s| s.record(&finished));
    }

    pub fn poll_failed(&self, e: &ControlError) {
        self.with_state(|s| s.poll_failed(poll_error_kind(e)));
    }

    /// The file's text now.
    pub fn render(&self) -> String {
        self.with_state(|s| render::render(&s.snapshot))
    }

    /// Replaces the file with the current figures (see the module invariants).
    pub fn write(&self) -> Result<(), StateError> {
        crate::state::write_atomic(&self.path, self.render().as_bytes())
    }

    /// [`Self::write`], a failure logged (metrics never stop a deployment).
    pub fn write_or_warn(&self) {
        if let Err(e) = self.write() {
            tracing::warn!("cannot write the metrics file (metrics_textfile): {e}");
        }
    }
}

/// Writes the file every `every` ([`WRITE_EVERY`] in the daemon) until `stop` turns true.
pub fn spawn_writer(
    metrics: Arc<Metrics>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let m = metrics.clone();
            let _ = tokio::task::spawn_blocking(move || m.write_or_warn()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_is_a_listed_kind() {
        let op = || "PollHostCommand".to_string();
        let errors = [
            ControlError::Throttled {
                operation: op(),
                status: 429,
                type_: "T".into(),
                message: String::new(),
            },
            ControlError::Server {
                operation: op(),
                status: 500,
                type_: "T".into(),
                message: String::new(),
            },
            ControlError::Client {
                operation: op(),
                status: 400,
                type_: "T".into(),
                message: String::new(),
            },
            ControlError::Network {
                operation: op(),
                message: String::new(),
            },
            ControlError::Decode {
                operation: op(),
                message: String::new(),
            },
            ControlError::Credentials {
                operation: op(),
                message: String::new(),
            },
            ControlError::Config {
                what: op(),
                message: String::new(),
            },
        ];
        let kinds: Vec<&str> = errors.iter().map(poll_error_kind).collect();
        assert_eq!(kinds, model::POLL_ERROR_KINDS);
    }

    #[test]
    fn the_writer_rewrites_the_file_on_its_own_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codedeploy.prom");
        let m = Arc::new(Metrics::new(&path, "9.9.9", SystemTime::UNIX_EPOCH));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = {
            let _in_runtime = rt.enter();
            spawn_writer(m.clone(), Duration::from_millis(20), stopped)
        };
        m.poll_failed(&ControlError::Decode {
            operation: "PollHostCommand".into(),
            message: "junk".into(),
        });
        let wanted = "codedeploy_agent_poll_errors_total{kind=\"decode\"} 1\n";
        let seen = rt.block_on(async {
            for _ in 0..250 {
                if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(wanted)) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        });
        assert!(seen, "the writer never wrote the new figure");
        stop.send(true).unwrap();
        rt.block_on(writer).unwrap();
    }

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codedeploy.prom");
        let m = Metrics::new(&path, "9.9.9", SystemTime::UNIX_EPOCH);
        m.write().unwrap();
        m.poll_failed(&ControlError::Network {
            operation: "PollHostCommand".into(),
            message: "refused".into(),
        });
        m.write().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("codedeploy_agent_poll_errors_total{kind=\"network\"} 1\n"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("codedeploy.prom")]);
    }
}
