//! Copies a batch of checked, journaled files to their destinations, on up to a few threads.
//!
//! Invariants: every job's destination path was journaled before this runs; a file is
//! created with `O_EXCL|O_NOFOLLOW` (a job that replaces something writes a temporary name
//! and renames it over the old object afterwards), so nothing is written through a symlink;
//! the first failure stops the batch and is the error returned. Contents, then owner (as
//! root), mode and times are copied as `cp -p` would. With `install_by_hard_link` a regular
//! file is linked instead (the same inode, so the same contents, owner, mode and times), and
//! copied where the link cannot be made; a link is kept only if what it names is a regular
//! file (a name linked as a symlink is taken back and the symlink made again from its text;
//! docs/adr/0011-install-by-hard-link.md).
//!
//! Per file, as few system calls as this allows, since a revision is often thousands of small
//! files: a destination is created by name in its directory, opened once for the run of jobs
//! that share it; a link is made by name from the source's directory, with no open; and the
//! chown that would give a root-owned file the group it already has is skipped.
//!
//! Sources are read without leaving the revision: a source's directory is walked again with
//! [`crate::links`] and opened descriptor by descriptor with `O_NOFOLLOW` from the archive
//! root, and the file is opened with `O_NOFOLLOW` in it (a symlink is recreated from its
//! text, never opened). So even a directory of the archive swapped for a link after planning
//! (by a local user owning it) cannot make the copy read from outside.

use super::InstallError;
use crate::fscopy::{self, LastDir};
use crate::links::disk::{open_no_follow, Revision};
use crate::links::{Node, Resolved};
use crate::meter::Meter;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use std::fs::{self, File, FileTimes, Permissions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
    last: LastDir<OwnedFd>,
}

impl<'a> SourceDirs<'a> {
    /// `archive`: the archive dir, absolute and normalised as the planner saw it.
    pub(crate) fn new(archive: &'a Path) -> Self {
        Self {
            archive,
            rev: Revision::new(archive),
            last: LastDir::default(),
        }
    }

    fn open(archive: &Path, rev: &Revision, dir: &Path) -> Result<OwnedFd, InstallError> {
        let rel = dir
            .strip_prefix(archive)
            .map_err(|_| InstallError::SourceLeft {
                path: dir.to_path_buf(),
                link: "..".into(),
            })?;
        let walked = rev
            .resolve(rel.as_os_str().as_bytes(), true)
            .map_err(|e| InstallError::io("inspect", dir, e))?;
        match walked {
            Resolved::Inside {
                real,
                node: Node::Dir,
            } => rev
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
        let (archive, rev) = (self.archive, &self.rev);
        self.last.get_or_open(dir, |d| Self::open(archive, rev, d))
    }
}

/// The destination directory of the jobs being copied, opened once (`O_PATH`, by the path the
/// plan names, as creating by the whole path would) while consecutive jobs share it, with
/// the group a file created in it is sure to get.
pub(crate) struct DestDirs {
    last: LastDir<(OwnedFd, Option<u32>)>,
    egid: u32,
}

impl DestDirs {
    pub(crate) fn new() -> Self {
        Self {
            last: LastDir::default(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }

    /// The open directory `dir` and the group a new file in it is sure to get: the
    /// directory's own with the setgid bit, else this process's where the two agree. `None`
    /// where they differ (a file system mounted `grpid` gives the directory's).
    fn get(&mut self, dir: &Path) -> Result<(&OwnedFd, Option<u32>), InstallError> {
        let egid = self.egid;
        let (fd, gid) = self.last.get_or_open(dir, |dir| {
            let fd = fscopy::open_dir_path(dir).map_err(|e| InstallError::io("open", dir, e))?;
            let st = nix::sys::stat::fstat(&fd)
                .map_err(|e| InstallError::io("inspect", dir, e.into()))?;
            let gid = (st.st_mode & libc::S_ISGID != 0 || st.st_gid == egid).then_some(st.st_gid);
            Ok::<_, InstallError>((fd, gid))
        })?;
        Ok((fd, *gid))
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
        let mut dirs = (SourceDirs::new(archive), DestDirs::new());
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
        let mut dirs = (SourceDirs::new(archive), DestDirs::new());
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
    (sources, dests): &mut (SourceDirs<'_>, DestDirs),
) -> Result<u64, InstallError> {
    let (source, target) = (job.source.as_path(), job.target.as_path());
    let invalid =
        |p: &Path| InstallError::io("open", p, io::Error::from(io::ErrorKind::InvalidInput));
    let (Some(parent), Some(name)) = (source.parent(), source.file_name()) else {
        return Err(invalid(source));
    };
    let (Some(to_parent), Some(to_name)) = (target.parent(), target.file_name()) else {
        return Err(invalid(target));
    };
    let dir = sources.get(parent)?;
    let (to_dir, new_gid) = dests.get(to_parent)?;
    let to = Dest {
        dir: to_dir,
        name: to_name,
        path: target,
        gid: new_gid,
    };
    let linked = if env.hard_link {
        link_regular(dir, name, &to)?
    } else {
        None
    };
    let copied = match linked {
        Some(len) => len,
        None => match open_no_follow(dir, name) {
            Ok(from) => {
                let meta = from
                    .metadata()
                    .map_err(|e| InstallError::io("inspect", source, e))?;
                copy_regular(from, &meta, source, &to, env, buf)?
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                copy_symlink(dir, name, source, &to, env)?;
                0
            }
            Err(e) => return Err(InstallError::io("open", source, e)),
        },
    };
    if job.target != job.dest {
        fs::rename(target, &job.dest).map_err(|e| InstallError::io("rename", &job.dest, e))?;
    }
    crate::failpoint::hit("install-copy");
    Ok(copied)
}

/// Where one copy goes: `name` in the open directory `dir` (`path` in messages), and the group
/// a file created there is sure to get, if known.
struct Dest<'a> {
    dir: &'a OwnedFd,
    name: &'a std::ffi::OsStr,
    path: &'a Path,
    gid: Option<u32>,
}

/// Recreates the symlink `name` in `dir` from its text, owned as the revision's.
fn copy_symlink(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    source: &Path,
    to: &Dest<'_>,
    env: CopyEnv,
) -> Result<(), InstallError> {
    let link = nix::fcntl::readlinkat(dir, name)
        .map_err(|e| InstallError::io("read link", source, e.into()))?;
    nix::unistd::symlinkat(link.as_os_str(), to.dir, to.name)
        .map_err(|e| InstallError::io("create symlink", to.path, e.into()))?;
    if env.euid_root {
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| InstallError::io("inspect", source, e.into()))?;
        nix::unistd::fchownat(
            to.dir,
            to.name,
            Some(st.st_uid.into()),
            Some(st.st_gid.into()),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| InstallError::io("chown", to.path, e.into()))?;
    }
    Ok(())
}

/// Makes the destination a second name of `name` in `dir` when that is a regular file;
/// returns its size. `None`: no link here (another file system, a refusal, or not a regular
/// file): the caller copies instead, and meets any real error there.
fn link_regular(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    to: &Dest<'_>,
) -> Result<Option<u64>, InstallError> {
    // Without AT_SYMLINK_FOLLOW: a name that is (or was swapped for) a symlink is linked as
    // the symlink, and then taken back below, never followed.
    if nix::unistd::linkat(dir, name, to.dir, to.name, AtFlags::empty()).is_err() {
        return Ok(None);
    }
    let st = fstatat(to.dir, to.name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| InstallError::io("inspect", to.path, e.into()))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFREG {
        return Ok(Some(u64::try_from(st.st_size).unwrap_or(0)));
    }
    nix::unistd::unlinkat(to.dir, to.name, nix::unistd::UnlinkatFlags::NoRemoveDir)
        .map_err(|e| InstallError::io("remove", to.path, e.into()))?;
    Ok(None)
}

/// Copies the opened file `from`, whose metadata is `meta`, to the destination.
fn copy_regular(
    mut from: File,
    meta: &fs::Metadata,
    source: &Path,
    to: &Dest<'_>,
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
    let target = to.path;
    let mode = meta.mode() & 0o7777;
    // Created with its final mode when the umask takes nothing from it, which saves a chmod
    // per file; otherwise private until the chmod below.
    let mode_done = mode & 0o7000 == 0 && env.umask.is_some_and(|u| mode & u == 0);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let create_mode = Mode::from_bits_truncate(if mode_done { mode } else { 0o600 });
    let mut out = File::from(
        nix::fcntl::openat(to.dir, to.name, flags, create_mode)
            .map_err(|e| InstallError::io("create", target, e.into()))?,
    );
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if len <= SMALL_FILE {
        fscopy::read_whole(&mut from, len, buf).map_err(|e| InstallError::io("read", source, e))?;
        out.write_all(buf)
            .map_err(|e| InstallError::io("write", target, e))?;
    } else {
        fscopy::copy_range(&mut from, &mut out, u64::MAX)
            .map_err(|e| InstallError::io("copy to", target, e))?;
    }
    // Root's new file is root's, in the group `to.gid` when that is known: a chown that would
    // change nothing is skipped (one system call per file).
    if env.euid_root && (meta.uid() != 0 || to.gid != Some(meta.gid())) {
        std::os::unix::fs::fchown(&out, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| InstallError::io("chown", target, e))?;
    }
    // chown clears setuid and setgid, so the mode goes after it (a mode with those bits is
    // never `mode_done`).
    if !mode_done {
        out.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| InstallError::io("chmod", target, e))?;
    }
    let mut times = FileTimes::new();
    if let Ok(t) = meta.accessed() {
        times = times.set_accessed(t);
    }
    if let Ok(t) = meta.modified() {
        times = times.set_modified(t);
    }
    out.set_times(times)
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
    fn a_symlink_is_made_again_from_its_text_with_hard_links_on() {
        let t = tempfile::tempdir().unwrap();
        let archive = t.path().join("archive");
        fs::create_dir_all(&archive).unwrap();
        std::os::unix::fs::symlink("some/where", archive.join("l")).unwrap();
        let out = t.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let job = CopyJob {
            source: archive.join("l"),
            dest: out.join("l"),
            target: out.join("l"),
        };
        run_copies(&[job], serial(true), &archive, None).unwrap();
        let made = fs::symlink_metadata(out.join("l")).unwrap();
        assert!(made.file_type().is_symlink());
        assert_eq!(
            fs::read_link(out.join("l")).unwrap(),
            Path::new("some/where")
        );
        let kept = fs::symlink_metadata(archive.join("l")).unwrap();
        assert_ne!(made.ino(), kept.ino(), "a new link, not a second name");
        assert_eq!(kept.nlink(), 1);
    }

    /// As root: the copy's owner and group are the source's, whether or not the destination
    /// directory would give new files another group (setgid) and whether or not the chown
    /// is needed.
    #[test]
    fn owner_and_group_are_the_sources_whatever_the_directory_gives() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: changing a file's group to another needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let archive = t.path().join("archive");
        fs::create_dir_all(&archive).unwrap();
        let root_gid = nix::unistd::getegid().as_raw();
        for (name, uid, gid) in [("mine", 0, root_gid), ("theirs", 4321, 4322)] {
            fs::write(archive.join(name), name).unwrap();
            std::os::unix::fs::chown(archive.join(name), Some(uid), Some(gid)).unwrap();
        }
        let setgid = t.path().join("setgid");
        let plain = t.path().join("plain");
        // Another group without setgid: on a file system mounted `grpid` new files would
        // take it, so the copy cannot assume this process's.
        let foreign = t.path().join("foreign");
        for d in [&setgid, &plain, &foreign] {
            fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::chown(&setgid, Some(0), Some(1234)).unwrap();
        fs::set_permissions(&setgid, Permissions::from_mode(0o2775)).unwrap();
        std::os::unix::fs::chown(&foreign, Some(0), Some(1235)).unwrap();
        let env = CopyEnv {
            euid_root: true,
            umask: crate::bundle::current_umask(),
            threads: 1,
            hard_link: false,
        };
        for out in [&setgid, &plain, &foreign] {
            let jobs: Vec<CopyJob> = ["mine", "theirs"]
                .map(|n| CopyJob {
                    source: archive.join(n),
                    dest: out.join(n),
                    target: out.join(n),
                })
                .into();
            run_copies(&jobs, env, &archive, None).unwrap();
            for (name, uid, gid) in [("mine", 0, root_gid), ("theirs", 4321, 4322)] {
                let m = fs::metadata(out.join(name)).unwrap();
                assert_eq!(
                    (m.uid(), m.gid()),
                    (uid, gid),
                    "{}",
                    out.join(name).display()
                );
                assert_eq!(fs::read_to_string(out.join(name)).unwrap(), name);
            }
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
