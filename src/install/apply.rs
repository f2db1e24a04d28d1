//! Applies a checked plan step by step, journaling each path before it is created.
//!
//! Invariants: a path goes into the journal only after the checks that could refuse the
//! step, and before the step changes anything, so the journal never names an object this
//! install did not create or replace, and never misses one. A new file is created with
//! `O_EXCL`; a file that replaces something is written beside it and renamed over it, so a
//! symlink at the destination is replaced, never written through, and a running binary is
//! not truncated under its process.

use super::copy::{run_copies, CopyEnv, CopyJob};
use super::perms::{apply_permission, Ids, Tools};
use super::{InstallError, InstallOptions, InstallReport};
use crate::plan::{InstallPlan, Step};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The `<group>-cleanup` file being written.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// Lines staged for one write, which must happen before any of them is created.
    staged: Vec<u8>,
}

impl Journal {
    fn create(path: &Path) -> Result<Self, InstallError> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| InstallError::io("create", path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            staged: Vec::new(),
        })
    }

    /// Adds a line to the staged ones; [`Journal::flush`] writes them.
    fn stage(&mut self, prefix: &[u8], p: &Path) {
        self.staged.extend_from_slice(prefix);
        self.staged.extend_from_slice(p.as_os_str().as_bytes());
        self.staged.push(b'\n');
    }

    /// Writes the staged lines at once: a crash tears at most the last line, which readers
    /// drop.
    fn flush(&mut self) -> Result<(), InstallError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.staged);
        self.staged.clear();
        r.map_err(|e| InstallError::io("write", &self.path, e))
    }

    /// Journals `p` now, before the caller creates it.
    pub(crate) fn record(&mut self, p: &Path) -> Result<(), InstallError> {
        self.stage(b"", p);
        self.flush()
    }

    pub(crate) fn record_context(&mut self, p: &Path) -> Result<(), InstallError> {
        self.stage(b"semanage\0", p);
        self.flush()
    }

    fn sync(&self) -> Result<(), InstallError> {
        self.file
            .sync_all()
            .map_err(|e| InstallError::io("sync", &self.path, e))
    }
}

/// Copies checked and journaled before any of them is made: bounded so that memory stays
/// flat however many files a revision has, large enough for the copying threads to share.
/// Every path is still journaled before it is created.
const BATCH: usize = 1024;

/// Applies `plan`, whose copies read from below `archive` (absolute, normalised).
pub(crate) fn apply_plan(
    plan: &InstallPlan,
    archive: &Path,
    journal_path: &Path,
    ids: &Ids,
    tools: &Tools,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<(), InstallError> {
    let mut journal = Journal::create(journal_path)?;
    let env = CopyEnv::detect().hard_link(opts.hard_link);
    let limit = opts.fail_after_steps.unwrap_or(usize::MAX).min(plan.len());
    let mut applied = 0;
    // Directories and copies come first (read back from the plan's tape), permissions last.
    let mut steps = plan.file_steps().take(limit).peekable();
    while steps.peek().is_some() {
        // A batch: directories are made as they come (the plan puts a directory before its
        // contents), copies are checked and journaled, then made together, so the copying
        // threads can work in different directories.
        let mut jobs = Vec::new();
        // Directories this batch created: nothing stands in them that the plan did not put
        // there, so a copy into one needs no look at its destination first.
        let mut fresh: HashSet<PathBuf> = HashSet::new();
        while jobs.len() < BATCH {
            let Some(step) = steps.next() else { break };
            match step.map_err(InstallError::plan_unreadable)? {
                Step::Mkdir { dir, replace } => {
                    if mkdir(&dir, replace, &mut journal)? {
                        fresh.insert(dir);
                    }
                    report.dirs_created += 1;
                }
                Step::Copy {
                    source,
                    destination,
                    replace,
                } => {
                    let in_fresh = destination.parent().is_some_and(|p| fresh.contains(p));
                    jobs.push(prepare_copy(
                        source,
                        destination,
                        replace,
                        in_fresh,
                        &mut journal,
                    )?);
                }
                // Never on the tape: permissions are applied below.
                Step::SetPermissions(_) => {}
            }
            applied += 1;
        }
        journal.flush()?;
        run_copies(&jobs, env, archive, opts.progress.as_ref())?;
        report.files_copied += jobs.len();
    }
    for p in plan.permission_steps().take(limit - applied) {
        let p = p.map_err(InstallError::plan_unreadable)?;
        apply_permission(&p, ids, tools, &mut journal, &mut report.warnings)?;
        report.permissions_set += 1;
    }
    if limit < plan.len() {
        return Err(InstallError::SimulatedCrash(limit));
    }
    journal.sync()
}

fn lstat(p: &Path) -> Result<Option<fs::Metadata>, InstallError> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InstallError::io("inspect", p, e)),
    }
}

/// Creates `dir` (journaled first); `Ok(true)` when it is new and therefore empty.
fn mkdir(dir: &Path, replace: bool, journal: &mut Journal) -> Result<bool, InstallError> {
    match lstat(dir)? {
        None => {
            journal.record(dir)?;
            match fs::create_dir(dir) {
                Ok(()) => Ok(true),
                // Another group, whose destination shares this directory, made it since
                // the plan was checked: use it as the planner would have.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(dir) => Ok(false),
                // Another group's cleanup removed a shared parent that had become empty
                // since the plan was checked: make it again, as this install's own.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    remake_parents(dir, journal)?;
                    journal.record(dir)?;
                    fs::create_dir(dir)
                        .map_err(|e| InstallError::io("create directory", dir, e))?;
                    Ok(true)
                }
                Err(e) => Err(InstallError::io("create directory", dir, e)),
            }
        }
        // A directory of the previous revision that cleanup could not empty: reuse it, and
        // keep it journaled so it goes once it is empty.
        Some(m) if m.file_type().is_dir() => journal.record(dir).map(|()| false),
        Some(_) if replace => {
            journal.record(dir)?;
            fs::remove_file(dir).map_err(|e| InstallError::io("remove", dir, e))?;
            fs::create_dir(dir).map_err(|e| InstallError::io("create directory", dir, e))?;
            Ok(true)
        }
        Some(_) => Err(InstallError::Changed {
            path: dir.to_path_buf(),
            what: "a file",
        }),
    }
}

fn is_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir())
}

/// Makes the missing ancestors of `dir`, outermost first, each journaled before it is made
/// (after `dir`'s own line, so a later cleanup still removes children first: `dir` is
/// journaled again after them).
fn remake_parents(dir: &Path, journal: &mut Journal) -> Result<(), InstallError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| fs::symlink_metadata(a).is_err())
        .collect();
    for a in missing.into_iter().rev() {
        journal.record(a)?;
        match fs::create_dir(a) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(a) => {}
            Err(e) => return Err(InstallError::io("create directory", a, e)),
        }
    }
    Ok(())
}

/// `.<name>.codedeploy-tmp.<pid>` beside `p`, built from the name's bytes: names that differ
/// only in bytes that are not UTF-8 get different temporary names too.
fn temp_beside(p: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(p.file_name().unwrap_or_default());
    name.push(format!(".codedeploy-tmp.{}", std::process::id()));
    p.with_file_name(name)
}

/// Checks what stands at `dest` and stages its journal line; the caller flushes the journal
/// before copying. In a directory this install created (`in_fresh`) nothing can stand there.
fn prepare_copy(
    source: PathBuf,
    dest: PathBuf,
    replace: bool,
    in_fresh: bool,
    journal: &mut Journal,
) -> Result<CopyJob, InstallError> {
    let existing = if in_fresh { None } else { lstat(&dest)? };
    let target = match existing {
        None => {
            journal.stage(b"", &dest);
            dest.clone()
        }
        Some(m) if m.file_type().is_dir() => {
            return Err(InstallError::Changed {
                path: dest,
                what: "a directory",
            })
        }
        Some(_) if replace => {
            let tmp = temp_beside(&dest);
            // The temporary name is journaled too: a crash before the rename leaves it behind.
            journal.stage(b"", &dest);
            journal.stage(b"", &tmp);
            journal.flush()?;
            match fs::remove_file(&tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(InstallError::io("remove", &tmp, e)),
            }
            tmp
        }
        Some(_) => {
            return Err(InstallError::Changed {
                path: dest,
                what: "a file",
            })
        }
    };
    Ok(CopyJob {
        source,
        dest,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_removed_since_planning_is_made_again_and_journaled_before_its_child() {
        let t = tempfile::tempdir().unwrap();
        let journal_path = t.path().join("g-cleanup");
        let mut journal = Journal::create(&journal_path).unwrap();
        // The plan expected `shared` to exist (another group's); its cleanup removed it.
        let dir = t.path().join("shared/a");
        assert!(
            mkdir(&dir, false, &mut journal).unwrap(),
            "a new, empty directory"
        );
        assert!(dir.is_dir());
        let text = fs::read_to_string(&journal_path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let (d, p) = (dir.to_str().unwrap(), t.path().join("shared"));
        assert_eq!(lines, [d, p.to_str().unwrap(), d]);
        // Cleanup goes last line first: the child, then the parent (if empty), then nothing.
        let again = t.path().join("shared/a");
        assert!(
            !mkdir(&again, false, &mut journal).unwrap(),
            "now it exists"
        );
    }
}
