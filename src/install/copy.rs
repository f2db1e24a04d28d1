//! Copies a batch of checked, journaled files to their destinations, on up to a few threads.
//!
//! Invariants: every job's destination path was journaled before this runs; a file is
//! created with `O_EXCL|O_NOFOLLOW` (a job that replaces something writes a temporary name
//! and renames it over the old object afterwards), so nothing is written through a symlink;
//! the first failure stops the batch and is the error returned. Contents, then owner (as
//! root), mode and times are copied as `cp -p` would.

use super::InstallError;
use crate::fscopy;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Files up to this size are copied with one read and one write from a reused buffer.
const SMALL_FILE: usize = 256 * 1024;
/// Most jobs a thread takes at a time. A thread takes the run of consecutive jobs with the
/// same destination directory (up to this many): creating a file holds its directory's lock,
/// so threads working in different directories do not wait for each other.
const GRAB: usize = 256;
/// Below this many jobs a second thread costs more than it saves.
const PARALLEL_MIN: usize = 64;

/// One checked and journaled copy: write `target`, then rename it to `dest` if they differ.
pub(crate) struct CopyJob {
    pub source: PathBuf,
    pub dest: PathBuf,
    pub target: PathBuf,
}

/// What every copy needs to know about the process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyEnv {
    euid_root: bool,
    umask: Option<u32>,
    threads: usize,
}

impl CopyEnv {
    pub(crate) fn detect() -> Self {
        Self {
            euid_root: nix::unistd::geteuid().is_root(),
            umask: crate::bundle::current_umask(),
            threads: fscopy::copy_threads(),
        }
    }
}

/// Copies every job; returns the first error met.
pub(crate) fn run_copies(jobs: &[CopyJob], env: CopyEnv) -> Result<(), InstallError> {
    if env.threads < 2 || jobs.len() < PARALLEL_MIN {
        let mut buf = Vec::new();
        return jobs.iter().try_for_each(|j| run_copy(j, env, &mut buf));
    }
    let groups = directory_runs(jobs);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<InstallError>> = Mutex::new(None);
    let work = || {
        let mut buf = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let Some(range) = groups.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            for job in &jobs[range.clone()] {
                if let Err(e) = run_copy(job, env, &mut buf) {
                    stop.store(true, Ordering::Relaxed);
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..env.threads {
            s.spawn(work);
        }
        work();
    });
    match failure.into_inner() {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(e),
        Err(_) => Err(InstallError::io(
            "copy",
            Path::new(""),
            io::Error::other("a copying thread panicked"),
        )),
    }
}

/// Splits the jobs into runs that share a destination directory, each at most [`GRAB`] long.
fn directory_runs(jobs: &[CopyJob]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=jobs.len() {
        let split = i == jobs.len()
            || i - start == GRAB
            || jobs[i].dest.parent() != jobs[start].dest.parent();
        if split {
            runs.push(start..i);
            start = i;
        }
    }
    runs
}

fn run_copy(job: &CopyJob, env: CopyEnv, buf: &mut Vec<u8>) -> Result<(), InstallError> {
    let (source, target) = (job.source.as_path(), job.target.as_path());
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(source);
    match opened {
        Ok(from) => copy_regular(from, source, target, env, buf)?,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let link =
                fs::read_link(source).map_err(|e| InstallError::io("read link", source, e))?;
            std::os::unix::fs::symlink(&link, target)
                .map_err(|e| InstallError::io("create symlink", target, e))?;
            if env.euid_root {
                let m = fs::symlink_metadata(source)
                    .map_err(|e| InstallError::io("inspect", source, e))?;
                std::os::unix::fs::lchown(target, Some(m.uid()), Some(m.gid()))
                    .map_err(|e| InstallError::io("chown", target, e))?;
            }
        }
        Err(e) => return Err(InstallError::io("open", source, e)),
    }
    if job.target != job.dest {
        fs::rename(target, &job.dest).map_err(|e| InstallError::io("rename", &job.dest, e))?;
    }
    crate::failpoint::hit("install-copy");
    Ok(())
}

fn copy_regular(
    mut from: File,
    source: &Path,
    target: &Path,
    env: CopyEnv,
    buf: &mut Vec<u8>,
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
    let mode = meta.mode() & 0o7777;
    // Created with its final mode when the umask takes nothing from it, which saves a chmod
    // per file; otherwise private until the chmod below.
    let mode_done = mode & 0o7000 == 0 && env.umask.is_some_and(|u| mode & u == 0);
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if mode_done { mode } else { 0o600 })
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(target)
        .map_err(|e| InstallError::io("create", target, e))?;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if len <= SMALL_FILE {
        fscopy::read_whole(&mut from, len, buf).map_err(|e| InstallError::io("read", source, e))?;
        to.write_all(buf)
            .map_err(|e| InstallError::io("write", target, e))?;
    } else {
        fscopy::copy_range(&mut from, &mut to, u64::MAX)
            .map_err(|e| InstallError::io("copy to", target, e))?;
    }
    if env.euid_root {
        std::os::unix::fs::fchown(&to, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| InstallError::io("chown", target, e))?;
    }
    // chown clears setuid and setgid, so the mode goes after it (a mode with those bits is
    // never `mode_done`).
    if !mode_done {
        to.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| InstallError::io("chmod", target, e))?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dest: &str) -> CopyJob {
        CopyJob {
            source: PathBuf::from("/src").join(dest.trim_start_matches('/')),
            dest: PathBuf::from(dest),
            target: PathBuf::from(dest),
        }
    }

    #[test]
    fn runs_follow_directories_and_are_capped() {
        let mut jobs: Vec<CopyJob> = ["/a/1", "/a/2", "/b/1", "/a/3"].map(job).into();
        assert_eq!(directory_runs(&jobs), [0..2, 2..3, 3..4]);
        jobs = (0..GRAB + 3).map(|i| job(&format!("/c/{i}"))).collect();
        assert_eq!(directory_runs(&jobs), [0..GRAB, GRAB..GRAB + 3]);
        assert!(directory_runs(&[]).is_empty());
    }
}
