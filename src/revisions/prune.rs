//! Pruning old deployment directories of a group (docs/behaviour/layout.md#retention) and the
//! most-recent pointer. Runs at the start of DownloadBundle, before the new revision is written.
//!
//! Invariants: never removes the current, the last successful or the most recent deployment;
//! a missing deployment root, group directory or deployment directory is not an error (an
//! operator may have deleted them); only real directories count, symlinks and stray files
//! in the group directory are left alone; a pruned directory goes whole, and what it took is
//! measured first so the log says what was freed.

use super::usage::measure;
use crate::plan::{normalize, select_prunable, RevisionEntry};
use crate::state::{self, Layout, StateError};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// One removed deployment directory and the disk space it took (bytes of allocated blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The name of `dir` inside `group_dir`, when it is directly inside it.
fn name_in(group_dir: &Path, dir: &Path) -> Option<OsString> {
    let dir = normalize(Path::new("/"), dir);
    (dir.parent() == Some(group_dir)).then(|| dir.file_name().map(OsStr::to_os_string))?
}

/// Deletes the oldest deployment directories of `group` so that at most `max_revisions`
/// remain counting `current` (which need not exist yet). Returns what was removed.
pub fn prune_old_revisions(
    layout: &Layout,
    group: &str,
    current: &Path,
    max_revisions: u32,
) -> Result<Vec<Pruned>, StateError> {
    let group_dir = normalize(Path::new("/"), &layout.group_dir(group));
    let listing = match fs::read_dir(&group_dir) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StateError::new("list", &group_dir, e)),
    };
    let mut entries = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| StateError::new("list", &group_dir, e))?;
        // Gone since the listing: someone else cleaned up, nothing to count.
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.file_type().is_dir() {
            continue;
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        entries.push(RevisionEntry {
            name: entry.file_name(),
            mtime,
        });
    }
    let last_successful = state::read_pointer(&layout.last_successful_install(group))?
        .and_then(|p| name_in(&group_dir, &p));
    let most_recent = state::read_pointer(&layout.most_recent_install(group))?
        .and_then(|p| name_in(&group_dir, &p));
    let current = name_in(&group_dir, current).unwrap_or_default();
    let doomed = select_prunable(
        &entries,
        &current,
        last_successful.as_deref(),
        most_recent.as_deref(),
        max_revisions,
    );
    let mut removed = Vec::new();
    for name in doomed {
        let path = group_dir.join(&name);
        // A tree that cannot be measured fully is still removed; the figure is then a floor.
        let bytes = measure(&path).unwrap_or(0);
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(
                    "removed old revision {} ({} freed)",
                    path.display(),
                    crate::space::human(bytes)
                );
                removed.push(Pruned { path, bytes });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                // One undeletable old revision must not stop the deployment.
                tracing::warn!("could not remove old revision {}: {e}", path.display());
            }
        }
    }
    Ok(removed)
}

/// Records `deployment_dir` as the group's most recent install (end of DownloadBundle).
pub fn record_most_recent(
    layout: &Layout,
    group: &str,
    deployment_dir: &Path,
) -> Result<(), StateError> {
    state::write_pointer(&layout.most_recent_install(group), deployment_dir)
}
