//! Applies a checked plan step by step, journaling each path before it is created.
//!
//! Invariants: a path goes into the journal only after the checks that could refuse the
//! step, and before the step changes anything, so the journal never names an object this
//! install did not create or replace, and never misses one. A new file is created with
//! `O_EXCL`; a file that replaces something is written beside it and renamed over it, so a
//! symlink at the destination is replaced, never written through, and a running binary is
//! not truncated under its process.

use super::perms::{apply_permission, Ids, Tools};
use super::{InstallError, InstallOptions, InstallReport};
use crate::plan::{InstallPlan, Step};
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The `<group>-cleanup` file being written.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
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
        })
    }

    fn line(&mut self, prefix: &[u8], p: &Path) -> Result<(), InstallError> {
        let mut buf = Vec::with_capacity(prefix.len() + p.as_os_str().len() + 1);
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(p.as_os_str().as_bytes());
        buf.push(b'\n');
        // One write per line: a crash tears at most the last line, which readers drop.
        self.file
            .write_all(&buf)
            .map_err(|e| InstallError::io("write", &self.path, e))
    }

    pub(crate) fn record(&mut self, p: &Path) -> Result<(), InstallError> {
        self.line(b"", p)
    }

    pub(crate) fn record_context(&mut self, p: &Path) -> Result<(), InstallError> {
        self.line(b"semanage\0", p)
    }

    fn sync(&self) -> Result<(), InstallError> {
        self.file
            .sync_all()
            .map_err(|e| InstallError::io("sync", &self.path, e))
    }
}

/// Files up to this size are copied with one read and one write; the kernel's
/// copy_file_range costs more round trips than it saves on small files.
const SMALL_FILE: u64 = 256 * 1024;

pub(crate) fn apply_plan(
    plan: &InstallPlan,
    journal_path: &Path,
    ids: &Ids,
    tools: &Tools,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<(), InstallError> {
    let mut journal = Journal::create(journal_path)?;
    let euid_root = nix::unistd::geteuid().is_root();
    let steps = &plan.steps;
    let limit = opts.fail_after_steps.unwrap_or(usize::MAX).min(steps.len());
    let mut i = 0;
    while i < limit {
        match &steps[i] {
            Step::Mkdir { dir, replace } => {
                mkdir(dir, *replace, &mut journal)?;
                report.dirs_created += 1;
                i += 1;
            }
            Step::Copy { .. } => {
                // A run of copies: check and journal each in order, then copy them; every
                // path is journaled before any is created.
                let end = (i..limit)
                    .find(|&j| !matches!(steps[j], Step::Copy { .. }))
                    .unwrap_or(limit);
                let mut jobs = Vec::with_capacity(end - i);
                for step in &steps[i..end] {
                    if let Step::Copy {
                        source,
                        destination,
                        replace,
                    } = step
                    {
                        jobs.push(prepare_copy(source, destination, *replace, &mut journal)?);
                    }
                }
                run_copies(&jobs, euid_root)?;
                report.files_copied += jobs.len();
                i = end;
            }
            Step::SetPermissions(p) => {
                apply_permission(p, ids, tools, &mut journal, &mut report.warnings)?;
                report.permissions_set += 1;
                i += 1;
            }
        }
    }
    if limit < steps.len() {
        return Err(InstallError::SimulatedCrash(limit));
    }
    journal.sync()
}

/// One checked and journaled copy: write `target`, then rename it to `dest` if they differ.
struct CopyJob<'a> {
    source: &'a Path,
    dest: &'a Path,
    target: PathBuf,
}

/// Measured on the 10,000-file benchmark, a second copying thread gained nothing over the
/// noise of a shared two-core host, so copies run on the calling thread.
fn run_copies(jobs: &[CopyJob<'_>], euid_root: bool) -> Result<(), InstallError> {
    jobs.iter().try_for_each(|j| run_copy(j, euid_root))
}

fn lstat(p: &Path) -> Result<Option<fs::Metadata>, InstallError> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InstallError::io("inspect", p, e)),
    }
}

fn mkdir(dir: &Path, replace: bool, journal: &mut Journal) -> Result<(), InstallError> {
    match lstat(dir)? {
        None => {
            journal.record(dir)?;
            fs::create_dir(dir).map_err(|e| InstallError::io("create directory", dir, e))
        }
        // A directory of the previous revision that cleanup could not empty: reuse it, and
        // keep it journaled so it goes once it is empty.
        Some(m) if m.file_type().is_dir() => journal.record(dir),
        Some(_) if replace => {
            journal.record(dir)?;
            fs::remove_file(dir).map_err(|e| InstallError::io("remove", dir, e))?;
            fs::create_dir(dir).map_err(|e| InstallError::io("create directory", dir, e))
        }
        Some(_) => Err(InstallError::Changed {
            path: dir.to_path_buf(),
            what: "a file",
        }),
    }
}

fn temp_beside(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.codedeploy-tmp.{}", std::process::id()))
}

/// Checks what stands at `dest` and journals what will be created, before creating it.
fn prepare_copy<'a>(
    source: &'a Path,
    dest: &'a Path,
    replace: bool,
    journal: &mut Journal,
) -> Result<CopyJob<'a>, InstallError> {
    let target = match lstat(dest)? {
        None => {
            journal.record(dest)?;
            dest.to_path_buf()
        }
        Some(m) if m.file_type().is_dir() => {
            return Err(InstallError::Changed {
                path: dest.to_path_buf(),
                what: "a directory",
            })
        }
        Some(_) if replace => {
            let tmp = temp_beside(dest);
            // The temporary name is journaled too: a crash before the rename leaves it behind.
            journal.record(dest)?;
            journal.record(&tmp)?;
            match fs::remove_file(&tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(InstallError::io("remove", &tmp, e)),
            }
            tmp
        }
        Some(_) => {
            return Err(InstallError::Changed {
                path: dest.to_path_buf(),
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

fn run_copy(job: &CopyJob<'_>, euid_root: bool) -> Result<(), InstallError> {
    let (source, target) = (job.source, job.target.as_path());
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(source);
    match opened {
        Ok(from) => copy_regular(from, source, target, euid_root)?,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let link =
                fs::read_link(source).map_err(|e| InstallError::io("read link", source, e))?;
            std::os::unix::fs::symlink(&link, target)
                .map_err(|e| InstallError::io("create symlink", target, e))?;
            if euid_root {
                let m = fs::symlink_metadata(source)
                    .map_err(|e| InstallError::io("inspect", source, e))?;
                std::os::unix::fs::lchown(target, Some(m.uid()), Some(m.gid()))
                    .map_err(|e| InstallError::io("chown", target, e))?;
            }
        }
        Err(e) => return Err(InstallError::io("open", source, e)),
    }
    if target != job.dest {
        fs::rename(target, job.dest).map_err(|e| InstallError::io("rename", job.dest, e))?;
    }
    Ok(())
}

/// Copies contents, then owner (as root), mode and timestamps, as `cp -p` would.
fn copy_regular(
    mut from: File,
    source: &Path,
    target: &Path,
    euid_root: bool,
) -> Result<(), InstallError> {
    let meta = from
        .metadata()
        .map_err(|e| InstallError::io("inspect", source, e))?;
    if !meta.is_file() {
        return Err(InstallError::io(
            "copy",
            source,
            io::Error::other("not a regular file"),
        ));
    }
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(target)
        .map_err(|e| InstallError::io("create", target, e))?;
    if meta.len() <= SMALL_FILE {
        let mut buf = Vec::with_capacity(meta.len() as usize);
        from.read_to_end(&mut buf)
            .map_err(|e| InstallError::io("read", source, e))?;
        to.write_all(&buf)
            .map_err(|e| InstallError::io("write", target, e))?;
    } else {
        // io::copy between files uses copy_file_range underneath.
        io::copy(&mut from, &mut to).map_err(|e| InstallError::io("copy to", target, e))?;
    }
    if euid_root {
        std::os::unix::fs::fchown(&to, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| InstallError::io("chown", target, e))?;
    }
    to.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| InstallError::io("chmod", target, e))?;
    let mut times = FileTimes::new();
    if let Ok(t) = meta.accessed() {
        times = times.set_accessed(t);
    }
    if let Ok(t) = meta.modified() {
        times = times.set_modified(t);
    }
    to.set_times(times)
        .map_err(|e| InstallError::io("set times", target, e))
}
