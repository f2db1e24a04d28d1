//! Copy planning for the `files` section (docs/behaviour/install.md#copy-planning) with
//! `file_exists_behavior` (docs/behaviour/install.md#file-exists-behavior), then permission
//! planning (docs/behaviour/install.md#permission-planning) over what was planned.
//!
//! Clash rules (documented in docs/compatibility-install.md):
//! * a file over anything that exists (file, directory, symlink, special file): DISALLOW
//!   refuses; RETAIN keeps the existing object; OVERWRITE replaces a file, symlink or special
//!   file (never writing through a symlink) but refuses to replace a directory;
//! * a directory over a directory or a symlink to one: reused, never a clash (official);
//! * a directory over a file, a non-directory symlink or a special file: DISALLOW refuses;
//!   OVERWRITE replaces the object with the directory; RETAIN keeps the object and skips
//!   everything the revision has below it.
//!
//! Paths the previous revision installed count as absent, because they are removed before
//! this plan is applied. A directory among them that something not installed by that
//! revision (say, a log a script wrote) keeps from being removed is still planned as a
//! directory of this revision, so it stays journaled and receives the revision's permissions.

use super::fsview::{normalize, DestKind, FsView, Node};
use super::journal::Previous;
use super::perms::plan_permissions;
use super::{InstallPlan, PlanError, PushError, SpillSource};
use crate::appspec::model::{FileExistsBehavior, FileMapping, Permission, Pos};
use crate::links::{self, Rel, Resolved};
use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Everything the planner needs besides the filesystem view.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The revision's unpacked archive directory (absolute).
    pub archive_dir: &'a Path,
    pub files: &'a [FileMapping],
    pub permissions: &'a [Permission],
    pub behavior: FileExistsBehavior,
    /// Paths the previous revision of this group installed (its cleanup journal).
    pub previous: &'a dyn Previous,
    /// Base for relative destinations and permission objects.
    pub cwd: &'a Path,
    /// Where the plan's records go once they outgrow memory; `None` keeps them all in memory.
    pub spill: Option<&'a dyn SpillSource>,
}

/// Plans an install. Refuses, without side effects, anything the behaviour forbids.
///
/// Links of the revision: a symlink to a directory inside the revision is followed (its
/// contents are copied as real files, as the official agent does); every other symlink (to a
/// file, dangling, or leading outside the revision) is copied as a link with the same text
/// and never followed. A `files` source that reaches outside through a link on its way is
/// refused, naming the link.
pub fn plan_install(input: &PlanInput<'_>, fs: &dyn FsView) -> Result<InstallPlan, PlanError> {
    let archive = normalize(input.cwd, input.archive_dir);
    let dests: Vec<PathBuf> = input
        .files
        .iter()
        .map(|m| normalize(input.cwd, Path::new(&m.destination)))
        .collect();
    let mut b = Builder {
        input,
        fs,
        archive: archive.clone(),
        plan: InstallPlan::default(),
        watch: Vec::new(),
        copy_hashes: HashSet::new(),
        mkdirs: HashMap::new(),
        last_standing: None,
        blocked: HashSet::new(),
        vanish_memo: RefCell::new(HashMap::new()),
    };
    for (i, m) in input.files.iter().enumerate() {
        b.watch = later_overlaps(&dests, i);
        let src = normalize(&archive, Path::new(m.source.trim_start_matches('/')));
        let Ok(rel) = src.strip_prefix(&archive) else {
            return Err(PlanError::SourceOutsideBundle {
                src: m.source.clone(),
                pos: m.pos,
            });
        };
        let dest = dests[i].clone();
        let missing = || PlanError::MissingSource {
            src: m.source.clone(),
            pos: m.pos,
        };
        let (real, node) = match b.resolve(&[], rel.as_os_str().as_bytes(), false)? {
            Resolved::Inside { real, node } => (real, node),
            Resolved::Outside { via } => {
                return Err(PlanError::SourceLeavesRevision {
                    src: m.source.clone(),
                    link: via.map_or_else(|| "..".into(), |l| l.describe()),
                    pos: m.pos,
                })
            }
            Resolved::Loop { link } => {
                return Err(PlanError::SourceLoop {
                    path: disp(&b.abs(&link)),
                    pos: m.pos,
                })
            }
        };
        let as_file = |b: &mut Builder<'_>| match (src.parent(), src.file_name()) {
            (Some(dir), Some(name)) => b.copy(dir, &dest, name, m.pos),
            _ => Err(missing()),
        };
        match node {
            Node::Dir => b.plan_dir(&src, &real, &dest, m.pos, &mut Vec::new())?,
            Node::File => as_file(&mut b)?,
            Node::Symlink(_) => match b.dir_behind(&real)? {
                Some(target) => b.plan_dir(&src, &target, &dest, m.pos, &mut Vec::new())?,
                None => as_file(&mut b)?,
            },
            Node::Missing => return Err(missing()),
            Node::Special => {
                return Err(PlanError::SpecialSource {
                    path: disp(&src),
                    pos: m.pos,
                })
            }
        }
    }
    let object_is_copy = input
        .permissions
        .iter()
        .map(|p| b.any_planned_copy(&normalize(input.cwd, Path::new(&p.object)), &dests))
        .collect::<Result<Vec<bool>, PlanError>>()?;
    let mut plan = b.plan;
    plan_permissions(
        input.permissions,
        &mut plan,
        &object_is_copy,
        &|p: &Path| {
            fs.dest_kind(p)
                .map(|k| matches!(k, DestKind::Dir | DestKind::SymlinkToDir))
                .map_err(|e| Builder::inspect_err(p, e))
        },
        input.cwd,
        input.spill,
    )?;
    Ok(plan)
}

/// The destinations of the mappings after `i` that share paths with mapping `i`'s: one is an
/// ancestor of (or the same as) the other. A mapping creates its destination's missing
/// ancestors, the destination and paths below it, so two mappings whose destinations are
/// unrelated can never plan the same path.
pub(crate) fn later_overlaps(dests: &[PathBuf], i: usize) -> Vec<PathBuf> {
    let Some(d) = dests.get(i) else {
        return Vec::new();
    };
    dests[i + 1..]
        .iter()
        .filter(|o| o.starts_with(d) || d.starts_with(o))
        .cloned()
        .collect()
}

/// Whether a copy to `p` can meet a path of a later mapping whose destination is in
/// `watch`: `p` is that destination, one of its ancestors, or below it.
pub(crate) fn watched(p: &Path, watch: &[PathBuf]) -> bool {
    watch.iter().any(|w| w.starts_with(p) || p.starts_with(w))
}

pub(crate) fn path_hash(p: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

pub(crate) fn spill_err(e: std::io::Error) -> PlanError {
    PlanError::Spill { source: e.into() }
}

/// A path in a message or in install.json: names are bytes, shown through the one escaping.
pub(crate) fn disp(p: &Path) -> String {
    crate::names::path(p).into_owned()
}

struct Builder<'a> {
    input: &'a PlanInput<'a>,
    fs: &'a dyn FsView,
    /// The archive dir, absolute and normalised.
    archive: PathBuf,
    plan: InstallPlan,
    /// Destinations of later mappings that can meet the current mapping's paths
    /// ([`later_overlaps`]).
    watch: Vec<PathBuf>,
    /// Hashes of the planned copy destinations a later mapping could meet ([`watched`]);
    /// no other copy can clash, so the rest cost no memory. A miss proves a path that the
    /// planner asks about is no planned copy; a hit is confirmed on the tape.
    copy_hashes: HashSet<u64>,
    /// Planned directories, each with whether nothing stood there when the planner looked:
    /// then nothing stands below it either, and paths there are not asked about (one
    /// `lstat` a file saved; the apply checks again what it meets).
    mkdirs: HashMap<PathBuf, bool>,
    /// The last directory found standing (not planned), so the files of one directory ask
    /// about it once.
    last_standing: Option<PathBuf>,
    /// Non-directories RETAIN kept where the revision needed a directory.
    blocked: HashSet<PathBuf>,
    /// Answers of `vanishes`, which would otherwise rescan a tree once per level.
    vanish_memo: RefCell<HashMap<PathBuf, bool>>,
}

impl Builder<'_> {
    fn inspect_err(p: &Path, e: std::io::Error) -> PlanError {
        PlanError::Inspect {
            path: disp(p),
            source: e.into(),
        }
    }

    /// The source of a planned copy to `p`, for the paths the planner itself asks about
    /// (an earlier mapping's copy there was indexed, see [`watched`]).
    fn planned_copy_source(&self, p: &Path) -> Result<Option<PathBuf>, PlanError> {
        if !self.copy_hashes.contains(&path_hash(p)) {
            return Ok(None);
        }
        self.copy_source_for(p)
    }

    /// Whether any mapping planned a copy to `p` (a permission object): a path below a
    /// destination may be an unindexed copy, so the tape is read.
    fn any_planned_copy(&self, p: &Path, dests: &[PathBuf]) -> Result<bool, PlanError> {
        if self.copy_hashes.contains(&path_hash(p))
            || dests.iter().any(|d| p.starts_with(d) && p != d)
        {
            return Ok(self.copy_source_for(p)?.is_some());
        }
        Ok(false)
    }

    fn copy_source_for(&self, p: &Path) -> Result<Option<PathBuf>, PlanError> {
        self.plan.copy_source_for(p).map_err(spill_err)
    }

    /// Maps a failed push, and moves the plan to a spill once it outgrows memory.
    fn pushed(&mut self, r: Result<(), PushError>, pos: Pos) -> Result<(), PlanError> {
        r.map_err(|e| e.at(pos))?;
        self.plan.spill_if_due(self.input.spill).map_err(spill_err)
    }

    fn abs(&self, rel: &[OsString]) -> PathBuf {
        let mut p = self.archive.clone();
        p.extend(rel);
        p
    }

    fn source_node(&self, rel: &[OsString]) -> Result<Node, PlanError> {
        let p = self.abs(rel);
        self.fs
            .source_node(&p)
            .map_err(|e| Self::inspect_err(&p, e))
    }

    /// Walks `path` from the real directory `start` of the revision (see [`links::resolve`]).
    fn resolve(
        &self,
        start: &[OsString],
        path: &[u8],
        follow_last: bool,
    ) -> Result<Resolved, PlanError> {
        links::resolve(start, path, follow_last, &mut |rel| self.source_node(rel))
    }

    /// The real directory the symlink at `link` leads to, when it leads to a directory inside
    /// the revision; `None` means the link is copied as a link.
    fn dir_behind(&self, link: &[OsString]) -> Result<Option<Rel>, PlanError> {
        let Some((name, parent)) = link.split_last() else {
            return Ok(None);
        };
        Ok(match self.resolve(parent, name.as_bytes(), true)? {
            Resolved::Inside {
                real,
                node: Node::Dir,
            } => Some(real),
            _ => None,
        })
    }

    fn was_installed(&self, p: &Path) -> Result<bool, PlanError> {
        self.input
            .previous
            .installed(p)
            .map_err(|e| PlanError::Journal { source: e.into() })
    }

    /// What stands at `p` now.
    fn real_kind(&self, p: &Path) -> Result<DestKind, PlanError> {
        if p.parent().and_then(|d| self.mkdirs.get(d)) == Some(&true) {
            return Ok(DestKind::Absent);
        }
        self.fs.dest_kind(p).map_err(|e| Self::inspect_err(p, e))
    }

    /// What will stand at `p` once the previous revision's files are gone.
    fn dest_kind(&self, p: &Path) -> Result<DestKind, PlanError> {
        let real = self.real_kind(p)?;
        self.after_cleanup(p, real)
    }

    /// What will stand at `p`, where `real` stands now, once the previous revision's files
    /// are gone.
    fn after_cleanup(&self, p: &Path, real: DestKind) -> Result<DestKind, PlanError> {
        if real == DestKind::Absent || !self.was_installed(p)? {
            return Ok(real);
        }
        if real == DestKind::Dir && !self.vanishes(p)? {
            return Ok(DestKind::Dir);
        }
        Ok(DestKind::Absent)
    }

    /// Whether cleanup of the previous revision removes directory `dir` (it only removes
    /// directories that end up empty).
    fn vanishes(&self, dir: &Path) -> Result<bool, PlanError> {
        if let Some(&known) = self.vanish_memo.borrow().get(dir) {
            return Ok(known);
        }
        let answer = self.scan_vanishes(dir)?;
        self.vanish_memo
            .borrow_mut()
            .insert(dir.to_path_buf(), answer);
        Ok(answer)
    }

    fn scan_vanishes(&self, dir: &Path) -> Result<bool, PlanError> {
        for name in self
            .fs
            .list_dir(dir)
            .map_err(|e| Self::inspect_err(dir, e))?
        {
            let child = dir.join(name);
            if !self.was_installed(&child)? {
                return Ok(false);
            }
            let kind = self
                .fs
                .dest_kind(&child)
                .map_err(|e| Self::inspect_err(&child, e))?;
            if kind == DestKind::Dir && !self.vanishes(&child)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn is_blocked(&self, p: &Path) -> bool {
        !self.blocked.is_empty() && p.ancestors().any(|a| self.blocked.contains(a))
    }

    fn check_recordable(p: &Path, pos: Pos) -> Result<(), PlanError> {
        if p.as_os_str().as_encoded_bytes().contains(&b'\n') {
            return Err(PlanError::NewlineInPath { path: disp(p), pos });
        }
        Ok(())
    }

    /// Makes sure `dir` will be a directory. `Ok(false)`: RETAIN kept a non-directory on the
    /// way, so nothing can be installed below it.
    fn ensure_dir(&mut self, dir: &Path, src: &Path, pos: Pos) -> Result<bool, PlanError> {
        let Some(parent) = dir.parent() else {
            return Ok(true); // the root directory
        };
        if self.mkdirs.contains_key(dir) || self.last_standing.as_deref() == Some(dir) {
            return Ok(true);
        }
        if self.is_blocked(dir) {
            return Ok(false);
        }
        if self.planned_copy_source(dir)?.is_some() {
            return Err(PlanError::MkdirOverCopy {
                path: disp(dir),
                src: disp(src),
                pos,
            });
        }
        Self::check_recordable(dir, pos)?;
        let real = self.real_kind(dir)?;
        let replace = match self.after_cleanup(dir, real)? {
            // A directory of the previous revision that cleanup will not empty (a script
            // wrote into it) is still the revision's: plan it, so it stays journaled and is
            // removed once it is empty.
            DestKind::Dir if self.was_installed(dir)? => false,
            DestKind::Dir | DestKind::SymlinkToDir => {
                self.last_standing = Some(dir.to_path_buf());
                return Ok(true);
            }
            DestKind::Absent => false,
            DestKind::File | DestKind::Symlink | DestKind::Special => match self.input.behavior {
                FileExistsBehavior::Disallow => {
                    return Err(PlanError::FileExists {
                        path: disp(dir),
                        pos,
                    })
                }
                FileExistsBehavior::Overwrite => true,
                FileExistsBehavior::Retain => {
                    self.blocked.insert(dir.to_path_buf());
                    self.plan.retained.push(dir.to_path_buf());
                    return Ok(false);
                }
            },
        };
        if !self.ensure_dir(parent, src, pos)? {
            return Ok(false);
        }
        // Only what is absent now, not what the previous revision's cleanup will remove.
        self.mkdirs
            .insert(dir.to_path_buf(), real == DestKind::Absent);
        let r = self.plan.push_mkdir(dir, replace);
        self.pushed(r, pos)?;
        Ok(true)
    }

    /// Plans copying `src_dir/name` to `dest_dir/name`.
    fn copy(
        &mut self,
        src_dir: &Path,
        dest_dir: &Path,
        name: &OsStr,
        pos: Pos,
    ) -> Result<(), PlanError> {
        let (src, target) = (&src_dir.join(name), &dest_dir.join(name));
        if !self.ensure_dir(dest_dir, src, pos)? {
            return Ok(());
        }
        if let Some(other) = self.planned_copy_source(target)? {
            return Err(PlanError::DuplicateCopy {
                path: disp(target),
                src: disp(src),
                other: disp(&other),
                pos,
            });
        }
        if self.mkdirs.contains_key(target) {
            return Err(PlanError::CopyOverMkdir {
                path: disp(target),
                src: disp(src),
                pos,
            });
        }
        Self::check_recordable(target, pos)?;
        let kind = self.dest_kind(target)?;
        let replace = match (kind, self.input.behavior) {
            (DestKind::Absent, _) => false,
            (_, FileExistsBehavior::Disallow) => {
                return Err(PlanError::FileExists {
                    path: disp(target),
                    pos,
                })
            }
            (_, FileExistsBehavior::Retain) => {
                self.plan.retained.push(target.to_path_buf());
                return Ok(());
            }
            (DestKind::Dir, FileExistsBehavior::Overwrite) => {
                return Err(PlanError::DirectoryInTheWay {
                    path: disp(target),
                    src: disp(src),
                    pos,
                })
            }
            (_, FileExistsBehavior::Overwrite) => true,
        };
        if watched(target, &self.watch) {
            self.copy_hashes.insert(path_hash(target));
        }
        let r = self.plan.push_copy(src_dir, dest_dir, name, replace);
        self.pushed(r, pos)
    }

    /// A directory source: its destination, then every entry, recursing into directories.
    /// `src` is the directory as the files entry spells it (through links, for install.json
    /// and messages), `real` where it is in the revision. Entries go in byte order of their
    /// names so plans are reproducible.
    fn plan_dir(
        &mut self,
        src: &Path,
        real: &[OsString],
        dest: &Path,
        pos: Pos,
        stack: &mut Vec<(u64, u64)>,
    ) -> Result<(), PlanError> {
        let real_abs = self.abs(real);
        let id = self
            .fs
            .dir_id(&real_abs)
            .map_err(|e| Self::inspect_err(&real_abs, e))?;
        if stack.contains(&id) {
            return Err(PlanError::SourceLoop {
                path: disp(src),
                pos,
            });
        }
        if !self.ensure_dir(dest, src, pos)? {
            return Ok(());
        }
        stack.push(id);
        let mut names = self
            .fs
            .list_dir_typed(&real_abs)
            .map_err(|e| Self::inspect_err(&real_abs, e))?;
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut child: Rel = real.to_vec();
        for (name, hint) in names {
            let s = src.join(&name);
            child.push(name);
            let node = match hint {
                Some(node) => node,
                None => {
                    let child_abs = real_abs.join(last(&child));
                    self.fs
                        .source_node(&child_abs)
                        .map_err(|e| Self::inspect_err(&child_abs, e))?
                }
            };
            match node {
                Node::Dir => self.plan_dir(&s, &child, &dest.join(last(&child)), pos, stack)?,
                Node::File => self.copy(src, dest, last(&child), pos)?,
                Node::Symlink(_) => match self.dir_behind(&child)? {
                    Some(target) => {
                        self.plan_dir(&s, &target, &dest.join(last(&child)), pos, stack)?
                    }
                    None => self.copy(src, dest, last(&child), pos)?,
                },
                Node::Special => {
                    return Err(PlanError::SpecialSource {
                        path: disp(&s),
                        pos,
                    })
                }
                Node::Missing => return Err(PlanError::MissingSource { src: disp(&s), pos }),
            }
            child.pop();
        }
        stack.pop();
        Ok(())
    }
}

fn last(rel: &[OsString]) -> &OsStr {
    rel.last().map_or(OsStr::new(""), |n| n.as_os_str())
}
