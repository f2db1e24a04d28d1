//! PURE: the install plan (spec 9.2-9.4), the cleanup journal's meaning (spec 9.5), the full
//! ACL an ACE list stands for, the `<group>-install.json` text (spec 9.6) and which old
//! revisions to prune (spec 6.3).
//!
//! Invariants: nothing here touches the disk. The planner sees the filesystem only through
//! [`FsView`], a read-only snapshot the caller supplies, and returns either a complete,
//! checked [`InstallPlan`] or a [`PlanError`]; it never returns half a plan. Paths in a plan
//! are absolute and lexically normalised. A plan never asks to replace a directory with a
//! file, and never writes through a symlink at a file destination.

mod acl;
mod error;
mod files;
mod fsview;
mod journal;
mod json;
mod perms;
mod retention;

#[cfg(test)]
pub(crate) mod memfs;
#[cfg(test)]
mod planner_tests;

pub use acl::full_acl;
pub use error::PlanError;
pub use files::{plan_install, PlanInput};
pub use fsview::{normalize, DestKind, FsView, SourceKind};
pub use journal::{parse_journal, Removal};
pub use json::install_json;
pub use perms::glob_match;
pub use retention::{select_prunable, RevisionEntry};

use crate::appspec::model::{Ace, Mode, Pos, SeContext};
use std::path::PathBuf;

/// What one permission entry asks for one path. Carries the entry's `object` and position so
/// execution-time errors (a missing tool, an unknown user) can name the appspec entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionStep {
    pub path: PathBuf,
    pub mode: Option<Mode>,
    pub acls: Vec<Ace>,
    pub context: Option<SeContext>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub object: String,
    pub pos: Pos,
}

/// One action of an install, in the order it must be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create `dir`. `replace`: a non-directory (file, symlink, special file) stands there
    /// and OVERWRITE allowed replacing it.
    Mkdir { dir: PathBuf, replace: bool },
    /// Copy `source` (a regular file, or a symlink recreated with the same target text) to
    /// `destination`. `replace`: a non-directory stands there and OVERWRITE allowed replacing it.
    Copy {
        source: PathBuf,
        destination: PathBuf,
        replace: bool,
    },
    /// Apply owner/group, mode, ACL and SELinux context to a path this install created.
    SetPermissions(Box<PermissionStep>),
}

impl Step {
    /// The path this step creates or changes.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Step::Mkdir { dir, .. } => dir,
            Step::Copy { destination, .. } => destination,
            Step::SetPermissions(p) => &p.path,
        }
    }
}

/// A checked install plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallPlan {
    pub steps: Vec<Step>,
    /// Destinations left alone because RETAIN kept what was already there.
    pub retained: Vec<PathBuf>,
}
