//! The deployment root on disk (docs/behaviour/layout.md#on-disk-layout): names of every directory
//! and state file, atomic writes, pointer files.
//!
//! Invariants: the names here are exactly the official agent's, because users' scripts and
//! operators read them; every state file is replaced atomically (temp file in the same
//! directory, fsync, rename, fsync of the directory), so a crash leaves the old or the new
//! content, never a torn one.

pub mod lock;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O failure on a named path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct StateError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl StateError {
    pub fn new(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Paths under one deployment root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn group_dir(&self, group: &str) -> PathBuf {
        self.root.join(group)
    }
    pub fn deployment_dir(&self, group: &str, deployment: &str) -> PathBuf {
        self.root.join(group).join(deployment)
    }
    pub fn instructions_dir(&self) -> PathBuf {
        self.root.join("deployment-instructions")
    }
    pub fn last_successful_install(&self, group: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group}_last_successful_install"))
    }
    pub fn most_recent_install(&self, group: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group}_most_recent_install"))
    }
    pub fn cleanup_file(&self, group: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group}-cleanup"))
    }
    pub fn install_json(&self, group: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group}-install.json"))
    }
    /// The group's lock (see [`lock`]): one deployment per group at a time, across processes.
    pub fn group_lock_file(&self, group: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group}.lock"))
    }
    /// The record of the hook a group's deployment is running right now (written before the
    /// hook starts, removed when it has ended), so that a later lock holder can end a hook
    /// whose agent died.
    pub fn running_hook_file(&self, group: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group}.running-hook"))
    }
    /// The record of the group's deployment paused for a reboot (docs/reboot.md).
    pub fn reboot_record(&self, group: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group}.reboot"))
    }
    pub fn deployment_logs_dir(&self) -> PathBuf {
        self.root.join("deployment-logs")
    }
    pub fn deployments_log(&self, program_name: &str) -> PathBuf {
        self.deployment_logs_dir()
            .join(format!("{program_name}-deployments.log"))
    }
    pub fn ongoing_dir(&self, tracking_dir_name: &str) -> PathBuf {
        self.root.join(tracking_dir_name)
    }
}

/// Paths inside one deployment directory.
pub fn bundle_file(deployment_dir: &Path) -> PathBuf {
    deployment_dir.join("bundle.tar")
}
pub fn archive_dir(deployment_dir: &Path) -> PathBuf {
    deployment_dir.join("deployment-archive")
}
/// Where a deployment's hooks ask for a reboot (one directory per script below it).
pub fn reboot_requests_dir(deployment_dir: &Path) -> PathBuf {
    deployment_dir.join("reboot-request")
}
pub fn scripts_log(deployment_dir: &Path) -> PathBuf {
    deployment_dir.join("logs").join("scripts.log")
}

/// Replaces `path` with `bytes` atomically; creates the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for contents produced piece by piece into a buffered writer, so a
/// large state file is never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    produce: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| StateError::new("create directory", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(64 * 1024, fs::File::create(&tmp)?);
        produce(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(StateError::new("write", path, e));
    }
    Ok(())
}

/// Reads a pointer file (`<group>_last_successful_install` and friends): a deployment
/// directory path without a trailing newline. A missing or empty file is `None`.
pub fn read_pointer(path: &Path) -> Result<Option<PathBuf>, StateError> {
    match fs::read_to_string(path) {
        Ok(s) => {
            let s = s.trim_end_matches(['\n', '\r']);
            Ok((!s.is_empty()).then(|| PathBuf::from(s)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::new("read", path, e)),
    }
}

/// Writes a pointer file the way the official agent does: the path, no newline.
pub fn write_pointer(path: &Path, deployment_dir: &Path) -> Result<(), StateError> {
    write_atomic(path, deployment_dir.as_os_str().as_encoded_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_official_layout() {
        let l = Layout::new("/r");
        assert_eq!(
            l.last_successful_install("g1"),
            Path::new("/r/deployment-instructions/g1_last_successful_install")
        );
        assert_eq!(
            l.most_recent_install("g1"),
            Path::new("/r/deployment-instructions/g1_most_recent_install")
        );
        assert_eq!(
            l.cleanup_file("g1"),
            Path::new("/r/deployment-instructions/g1-cleanup")
        );
        assert_eq!(
            l.install_json("g1"),
            Path::new("/r/deployment-instructions/g1-install.json")
        );
        assert_eq!(
            l.deployments_log("codedeploy-agent"),
            Path::new("/r/deployment-logs/codedeploy-agent-deployments.log")
        );
        let d = l.deployment_dir("g1", "d-1");
        assert_eq!(archive_dir(&d), Path::new("/r/g1/d-1/deployment-archive"));
        assert_eq!(scripts_log(&d), Path::new("/r/g1/d-1/logs/scripts.log"));
        assert_eq!(bundle_file(&d), Path::new("/r/g1/d-1/bundle.tar"));
    }

    #[test]
    fn pointer_round_trip_and_trailing_newline() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("instr/g_last_successful_install");
        assert_eq!(read_pointer(&p).unwrap(), None);
        write_pointer(&p, Path::new("/r/g/d-1")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"/r/g/d-1");
        fs::write(&p, "/r/g/d-2\n").unwrap();
        assert_eq!(read_pointer(&p).unwrap(), Some(PathBuf::from("/r/g/d-2")));
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
