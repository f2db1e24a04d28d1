//! After an install failed part-way (a full disk, an I/O error, a failing `setfacl`): removes
//! what it wrote, as its own journal lists it, and reinstalls the previous revision from its
//! deployment directory through the same engine, so the host is left as it was.
//!
//! Why RETAIN for the reinstall: every path the previous install created or replaced is in
//! its journal and was removed by the cleanup, and what it retained was never journaled and
//! is still there; so copying what is absent and keeping what is present gives back exactly
//! what it left, whatever behaviour it ran with. Only a file the failed install itself
//! replaced (OVERWRITE of something the previous revision did not own) cannot come back.

use super::perms::Tools;
use super::{cleanup, install_inner, InstallError, InstallOptions};
use crate::appspec::{self, AppSpecErrors, AppSpecLocateError, FileExistsBehavior};
use crate::state::{self, Layout, StateError};
use std::path::{Path, PathBuf};

/// What happened to the previous revision after a failed install.
#[derive(Debug)]
pub enum Restored {
    /// Reinstalled from this deployment directory.
    Reinstalled(PathBuf),
    /// No earlier revision of the group is recorded.
    NothingToRestore,
    /// Removing what the failed install wrote, or the reinstall, failed.
    Failed(RestoreError),
}

/// Why the previous state could not be put back after a failed install.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("removing what the failed install wrote: {0}")]
    RemoveWritten(#[source] Box<InstallError>),
    /// The group's last-successful-install pointer could not be read.
    #[error(transparent)]
    Pointer(#[from] StateError),
    #[error("reinstalling the previous revision ({}): {source}", .previous.display())]
    Reinstall {
        previous: PathBuf,
        #[source]
        source: ReinstallError,
    },
}

/// Why the previous revision could not be installed again.
#[derive(Debug, thiserror::Error)]
pub enum ReinstallError {
    #[error(transparent)]
    Locate(#[from] AppSpecLocateError),
    #[error(transparent)]
    Parse(#[from] AppSpecErrors),
    #[error(transparent)]
    Install(Box<InstallError>),
}

impl std::fmt::Display for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Restored::Reinstalled(dir) => write!(
                f,
                "what it wrote was removed and the previous revision ({}) was installed again",
                dir.display()
            ),
            Restored::NothingToRestore => write!(
                f,
                "what it wrote was removed; no previous revision of the group was installed"
            ),
            Restored::Failed(why) => write!(f, "restoring the previous state failed: {why}"),
        }
    }
}

/// Undoes a failed install of `deployment_dir` and reinstalls the group's last successful
/// revision; the outcome is reported, never raised.
pub(super) fn after_failure(
    layout: &Layout,
    group: &str,
    deployment_dir: &Path,
    opts: &InstallOptions,
) -> Restored {
    if let Err(e) = remove_written(layout, group, opts) {
        return Restored::Failed(RestoreError::RemoveWritten(Box::new(e)));
    }
    let previous = match state::read_pointer(&layout.last_successful_install(group)) {
        Ok(p) => p.filter(|p| p != deployment_dir && state::archive_dir(p).is_dir()),
        Err(e) => return Restored::Failed(e.into()),
    };
    let Some(previous) = previous else {
        let _ = std::fs::remove_file(layout.install_json(group));
        return Restored::NothingToRestore;
    };
    match reinstall(layout, group, &previous, opts) {
        Ok(()) => Restored::Reinstalled(previous),
        Err(source) => Restored::Failed(RestoreError::Reinstall { previous, source }),
    }
}

/// Removes everything the failed install's journal lists (last line first, directories only
/// when empty), then the journal itself.
fn remove_written(layout: &Layout, group: &str, opts: &InstallOptions) -> Result<(), InstallError> {
    let path = layout.cleanup_file(group);
    let written = super::read_journal(&path, &super::spill::SpillDir(layout.instructions_dir()))?;
    let tools = Tools::find(opts.tool_path.as_deref());
    let mut warnings = Vec::new();
    cleanup::apply_removals(&written, &tools, &mut warnings)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(InstallError::io("remove", &path, e)),
    }
}

fn reinstall(
    layout: &Layout,
    group: &str,
    previous: &Path,
    opts: &InstallOptions,
) -> Result<(), ReinstallError> {
    let archive = state::archive_dir(previous);
    let found = opts
        .appspec_name
        .as_deref()
        .and_then(|n| appspec::find_appspec(&archive, Some(n)).ok())
        .map_or_else(|| appspec::find_appspec(&archive, None), Ok)?;
    let mut spec = appspec::parse_file(&found)?;
    spec.file_exists_behavior = Some(FileExistsBehavior::Retain);
    let again = InstallOptions {
        // It fitted before; the reserve is not a reason to leave the host without it.
        reserve: None,
        fail_after_steps: None,
        ..opts.clone()
    };
    install_inner(layout, group, previous, &spec, None, &again, false)
        .map(|_| ())
        .map_err(|e| ReinstallError::Install(Box::new(e)))
}
