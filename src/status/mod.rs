//! The agent's status: a JSON file the daemon (and each `deploy-local` run) rewrites at every
//! step, the `status` command that reads it, the systemd STATUS= line, and the `.version`
//! file.
//!
//! Invariants: the status file is replaced atomically, so a reader sees the old or the new
//! state, never a torn one; writing it never fails a deployment (a failed write is logged
//! once, then again only after a success); `status` reads files only, never the network.
//!
//! Files: `<pid_dir>/status.json` for the daemon; `<pid_dir>/local-<pid>.status.json` for a
//! running `deploy-local` (removed when it ends, and ignored by readers once its process is
//! gone); `<pid_dir>/local-result-<deployment-id>.json` for the latest finished ones
//! (`local_results`). Both are owned by root in the root-owned pid_dir and readable by everyone (mode
//! 0644 by the agent's umask): they hold ids, event names and the endpoint, nothing secret,
//! and `status` should work for an operator without sudo the way `systemctl status` does.

pub mod local_results;
mod model;
pub mod report;
pub mod version;

pub use model::{
    needs_refresh, progress_line, status_line, AgentState, LastResult, Progress, ScriptStart,
    StatusData,
};

use crate::config::Config;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// File name of the daemon's status file inside pid_dir.
pub const STATUS_FILE_NAME: &str = "status.json";
/// Prefix and suffix of deploy-local status files inside pid_dir.
pub const LOCAL_PREFIX: &str = "local-";
pub const LOCAL_SUFFIX: &str = ".status.json";

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes the status file. Share it by reference (`&self` methods; the state sits behind a
/// mutex so the poll loop and command threads can both report).
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    data: Mutex<StatusData>,
    /// A write failed and has been logged; the next failure stays quiet.
    failing: AtomicBool,
    /// Remove the file on drop (deploy-local's file describes only its own run).
    remove_on_drop: bool,
}

impl StatusFile {
    /// The daemon's status file, `<pid_dir>/status.json`.
    pub fn new(cfg: &Config) -> Self {
        Self::at(cfg.pid_dir.join(STATUS_FILE_NAME), "agent", false)
    }

    /// A `deploy-local` run's status file, `<pid_dir>/local-<pid>.status.json`, or `None`
    /// when pid_dir does not exist (a developer's machine without the installed agent; a
    /// local run creates no agent directories just to report progress).
    pub fn for_local(cfg: &Config) -> Option<Self> {
        if !cfg.pid_dir.is_dir() {
            return None;
        }
        let name = format!("{LOCAL_PREFIX}{}{LOCAL_SUFFIX}", std::process::id());
        let file = Self::at(cfg.pid_dir.join(name), "deploy-local", true);
        file.agent_started(
            std::process::id(),
            crate::VERSION,
            "none (local)",
            "none (local)",
        );
        file.polling();
        Some(file)
    }

    fn at(path: PathBuf, kind: &str, remove_on_drop: bool) -> Self {
        let data = StatusData {
            kind: kind.to_string(),
            ..StatusData::default()
        };
        Self {
            path,
            data: Mutex::new(data),
            failing: AtomicBool::new(false),
            remove_on_drop,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of what was last written.
    pub fn snapshot(&self) -> StatusData {
        self.lock().clone()
    }

    /// The STATUS= line for the current state (pass it to `notify::status`).
    pub fn line(&self) -> String {
        status_line(&self.lock(), unix_now())
    }

    pub fn agent_started(&self, pid: u32, version: &str, credential_source: &str, endpoint: &str) {
        let start = report::process_start_time(pid);
        self.update(|d, now| {
            d.agent_started(pid, start, version, credential_source, endpoint, now)
        });
    }

    /// Identity and crash recovery are done; the agent polls (and may run commands).
    pub fn polling(&self) {
        self.update(|d, now| d.polling(now));
    }

    pub fn command_started(
        &self,
        host_command_id: &str,
        deployment_id: &str,
        group_id: &str,
        event: &str,
    ) {
        self.update(|d, now| {
            d.command_started(host_command_id, deployment_id, group_id, event, now)
        });
    }

    /// A script of a running event started.
    pub fn script_progress(&self, deployment_id: &str, event: &str, start: &ScriptStart<'_>) {
        self.update(|d, now| d.script_progress(deployment_id, event, start, now));
    }

    /// Whether the STATUS= line shows a running clock (see [`needs_refresh`]).
    pub fn needs_refresh(&self) -> bool {
        needs_refresh(&self.lock())
    }

    /// `result`: `Succeeded`, or `Failed: <code> <message>`.
    pub fn command_finished(
        &self,
        host_command_id: &str,
        deployment_id: &str,
        group_id: &str,
        event: &str,
        result: &str,
    ) {
        self.update(|d, now| {
            d.command_finished(host_command_id, deployment_id, group_id, event, result, now)
        });
    }

    /// SIGTERM received.
    pub fn agent_stopping(&self) {
        self.update(|d, now| d.agent_stopping(now));
    }

    /// The last call before a clean exit: `status` then says "stopped" rather than "dead".
    pub fn agent_stopped(&self) {
        self.update(|d, now| d.agent_stopped(now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusData> {
        // A panic elsewhere while holding the lock leaves plain data, still worth reporting.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut StatusData, u64)) {
        let mut data = self.lock();
        change(&mut data, unix_now());
        let result = serde_json::to_vec_pretty(&*data)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                crate::state::write_atomic(&self.path, &bytes).map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => self.failing.store(false, Ordering::Relaxed),
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!("cannot write the status file: {e}");
                }
            }
        }
    }
}

impl Drop for StatusFile {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> Config {
        Config {
            pid_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn every_step_is_on_disk() {
        let t = tempfile::tempdir().unwrap();
        let f = StatusFile::new(&cfg(t.path()));
        assert_eq!(f.path(), t.path().join("status.json"));
        f.agent_started(std::process::id(), "0.1.0", "instance profile", "https://e");
        f.polling();
        f.command_started("hc", "d-1", "g", "AfterInstall");
        let start = ScriptStart {
            script: "s.sh",
            index: 1,
            count: 2,
            timeout: 60,
        };
        f.script_progress("d-1", "AfterInstall", &start);
        let on_disk: StatusData =
            serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(on_disk, f.snapshot());
        assert_eq!(on_disk.in_progress[0].script.as_deref(), Some("s.sh"));
        assert!(on_disk.process_start.is_some());
        f.command_finished("hc", "d-1", "g", "AfterInstall", "Succeeded");
        f.agent_stopped();
        let on_disk: StatusData =
            serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(on_disk.state, AgentState::Stopped);
        assert_eq!(on_disk.last_results["g"].result, "Succeeded");
    }

    #[test]
    fn unwritable_place_does_not_panic() {
        let t = tempfile::tempdir().unwrap();
        let blocker = t.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let f = StatusFile::new(&cfg(&blocker));
        f.polling();
        f.polling();
        assert_eq!(f.snapshot().state, AgentState::Polling);
    }

    #[test]
    fn local_file_needs_pid_dir_and_goes_away() {
        let t = tempfile::tempdir().unwrap();
        assert!(StatusFile::for_local(&cfg(&t.path().join("absent"))).is_none());
        let f = StatusFile::for_local(&cfg(t.path())).unwrap();
        let path = f.path().to_path_buf();
        assert!(path.is_file());
        assert_eq!(f.snapshot().kind, "deploy-local");
        drop(f);
        assert!(!path.exists());
    }
}
