//! Adapter: the `Install` command (docs/behaviour/install.md#install) — plan against the real
//! filesystem, remove what the previous revision installed, apply the plan while journaling it,
//! record the pointer. (Retention of old deployment directories lives in `crate::revisions`.)
//!
//! Invariants:
//! * nothing changes on disk until the plan is checked, the tools it needs are found, its
//!   users and groups resolved and (with a reserve) its bytes found to fit on every
//!   destination's file system; a refused plan leaves the previous revision installed and its
//!   journal in place;
//! * an install that fails once the disk has changed removes what it wrote (its journal
//!   lists it) and reinstalls the previous revision ([`restore`]); the error reports both;
//! * every path is written to the new `<group>-cleanup` journal before it is created, so a
//!   crash at any point leaves a journal that covers everything this install created;
//! * removal and permission changes never follow a symlink in the last component; a
//!   directory is only ever removed when empty;
//! * state files go through `state::write_atomic`.

mod apply;
mod cleanup;
mod copy;
mod perms;
mod realfs;
mod restore;
mod room;
mod spill;

pub use restore::Restored;

use crate::appspec::model::{AppSpec, FileExistsBehavior};
use crate::plan::{self, PlanError, PlanInput, PreviousInstall};
use crate::state::{self, Layout, StateError};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{}", .0.with_location())]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{op} {}: {source}", crate::names::Shown(.path))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the permissions entry for {object} (appspec line {line}) asks for {what}, but `{tool}` is not installed on this host")]
    MissingTool {
        object: String,
        line: usize,
        what: &'static str,
        tool: &'static str,
    },
    /// `setfacl`, `semanage` or `restorecon` failed; the message is the official one.
    #[error("{message}")]
    Command { message: String, stderr: String },
    #[error("can't find user for {name} (permissions entry for {object}, appspec line {line})")]
    UnknownUser {
        name: String,
        object: String,
        line: usize,
    },
    #[error("can't find group for {name} (permissions entry for {object}, appspec line {line})")]
    UnknownGroup {
        name: String,
        object: String,
        line: usize,
    },
    /// A source's directory leads outside the revision now, though it did not when the
    /// install was planned (a directory of the archive was swapped for a link).
    #[error("{}: the source now leads outside the revision through the symbolic link {link} (it changed after the install was planned); nothing was read from it", crate::names::Shown(.path))]
    SourceLeft { path: PathBuf, link: String },
    /// The filesystem changed between planning and applying.
    #[error("{}: {what} appeared after the install was planned; refusing to replace it", crate::names::Shown(.path))]
    Changed { path: PathBuf, what: &'static str },
    /// The plan does not fit above the reserve on a destination's file system.
    #[error("the install was refused before anything changed: {0}")]
    NoSpace(crate::space::NoSpace),
    /// The install failed after the disk changed; `restored` says what was put back.
    #[error("{error}; {restored}")]
    RolledBack {
        error: Box<InstallError>,
        restored: Restored,
    },
    /// Only from [`InstallOptions::fail_after_steps`].
    #[doc(hidden)]
    #[error("simulated crash after {0} applied steps")]
    SimulatedCrash(usize),
}

impl InstallError {
    /// The plan's spill could not be read back.
    pub(crate) fn plan_unreadable(e: io::Error) -> Self {
        Self::Plan(PlanError::Spill { source: e.into() })
    }

    /// The previous journal (or its index) could not be read while it was walked.
    pub(crate) fn journal_unreadable(e: io::Error) -> Self {
        Self::Plan(PlanError::Journal { source: e.into() })
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Knobs of an install that are not in the appspec.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Base for relative destinations and permission objects; the process's working
    /// directory when `None` (as the official agent).
    pub cwd: Option<PathBuf>,
    /// Where `setfacl`, `semanage` and `restorecon` are looked up; `$PATH` when `None`.
    pub tool_path: Option<OsString>,
    /// Fault injection for tests: stop, as a crash would, once this many steps are applied.
    #[doc(hidden)]
    pub fail_after_steps: Option<usize>,
    /// `free_space_reserve`: what must stay free on every destination's file system. None:
    /// no free-space check.
    pub reserve: Option<crate::space::Reserve>,
    /// The appspec's name (`-A`), to find the previous revision's when it is reinstalled.
    pub appspec_name: Option<String>,
    /// Counts copied files and bytes, for progress reports of large installs.
    pub progress: Option<crate::meter::Meter>,
    /// `install_by_hard_link`: regular files become hard links of the revision's files where
    /// the file system allows (docs/adr/0011-install-by-hard-link.md).
    pub hard_link: bool,
}

/// What an install did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Entries of the previous revision's journal processed.
    pub previous_removals: usize,
    pub dirs_created: usize,
    pub files_copied: usize,
    pub permissions_set: usize,
    /// Destinations left alone by RETAIN.
    pub retained: Vec<PathBuf>,
    /// Things worth a log line (a symlink whose mode was not changed, a missing semanage
    /// during cleanup).
    pub warnings: Vec<String>,
}

/// The cleanup journal at `path`, read where it lies (empty when there is none).
pub(crate) fn read_journal(
    path: &Path,
    spills: &spill::SpillDir,
) -> Result<PreviousInstall, InstallError> {
    let read = |e| InstallError::io("read", path, e);
    match spill::JournalFile::open(path).map_err(read)? {
        Some(f) => PreviousInstall::open(Box::new(f), Some(spills)).map_err(read),
        None => Ok(PreviousInstall::default()),
    }
}

/// Installs the revision unpacked in `deployment_dir` as `appspec`'s `files` and
/// `permissions` say. `override_behavior` is the deployment's file-exists behaviour, used
/// when the appspec has none; DISALLOW when neither has one.
pub fn install(
    layout: &Layout,
    group: &str,
    deployment_dir: &Path,
    appspec: &AppSpec,
    override_behavior: Option<FileExistsBehavior>,
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    install_inner(
        layout,
        group,
        deployment_dir,
        appspec,
        override_behavior,
        opts,
        true,
    )
}

/// [`install`]; `restore_on_failure` is false for the reinstall of a previous revision, which
/// has nothing to go back to.
fn install_inner(
    layout: &Layout,
    group: &str,
    deployment_dir: &Path,
    appspec: &AppSpec,
    override_behavior: Option<FileExistsBehavior>,
    opts: &InstallOptions,
    restore_on_failure: bool,
) -> Result<InstallReport, InstallError> {
    let instructions = layout.instructions_dir();
    fs::create_dir_all(&instructions)
        .map_err(|e| InstallError::io("create directory", &instructions, e))?;

    let cleanup_path = layout.cleanup_file(group);
    // The plan of a large revision, and the index of a large journal, wait on the agent's
    // disk, not in memory.
    let spill_dir = spill::SpillDir(instructions.clone());
    let previous = read_journal(&cleanup_path, &spill_dir)?;

    let cwd = match &opts.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    let archive = state::archive_dir(deployment_dir);
    let behavior = appspec
        .file_exists_behavior
        .or(override_behavior)
        .unwrap_or(FileExistsBehavior::Disallow);
    let input = PlanInput {
        archive_dir: &archive,
        files: &appspec.files,
        permissions: &appspec.permissions,
        behavior,
        previous: &previous,
        cwd: &cwd,
        spill: Some(&spill_dir),
    };
    let plan = plan::plan_install(&input, &realfs::RealFs)?;
    let tools = perms::Tools::find(opts.tool_path.as_deref());
    let ids = perms::check_and_resolve(&plan, &tools)?;
    if let Some(rule) = opts.reserve {
        let links_on = opts
            .hard_link
            .then(|| crate::space::device_of(&archive))
            .transpose()
            .map_err(|e| InstallError::io("inspect", &archive, e))?;
        room::check(&plan, &previous, rule, links_on)?;
    }

    if let Some(m) = &opts.progress {
        m.set_totals(None, Some(plan.copies() as u64));
    }
    // From here on the disk changes.
    let mut report = InstallReport {
        retained: plan.retained.clone(),
        ..InstallReport::default()
    };
    let applied = (|| {
        report.previous_removals =
            cleanup::apply_removals(&previous, &tools, &mut report.warnings)?;
        match fs::remove_file(&cleanup_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(InstallError::io("remove", &cleanup_path, e)),
        }
        state::write_atomic_with(&layout.install_json(group), |w| {
            plan::write_install_json(&plan, w)
        })?;
        let archive = plan::normalize(&cwd, &archive);
        apply::apply_plan(
            &plan,
            &archive,
            &cleanup_path,
            &ids,
            &tools,
            opts,
            &mut report,
        )
    })();
    match applied {
        Ok(()) => {}
        // A simulated crash leaves what a crash leaves.
        Err(e @ InstallError::SimulatedCrash(_)) => return Err(e),
        Err(e) if restore_on_failure => {
            let restored = restore::after_failure(layout, group, deployment_dir, opts);
            return Err(InstallError::RolledBack {
                error: Box::new(e),
                restored,
            });
        }
        Err(e) => return Err(e),
    }
    state::write_pointer(&layout.last_successful_install(group), deployment_dir)?;
    Ok(report)
}
