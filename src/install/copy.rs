//! Copies a batch of checked, journaled files to their destinations, on up to a few threads.
//!
//! Invariants: every job's destination path was journaled before this runs; a file is
//! created with `O_EXCL|O_NOFOLLOW` (a job that replaces something writes a temporary name
//! and renames it over the old object afterwards), so nothing is written through a symlink;
//! the first failure stops the batch and is the error returned. Contents, then owner (as
//! root), mode and times are copied as `cp -p` would. With `install_by_hard_link` a regular
//! file is linked instead (the same inode, so the same contents, owner, mode and times), and
//! copied where the link cannot be made; a link is kept only if it names the very file that
//! was opened (docs/adr/0011-install-by-hard-link.md).
//!
//! Sources are read without leaving the revision: a source's directory is walked again with
//! [`crate::links`] and opened descriptor by descriptor with `O_NOFOLLOW` from the archive
//! root, and the file is opened with `O_NOFOLLOW` in it (a symlink is recreated from its
//! text, never opened). So even a directory of the archive swapped for a link after planning
//! (by a local user owning it) cannot make the copy read from outside.

use super::InstallError;
use crate::fscopy;
use crate::links::disk::{open_no_follow, Revision};
use crate::links::{Node, Resolved};
use crate::meter::Meter;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
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
    hard_link: bool,
}

impl CopyEnv {
    pub(crate) fn detect() -> Self {
        Self {
            euid_root: nix::unistd::geteuid().is_root(),
            umask: crate::bundle::current_umask(),
            threads: fscopy::copy_threads(),
            hard_link: false,
        }
    }

    /// Links regular files instead of copying them, where the file system allows.
    pub(crate) fn hard_link(self, on: bool) -> Self {
        Self {
            hard_link: on,
            ..self
        }
    }
}

/// The source directory of the jobs being copied, opened from the archive root without
/// following a link, kept while consecutive jobs share it.
pub(crate) struct SourceDirs<'a> {
    archive: &'a Path,
    rev: Revision,
    last: Option<(PathBuf, OwnedFd)>,
}

impl<'a> SourceDirs<'a> {
    /// `archive`: the archive dir, absolute and normalised as the planner saw it.
    pub(crate) fn new(archive: &'a Path) -> Self {
        Self {
            archive,
            rev: Revision::new(archive),
            last: None,
        }
    }

    fn open(&self, dir: &Path) -> Result<OwnedFd, InstallError> {
        let rel = dir
            .strip_prefix(self.archive)
            .map_err(|_| InstallError::SourceLeft {
                path: dir.to_path_buf(),
                link: "..".into(),
            })?;
        let walked = self
            .rev
            .resolve(rel.as_os_str().as_bytes(), true)
            .map_err(|e| InstallError::io("inspect", dir, e))?;
        match walked {
            Resolved::Inside {
                real,
                node: Node::Dir,
            } => self
                .rev
                .open_dir(&real)
                .map_err(|e| InstallError::io("open", dir, e)),
            Resolved::Outside { via } => Err(InstallError::SourceLeft {
                path: dir.to_path_buf(),
                link: via.map_or_else(|| "..".into(), |l| l.describe()),
            }),
            _ => Err(InstallError::io(
                "open",
                dir,
                io::Error::from_raw_os_error(libc::ENOTDIR),
            )),
        }
    }

    fn get(&mut self, dir: &Path) -> Result<&OwnedFd, InstallError> {
        if self
            .last
            .as_ref()
            .is_none_or(|(p, _)| p.as_os_str() != dir.as_os_str())
        {
            let fd = self.open(dir)?;
            self.last = Some((dir.to_path_buf(), fd));
        }
        match &self.last {
            Some((_, fd)) => Ok(fd),
            None => Err(InstallError::io(
                "open",
                dir,
                io::Error::other("no directory"),
            )),
        }
    }
}

/// Copies every job, reading sources below `archive`; returns the first error met.
/// `meter` hears the files and bytes copied, a directory run (or a serial batch) at a time.
pub(crate) fn run_copies(
    jobs: &[CopyJob],
    env: CopyEnv,
    archive: &Path,
    meter: Option<&Meter>,
) -> Result<(), InstallError> {
    if env.threads < 2 || jobs.len() < PARALLEL_MIN {
        let mut buf = Vec::new();
        let mut dirs = SourceDirs::new(archive);
        let mut bytes = 0;
        for j in jobs {
            bytes += run_copy(j, env, &mut buf, &mut dirs)?;
        }
        if let Some(m) = meter {
            m.add(bytes, jobs.len() as u64);
        }
        return Ok(());
    }
    let groups = directory_runs(jobs);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<InstallError>> = Mutex::new(None);
    let work = || {
        let mut buf = Vec::new();
        let mut dirs = SourceDirs::new(archive);
        while !stop.load(Ordering::Relaxed) {
            let Some(range) = groups.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let mut bytes = 0;
            for job in &jobs[range.clone()] {
                match run_copy(job, env, &mut buf, &mut dirs) {
                    Ok(n) => bytes += n,
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            }
            if let Some(m) = meter {
                m.add(bytes, range.len() as u64);
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

/// Copies one file or link; returns the bytes of content copied.
fn run_copy(
    job: &CopyJob,
    env: CopyEnv,
    buf: &mut Vec<u8>,
    dirs: &mut SourceDirs<'_>,
) -> Result<u64, InstallError> {
    let (source, target) = (job.source.as_path(), job.target.as_path());
    let (Some(parent), Some(name)) = (source.parent(), source.file_name()) else {
        return Err(InstallError::io(
            "open",
            source,
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    };
    let dir = dirs.get(parent)?;
    let mut copied = 0;
    match open_no_follow(dir, name) {
        Ok(from) => {
            let meta = from
                .metadata()
                .map_err(|e| InstallError::io("inspect", source, e))?;
            copied = if env.hard_link && link_regular(dir, name, &meta, target)? {
                meta.len()
            } else {
                copy_regular(from, &meta, source, target, env, buf)?
            };
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let link = nix::fcntl::readlinkat(dir, name)
                .map_err(|e| InstallError::io("read link", source, e.into()))?;
            std::os::unix::fs::symlink(&link, target)
                .map_err(|e| InstallError::io("create symlink", target, e))?;
            if env.euid_root {
                let st =
                    nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|e| InstallError::io("inspect", source, e.into()))?;
                std::os::unix::fs::lchown(target, Some(st.st_uid), Some(st.st_gid))
                    .map_err(|e| InstallError::io("chown", target, e))?;
            }
        }
        Err(e) => return Err(InstallError::io("open", source, e)),
    }
    if job.target != job.dest {
        fs::rename(target, &job.dest).map_err(|e| InstallError::io("rename", &job.dest, e))?;
    }
    crate::failpoint::hit("install-copy");
    Ok(copied)
}

/// Makes `target` a second name of the opened file whose metadata is `meta` (`name` in
/// `dir`). Ok(false): no link here (another file system, a refusal, not a regular file, or the
/// name no longer the opened file): copy instead.
fn link_regular(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    meta: &fs::Metadata,
    target: &Path,
) -> Result<bool, InstallError> {
    use nix::errno::Errno;
    if !meta.is_file() {
        return Ok(false);
    }
    // Without AT_SYMLINK_FOLLOW: a name swapped for a symlink is linked as the symlink, and
    // then refused below, never followed.
    match nix::unistd::linkat(
        dir,
        name,
        nix::fcntl::AT_FDCWD,
        target,
        nix::fcntl::AtFlags::empty(),
    ) {
        Ok(()) => {}
        Err(Errno::EXDEV | Errno::EPERM | Errno::EMLINK | Errno::EOPNOTSUPP) => return Ok(false),
        Err(e) => return Err(InstallError::io("link", target, e.into())),
    }
    let linked =
        fs::symlink_metadata(target).map_err(|e| InstallError::io("inspect", target, e))?;
    if linked.dev() != meta.dev() || linked.ino() != meta.ino() {
        fs::remove_file(target).map_err(|e| InstallError::io("remove", target, e))?;
        return Ok(false);
    }
    Ok(true)
}

/// Copies the opened file `from`, whose metadata is `meta`, to `target`.
fn copy_regular(
    mut from: File,
    meta: &fs::Metadata,
    source: &Path,
    target: &Path,
    env: CopyEnv,
    buf: &mut Vec<u8>,
) -> Result<u64, InstallError> {
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
        .map_err(|e| InstallError::io("set times", target, e))?;
    Ok(meta.len())
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

    /// One thread, not root, no umask: the copy as a test sees it.
    fn serial(hard_link: bool) -> CopyEnv {
        CopyEnv {
            euid_root: false,
            umask: None,
            threads: 1,
            hard_link,
        }
    }

    #[test]
    fn sources_are_never_read_through_a_link_out_of_the_archive() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("secret"), "canary").unwrap();
        let archive = t.path().join("archive");
        fs::create_dir_all(archive.join("inner")).unwrap();
        fs::write(archive.join("inner/secret"), "inside").unwrap();
        std::os::unix::fs::symlink("inner", archive.join("conf")).unwrap();
        let out = t.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let env = serial(false);
        let job = |src: &str, name: &str| CopyJob {
            source: archive.join(src),
            dest: out.join(name),
            target: out.join(name),
        };
        // Through a link that stays inside: fine.
        run_copies(&[job("conf/secret", "a")], env, &archive, None).unwrap();
        assert_eq!(fs::read_to_string(out.join("a")).unwrap(), "inside");
        // `inner` swapped for a link to the host after planning: refused, nothing read.
        fs::rename(archive.join("inner"), t.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&host, archive.join("inner")).unwrap();
        for (src, env) in [
            ("inner/secret", env),
            ("conf/secret", env),
            ("inner/secret", serial(true)),
            ("conf/secret", serial(true)),
        ] {
            let e = run_copies(&[job(src, "b")], env, &archive, None).unwrap_err();
            assert!(matches!(e, InstallError::SourceLeft { .. }), "{e}");
            assert!(e.to_string().contains("inner -> "), "{e}");
            assert!(!out.join("b").exists());
        }
    }

    #[test]
    fn hard_links_where_asked_and_possible_and_copies_elsewhere() {
        let t = tempfile::tempdir().unwrap();
        let archive = t.path().join("archive");
        fs::create_dir_all(&archive).unwrap();
        fs::write(archive.join("f"), "content").unwrap();
        let out = t.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let env = serial(true);
        let job = |dest: &Path| CopyJob {
            source: archive.join("f"),
            dest: dest.to_path_buf(),
            target: dest.to_path_buf(),
        };
        let ino = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
        run_copies(&[job(&out.join("linked"))], env, &archive, None).unwrap();
        assert_eq!(ino(&out.join("linked")), ino(&archive.join("f")));
        assert_eq!(fs::symlink_metadata(archive.join("f")).unwrap().nlink(), 2);
        let off = env.hard_link(false);
        run_copies(&[job(&out.join("copied"))], off, &archive, None).unwrap();
        assert_ne!(ino(&out.join("copied")), ino(&archive.join("f")));
        assert_eq!(fs::read_to_string(out.join("copied")).unwrap(), "content");
        // Another file system (tmpfs at /dev/shm, where there is one): a copy.
        let shm = Path::new("/dev/shm");
        let other = shm.exists()
            && fs::metadata(shm).unwrap().dev() != fs::metadata(&archive).unwrap().dev();
        if other {
            let there = tempfile::tempdir_in(shm).unwrap();
            let dest = there.path().join("f");
            run_copies(&[job(&dest)], env, &archive, None).unwrap();
            assert_eq!(fs::read_to_string(&dest).unwrap(), "content");
            assert_eq!(fs::symlink_metadata(archive.join("f")).unwrap().nlink(), 2);
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
