//! PURE: the install plan (docs/behaviour/install.md#copy-planning,
//! docs/behaviour/install.md#file-exists-behavior, docs/behaviour/install.md#permission-planning),
//! the cleanup journal's meaning (docs/behaviour/install.md#install-execution), the full ACL an ACE
//! list stands for, the `<group>-install.json` text (docs/behaviour/install.md#install-json) and
//! which old revisions to prune (docs/behaviour/layout.md#retention).
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
pub use fsview::{normalize, DestKind, FsView, Node};
pub use journal::{Previous, PreviousInstall, Removal};
pub use json::{install_json, write_install_json};
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
///
/// Stored compactly because a revision can hold hundreds of thousands of files and the
/// whole install must stay within a few MiB: a copy is a (source dir, destination dir) pair
/// shared by its directory plus its name in one byte arena, 16 bytes and the name's bytes
/// per file. [`InstallPlan::steps`] hands out ordinary [`Step`]s one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallPlan {
    bases: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<PathBuf>,
    names: Vec<u8>,
    stored: Vec<Stored>,
    /// Destinations left alone because RETAIN kept what was already there.
    pub retained: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    Mkdir {
        dir: u32,
        replace: bool,
    },
    Copy {
        base: u32,
        name: u32,
        len: u32,
        replace: bool,
    },
    SetPermissions(Box<PermissionStep>),
}

/// More entries than a u32 can index: far beyond any real revision, refused rather than
/// wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTooLarge;

fn index(n: usize) -> Result<u32, PlanTooLarge> {
    u32::try_from(n).map_err(|_| PlanTooLarge)
}

impl InstallPlan {
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// The steps in the order they must be applied, each built when asked for.
    pub fn steps(&self) -> impl ExactSizeIterator<Item = Step> + '_ {
        (0..self.stored.len()).map(|i| self.step(i))
    }

    /// How many steps are copies (for progress), without building them.
    pub fn copies(&self) -> usize {
        self.stored
            .iter()
            .filter(|s| matches!(s, Stored::Copy { .. }))
            .count()
    }

    /// The permission steps alone, without building the copies.
    pub fn permission_steps(&self) -> impl Iterator<Item = &PermissionStep> + '_ {
        self.stored.iter().filter_map(|s| match s {
            Stored::SetPermissions(p) => Some(&**p),
            _ => None,
        })
    }

    /// Destinations of the copies, in order.
    pub fn copy_destinations(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.stored.iter().filter_map(|s| match s {
            Stored::Copy {
                base, name, len, ..
            } => Some(self.bases[*base as usize].1.join(self.name(*name, *len))),
            _ => None,
        })
    }

    /// Directories the plan creates, in order.
    pub fn mkdirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn is_copy(&self, i: usize) -> bool {
        matches!(self.stored.get(i), Some(Stored::Copy { .. }))
    }

    pub fn step(&self, i: usize) -> Step {
        match &self.stored[i] {
            Stored::Mkdir { dir, replace } => Step::Mkdir {
                dir: self.dirs[*dir as usize].clone(),
                replace: *replace,
            },
            Stored::Copy {
                base,
                name,
                len,
                replace,
            } => {
                let (s, d) = &self.bases[*base as usize];
                let n = self.name(*name, *len);
                Step::Copy {
                    source: s.join(n),
                    destination: d.join(n),
                    replace: *replace,
                }
            }
            Stored::SetPermissions(p) => Step::SetPermissions(p.clone()),
        }
    }

    fn name(&self, start: u32, len: u32) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        let start = start as usize;
        std::ffi::OsStr::from_bytes(&self.names[start..start + len as usize])
    }

    pub(crate) fn push_mkdir(&mut self, dir: PathBuf, replace: bool) -> Result<(), PlanTooLarge> {
        let dir_ix = index(self.dirs.len())?;
        self.dirs.push(dir);
        self.stored.push(Stored::Mkdir {
            dir: dir_ix,
            replace,
        });
        Ok(())
    }

    /// Adds a copy of `source_dir/name` to `dest_dir/name`; consecutive copies between the
    /// same two directories share one base.
    pub(crate) fn push_copy(
        &mut self,
        source_dir: &std::path::Path,
        dest_dir: &std::path::Path,
        name: &std::ffi::OsStr,
        replace: bool,
    ) -> Result<(), PlanTooLarge> {
        let same = self
            .bases
            .last()
            .is_some_and(|(s, d)| s == source_dir && d == dest_dir);
        if !same {
            self.bases
                .push((source_dir.to_path_buf(), dest_dir.to_path_buf()));
        }
        let base = index(self.bases.len() - 1)?;
        let start = index(self.names.len())?;
        let bytes = name.as_encoded_bytes();
        self.names.extend_from_slice(bytes);
        index(self.names.len())?;
        self.stored.push(Stored::Copy {
            base,
            name: start,
            len: index(bytes.len())?,
            replace,
        });
        Ok(())
    }

    /// The source of the copy to `dest`, if one is planned. Linear: only asked after the
    /// destination index reported a likely match.
    pub(crate) fn copy_source_for(&self, dest: &std::path::Path) -> Option<PathBuf> {
        self.stored.iter().find_map(|s| match s {
            Stored::Copy {
                base, name, len, ..
            } => {
                let (sd, dd) = &self.bases[*base as usize];
                let n = self.name(*name, *len);
                (dest.parent() == Some(dd.as_path()) && dest.file_name() == Some(n))
                    .then(|| sd.join(n))
            }
            _ => None,
        })
    }

    pub(crate) fn push_permissions(&mut self, p: PermissionStep) {
        self.stored.push(Stored::SetPermissions(Box::new(p)));
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
                Step::Mkdir { dir, replace } => plan.push_mkdir(dir, replace).unwrap(),
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
                Step::SetPermissions(p) => plan.push_permissions(*p),
            }
        }
        plan
    }
}
