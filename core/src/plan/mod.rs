//! PURE: the install plan (docs/behaviour/install.md#copy-planning,
//! docs/behaviour/install.md#file-exists-behavior, docs/behaviour/install.md#permission-planning),
//! the cleanup journal's meaning (docs/behaviour/install.md#install-execution), the full ACL an ACE
//! list stands for, the `<group>-install.json` text (docs/behaviour/install.md#install-json) and
//! which old revisions to prune (docs/behaviour/layout.md#retention).
//!
//! Invariants: nothing here touches the disk. The planner sees the filesystem only through
//! [`FsView`], a read-only snapshot the caller supplies, and keeps a large plan's records in
//! the [`Spill`] the caller may supply (its only writes). It returns either a complete,
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
mod tape;
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
pub(crate) mod memfs;
#[cfg(test)]
mod planner_tests;

pub use acl::full_acl;
pub use error::PlanError;
pub use files::{plan_install, PlanInput};
pub use fsview::{normalize, DestKind, FsView, Node};
pub use journal::{Previous, PreviousInstall, ReadAt, Removal};
pub use json::{install_json, write_install_json};
pub use perms::glob_match;
pub use retention::{select_prunable, RevisionEntry};
pub use tape::{Spill, SpillSource};

use crate::appspec::model::{Ace, Mode, Pos, SeContext};
use std::io;
use std::path::{Path, PathBuf};

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
///
/// Directories and copies are recorded on a [`tape::Tape`], a byte stream that moves to the
/// adapter's [`Spill`] once it outgrows a small buffer, because a revision can hold a million
/// files and the install must stay within a few MiB whatever its size. The paths each
/// permissions entry covers (every file, with `pattern: "**"`) go on a second tape, read
/// after the first; the entry's settings are held once. [`InstallPlan::steps`] hands out
/// ordinary [`Step`]s one at a time; reading a spill back can fail, so each is a `Result`.
#[derive(Debug, Default)]
pub struct InstallPlan {
    tape: tape::Tape,
    tape_steps: usize,
    copies: usize,
    perms: PermTape,
    /// Destinations left alone because RETAIN kept what was already there.
    pub retained: Vec<PathBuf>,
}

/// A permissions entry of the plan: its settings (the path left empty) and whether it asks
/// for anything (an entry that asks for nothing still counts for duplicates).
#[derive(Debug, Clone)]
pub(crate) struct PermEntry {
    template: PermissionStep,
    asks: bool,
    /// Paths of this entry on the tape.
    paths: usize,
}

impl InstallPlan {
    pub fn len(&self) -> usize {
        self.tape_steps + self.perms.steps
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The steps in the order they must be applied, each built when asked for.
    pub fn steps(&self) -> impl Iterator<Item = io::Result<Step>> + '_ {
        self.file_steps()
            .chain(self.perms.tape.steps(&self.perms.entries))
    }

    /// The directories and copies, in order: every step but the permission steps, which
    /// come after them.
    pub fn file_steps(&self) -> impl Iterator<Item = io::Result<Step>> + '_ {
        self.tape.steps(&[])
    }

    /// How many steps are copies (for progress), without building them.
    pub fn copies(&self) -> usize {
        self.copies
    }

    /// The permission steps alone, without reading the copies. They come after every
    /// directory and copy.
    pub fn permission_steps(&self) -> impl Iterator<Item = io::Result<PermissionStep>> + '_ {
        self.perms
            .tape
            .steps(&self.perms.entries)
            .filter_map(|s| match s {
                Ok(Step::SetPermissions(p)) => Some(Ok(*p)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
    }

    /// How many permission steps there are.
    pub fn permission_count(&self) -> usize {
        self.perms.steps
    }

    /// What each permissions entry with at least one step asks for (its `path` is empty):
    /// the users, groups and tools the steps need, without reading them.
    pub fn permission_settings(&self) -> impl Iterator<Item = &PermissionStep> + '_ {
        self.perms
            .entries
            .iter()
            .filter(|e| e.asks && e.paths > 0)
            .map(|e| &e.template)
    }

    /// Directories the plan creates, in order.
    pub fn mkdirs(&self) -> impl Iterator<Item = io::Result<PathBuf>> + '_ {
        self.file_steps().filter_map(|s| match s {
            Ok(Step::Mkdir { dir, .. }) => Some(Ok(dir)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// Counts a step the tape took; more than a u32 can count is refused.
    fn counted(&mut self, pushed: io::Result<()>) -> Result<(), PushError> {
        pushed.map_err(PushError::Spill)?;
        self.tape_steps += 1;
        u32::try_from(self.tape_steps).map_err(|_| PushError::TooLarge)?;
        Ok(())
    }

    /// Moves the tape to a spill from `source` once it has outgrown memory.
    pub(crate) fn spill_if_due(&mut self, source: Option<&dyn SpillSource>) -> io::Result<()> {
        self.tape.spill_if_due(source)
    }

    pub(crate) fn push_mkdir(&mut self, dir: &Path, replace: bool) -> Result<(), PushError> {
        let r = self.tape.push_mkdir(dir, replace);
        self.counted(r)
    }

    /// Adds a copy of `source_dir/name` to `dest_dir/name`.
    pub(crate) fn push_copy(
        &mut self,
        source_dir: &Path,
        dest_dir: &Path,
        name: &std::ffi::OsStr,
        replace: bool,
    ) -> Result<(), PushError> {
        let r = self.tape.push_copy(source_dir, dest_dir, name, replace);
        self.counted(r)?;
        self.copies += 1;
        Ok(())
    }

    /// The source of the copy to `dest`, if one is planned. Reads the whole tape: only asked
    /// after an index reported a likely match, or once per permission entry.
    pub(crate) fn copy_source_for(&self, dest: &Path) -> io::Result<Option<PathBuf>> {
        for s in self.file_steps() {
            if let Step::Copy {
                source,
                destination,
                ..
            } = s?
            {
                if destination == dest {
                    return Ok(Some(source));
                }
            }
        }
        Ok(None)
    }

    /// Every step, for tests: a plan without a spill cannot fail to read.
    #[cfg(test)]
    pub(crate) fn all_steps(&self) -> Vec<Step> {
        self.steps().map(|s| s.expect("in-memory tape")).collect()
    }

    /// Builds a plan from ordinary steps; a copy's source and destination must end in the
    /// same name, as every planned copy does.
    #[cfg(test)]
    pub(crate) fn from_steps(steps: Vec<Step>, retained: Vec<PathBuf>) -> Self {
        let mut plan = InstallPlan {
            retained,
            ..Self::default()
        };
        for s in steps {
            match s {
                Step::Mkdir { dir, replace } => plan.push_mkdir(&dir, replace).unwrap(),
                Step::Copy {
                    source,
                    destination,
                    replace,
                } => {
                    let name = destination.file_name().unwrap();
                    assert_eq!(source.file_name(), Some(name));
                    plan.push_copy(
                        source.parent().unwrap(),
                        destination.parent().unwrap(),
                        name,
                        replace,
                    )
                    .unwrap()
                }
                Step::SetPermissions(p) => {
                    let path = p.path.clone();
                    let e = plan.perms.add_entry(*p, true).unwrap();
                    plan.perms.push(e, &path).unwrap();
                }
            }
        }
        plan
    }
}

/// The permission side of a plan: each entry's settings once, and the paths they cover on
/// their own tape (apart from the directories and copies, which are read while it is
/// written).
#[derive(Debug, Default)]
pub(crate) struct PermTape {
    tape: tape::Tape,
    entries: Vec<PermEntry>,
    /// Paths on the tape whose entry asks for something: the permission steps.
    steps: usize,
}

impl PermTape {
    /// Starts permissions entry `template` (its path is ignored); returns its index.
    pub(crate) fn add_entry(
        &mut self,
        mut template: PermissionStep,
        asks: bool,
    ) -> Result<u32, PushError> {
        template.path = PathBuf::new();
        let ix = u32::try_from(self.entries.len()).map_err(|_| PushError::TooLarge)?;
        self.entries.push(PermEntry {
            template,
            asks,
            paths: 0,
        });
        Ok(ix)
    }

    /// Records that entry `entry` covers `path`.
    pub(crate) fn push(&mut self, entry: u32, path: &Path) -> Result<(), PushError> {
        self.tape.push_perm(entry, path).map_err(PushError::Spill)?;
        let e = self
            .entries
            .get_mut(entry as usize)
            .ok_or(PushError::TooLarge)?;
        e.paths += 1;
        if e.asks {
            self.steps += 1;
        }
        Ok(())
    }

    /// Whether some permissions entry already covers `path` (reads the permission tape).
    pub(crate) fn covers(&self, path: &Path) -> io::Result<bool> {
        for r in self.tape.records() {
            if let tape::Rec::Perm { path: p, .. } = r? {
                if p == path {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Moves the tape to a spill from `source` once it has outgrown memory.
    pub(crate) fn spill_if_due(&mut self, source: Option<&dyn SpillSource>) -> io::Result<()> {
        self.tape.spill_if_due(source)
    }
}

impl PushError {
    /// The planner's error for a push that failed on the appspec entry at `pos`.
    pub(crate) fn at(self, pos: Pos) -> PlanError {
        match self {
            PushError::TooLarge => PlanError::TooManyEntries { pos },
            PushError::Spill(e) => files::spill_err(e),
        }
    }
}

/// Why a step could not be added.
#[derive(Debug)]
pub(crate) enum PushError {
    /// More steps than a u32 counts: far beyond any real revision, refused rather than
    /// wrapped.
    TooLarge,
    /// The spill could not be written.
    Spill(io::Error),
}
