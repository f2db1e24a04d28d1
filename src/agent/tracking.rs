//! Ongoing-deployment tracking files (spec 6.4): `<root>/ongoing-deployment/<DeploymentId>`
//! holds the HostCommandIdentifier of the command being executed, so that a restart can
//! report it failed (spec 3.7).
//!
//! Invariants: a file exists exactly while its command executes (written before, removed
//! after); files older than 24 h are stale and ignored; the newest fresh file names the
//! command to fail after a restart.

use crate::state::{write_atomic, StateError};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct Tracker {
    dir: PathBuf,
}

impl Tracker {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    fn file(&self, deployment_id: &str) -> PathBuf {
        self.dir.join(deployment_id)
    }

    /// Records that `host_command_id` of `deployment_id` is executing.
    pub fn begin(&self, deployment_id: &str, host_command_id: &str) -> Result<(), StateError> {
        write_atomic(&self.file(deployment_id), host_command_id.as_bytes())
    }

    /// Removes the record; a missing file is only worth a warning.
    pub fn end(&self, deployment_id: &str) {
        let f = self.file(deployment_id);
        if let Err(e) = fs::remove_file(&f) {
            tracing::warn!(
                "the tracking file {} does not exist or cannot be removed: {e}",
                f.display()
            );
        }
    }

    /// The HostCommandIdentifiers of commands that were executing when the agent last
    /// stopped, newest first; stale files are skipped.
    pub fn interrupted(&self, now: SystemTime) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(SystemTime, String)> = entries
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                let mtime = meta.modified().ok()?;
                if now.duration_since(mtime).unwrap_or_default() > STALE_AFTER {
                    return None;
                }
                let id = fs::read_to_string(e.path()).ok()?;
                let id = id.trim().to_string();
                (!id.is_empty()).then_some((mtime, id))
            })
            .collect();
        found.sort_by_key(|(mtime, _)| std::cmp::Reverse(*mtime));
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes every tracking file (after they were reported).
    pub fn clear(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::new("remove", &self.dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_end_and_interrupted() {
        let t = tempfile::tempdir().unwrap();
        let tr = Tracker::new(t.path().join("ongoing-deployment"));
        assert!(tr.interrupted(SystemTime::now()).is_empty());
        tr.begin("d-1", "cmd-1").unwrap();
        assert_eq!(
            fs::read_to_string(t.path().join("ongoing-deployment/d-1")).unwrap(),
            "cmd-1"
        );
        tr.begin("d-2", "cmd-2").unwrap();
        let old = SystemTime::now() - Duration::from_secs(10);
        let f = fs::File::options()
            .write(true)
            .open(t.path().join("ongoing-deployment/d-1"))
            .unwrap();
        f.set_modified(old).unwrap();
        assert_eq!(
            tr.interrupted(SystemTime::now()),
            vec!["cmd-2".to_string(), "cmd-1".to_string()]
        );
        // A day later both are stale.
        assert!(tr
            .interrupted(SystemTime::now() + STALE_AFTER + Duration::from_secs(60))
            .is_empty());
        tr.end("d-2");
        assert_eq!(tr.interrupted(SystemTime::now()), vec!["cmd-1".to_string()]);
        tr.clear().unwrap();
        assert!(!tr.dir().exists());
        tr.end("d-404");
    }
}
