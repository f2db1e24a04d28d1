//! The only code that writes into the archive dir. Producers (tar, zip, directory walk)
//! describe members; this applies them.
//!
//! Invariants, which hold for any input:
//! * Every path is walked component by component from a descriptor of the archive dir with
//!   `openat(O_DIRECTORY|O_NOFOLLOW)`; a symlink anywhere on the way (made by this archive or
//!   already on disk) is refused, so nothing is ever written outside the archive dir.
//! * Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`; an existing non-directory of the same
//!   name is unlinked first (GNU tar does the same), so an earlier hard link or symlink is
//!   replaced, never written through. Directories are never removed, which keeps the cached
//!   descriptors of the current path valid.
//! * Bytes are counted as written, not as declared, against `max_total_bytes`, and (with a
//!   reserve) against the room above it on the archive dir's file system, each member
//!   costing one block more, so a bomb of empty files is bounded too (see `space`).
//! * Directory modes and times are applied after the last member (a read-only directory must
//!   still accept its children; writing children changes its mtime).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstatat, futimens, mkdirat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Group, Uid, UnlinkatFlags, User,
};

use super::entry::{hard_link_target, normalize, shown, EntryHead, Kind, Owner, RelPath};
use super::error::{BundleError, Unsafe};
use super::{UnpackOptions, UnpackReport};
use crate::{fscopy, space};

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

enum Step {
    Symlink,
    NotDir,
    Missing,
    Io(Errno),
}

/// Opens `name` under `parent` as a directory without following a symlink, creating it
/// (mode 0777 less the umask, like `mkdir -p`) when asked.
fn step(parent: BorrowedFd<'_>, name: &OsStr, create: bool) -> Result<OwnedFd, Step> {
    for _ in 0..2 {
        match openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) if create => {
                match mkdirat(parent, name, Mode::from_bits_truncate(0o777)) {
                    Ok(()) | Err(Errno::EEXIST) => continue,
                    Err(e) => return Err(Step::Io(e)),
                }
            }
            Err(Errno::ENOENT) => return Err(Step::Missing),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(match kind_at(parent, name) {
                    Ok(SFlag::S_IFLNK) => Step::Symlink,
                    _ => Step::NotDir,
                })
            }
            Err(e) => return Err(Step::Io(e)),
        }
    }
    Err(Step::Io(Errno::EAGAIN))
}

fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<SFlag, Errno> {
    let st = fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()))
}

fn timespec(mtime: (i64, u32)) -> TimeSpec {
    TimeSpec::new(mtime.0, i64::from(mtime.1))
}

/// The process umask, read without changing it (calling umask(2) twice races other threads).
pub(crate) fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

struct OpenFile {
    file: File,
    head: EntryHead,
    /// Mode given at creation already is the final one (umask took nothing away).
    mode_done: bool,
}

pub(crate) struct Writer {
    bundle: PathBuf,
    archive_dir: PathBuf,
    opts: UnpackOptions,
    root: OwnedFd,
    /// Descriptors of the directories of the last path used, outermost first.
    stack: Vec<(OsString, OwnedFd)>,
    open: Option<OpenFile>,
    pending_dirs: Vec<(RelPath, EntryHead)>,
    report: UnpackReport,
    umask: Option<u32>,
    users: HashMap<String, Option<Uid>>,
    groups: HashMap<String, Option<Gid>>,
    /// Reused for small files copied from a directory bundle.
    buf: Vec<u8>,
    /// Bytes written by this writer and its siblings, checked against the limit.
    total: Arc<AtomicU64>,
    /// The archive dir's file system, shared with the siblings; None without a reserve.
    space: Option<Arc<space::Guard>>,
}

impl Writer {
    /// Creates the archive dir if missing (`mkdir -p`) and opens it; the archive dir itself
    /// must not be a symlink.
    pub fn open(
        bundle: &Path,
        archive_dir: &Path,
        opts: &UnpackOptions,
    ) -> Result<Self, BundleError> {
        let werr = |source| BundleError::Write {
            bundle: bundle.to_path_buf(),
            entry: String::new(),
            archive_dir: archive_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(archive_dir).map_err(werr)?;
        let root = openat(nix::fcntl::AT_FDCWD, archive_dir, DIR_FLAGS, Mode::empty())
            .map_err(|e| werr(e.into()))?;
        let space = match opts.reserve {
            Some(rule) => Some(Arc::new(
                space::Guard::new(archive_dir, rule).map_err(werr)?,
            )),
            None => None,
        };
        Ok(Self {
            bundle: bundle.to_path_buf(),
            archive_dir: archive_dir.to_path_buf(),
            opts: opts.clone(),
            root,
            stack: Vec::new(),
            open: None,
            pending_dirs: Vec::new(),
            report: UnpackReport::default(),
            umask: current_umask(),
            users: HashMap::new(),
            groups: HashMap::new(),
            buf: Vec::new(),
            total: Arc::new(AtomicU64::new(0)),
            space,
        })
    }

    /// Refuses, before anything is written, a bundle known to need `needed` bytes (content
    /// plus a block per member, as [`Writer::block`] counts) that do not fit above the reserve.
    pub fn ahead(&self, needed: u64) -> Result<(), BundleError> {
        match &self.space {
            Some(g) => g.ahead(needed).map_err(|s| self.no_space(b"", s)),
            None => Ok(()),
        }
    }

    /// What one member costs beyond its content: the archive dir's allocation unit.
    pub fn block(&self) -> u64 {
        self.space.as_ref().map_or(4096, |g| g.block())
    }

    fn no_space(&self, entry: &[u8], space: space::NoSpace) -> BundleError {
        BundleError::NoSpace {
            bundle: self.bundle.clone(),
            entry: shown(entry),
            space: Box::new(space),
        }
    }

    /// Another writer into the same archive dir, for another thread, sharing the size limit.
    /// Each applies its own directories' metadata in [`Writer::finish`], which must run only
    /// once every sibling has written its last member.
    pub fn sibling(&self) -> Result<Self, BundleError> {
        let root = self.root.try_clone().map_err(|e| self.werr(b"", e))?;
        Ok(Self {
            bundle: self.bundle.clone(),
            archive_dir: self.archive_dir.clone(),
            opts: self.opts.clone(),
            root,
            stack: Vec::new(),
            open: None,
            pending_dirs: Vec::new(),
            report: UnpackReport::default(),
            umask: self.umask,
            users: HashMap::new(),
            groups: HashMap::new(),
            buf: Vec::new(),
            total: Arc::clone(&self.total),
            space: self.space.clone(),
        })
    }

    fn too_large(&self, entry: &[u8]) -> BundleError {
        BundleError::TooLarge {
            bundle: self.bundle.clone(),
            entry: shown(entry),
            limit: self.opts.max_total_bytes,
            archive_dir: self.archive_dir.clone(),
        }
    }

    /// Counts `n` more content bytes of `entry`, before they are written: refused past the
    /// configured limit or into the reserve.
    fn count(&mut self, n: u64, entry: &[u8]) -> Result<(), BundleError> {
        let before = self.total.fetch_add(n, Ordering::Relaxed);
        self.report.bytes += n;
        if before.saturating_add(n) > self.opts.max_total_bytes {
            return Err(self.too_large(entry));
        }
        self.count_space(n, entry)
    }

    /// Counts `n` bytes against the reserve only (a member's block).
    fn count_space(&self, n: u64, entry: &[u8]) -> Result<(), BundleError> {
        match &self.space {
            Some(g) => g.wrote(n).map_err(|s| self.no_space(entry, s)),
            None => Ok(()),
        }
    }

    /// Bytes that may still be written: under the configured limit and above the reserve.
    fn allowance(&self) -> u64 {
        let cap = self
            .opts
            .max_total_bytes
            .saturating_sub(self.total.load(Ordering::Relaxed));
        self.space.as_ref().map_or(cap, |g| cap.min(g.remaining()))
    }

    fn refuse(&self, entry: &[u8], reason: Unsafe) -> BundleError {
        BundleError::Refused {
            bundle: self.bundle.clone(),
            entry: shown(entry),
            reason,
            archive_dir: self.archive_dir.clone(),
        }
    }

    fn werr(&self, entry: &[u8], source: impl Into<io::Error>) -> BundleError {
        BundleError::Write {
            bundle: self.bundle.clone(),
            entry: shown(entry),
            archive_dir: self.archive_dir.clone(),
            source: source.into(),
        }
    }

    fn conflict(&self, entry: &[u8], existing: &'static str) -> BundleError {
        BundleError::Conflict {
            bundle: self.bundle.clone(),
            entry: shown(entry),
            existing,
        }
    }

    fn step_err(&self, entry: &[u8], walked: &[OsString], e: Step) -> BundleError {
        let component = || {
            let v: Vec<&[u8]> = walked.iter().map(|c| c.as_bytes()).collect();
            shown(&v.join(&b'/'))
        };
        match e {
            Step::Symlink => self.refuse(
                entry,
                Unsafe::ThroughSymlink {
                    component: component(),
                },
            ),
            Step::NotDir => self.conflict(entry, "non-directory on its path"),
            Step::Missing => BundleError::Malformed {
                bundle: self.bundle.clone(),
                entry: shown(entry),
                detail: format!("{} does not exist", component()),
            },
            Step::Io(e) => self.werr(entry, e),
        }
    }

    fn cwd(&self) -> BorrowedFd<'_> {
        self.stack
            .last()
            .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd())
    }

    /// Makes `dirs` the current directory, reusing the descriptors it shares with the last one.
    fn enter(&mut self, dirs: &[OsString], entry: &[u8]) -> Result<(), BundleError> {
        let common = self
            .stack
            .iter()
            .zip(dirs)
            .take_while(|((have, _), want)| have == *want)
            .count();
        self.stack.truncate(common);
        for (i, c) in dirs.iter().enumerate().skip(common) {
            let fd = step(self.cwd(), c, true).map_err(|e| self.step_err(entry, &dirs[..=i], e))?;
            self.stack.push((c.clone(), fd));
        }
        Ok(())
    }

    /// Opens an existing directory path without touching the cache (hard-link targets).
    fn walk_existing(
        &self,
        dirs: &[OsString],
        entry: &[u8],
    ) -> Result<Option<OwnedFd>, BundleError> {
        let mut cur: Option<OwnedFd> = None;
        for (i, c) in dirs.iter().enumerate() {
            let parent = cur.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            let fd = step(parent, c, false).map_err(|e| self.step_err(entry, &dirs[..=i], e))?;
            cur = Some(fd);
        }
        Ok(cur)
    }

    /// Unlinks a non-directory at `name` in the current directory so it can be replaced.
    fn make_room(&self, name: &OsStr, entry: &[u8]) -> Result<(), BundleError> {
        match kind_at(self.cwd(), name) {
            Ok(SFlag::S_IFDIR) => Err(self.conflict(entry, "directory")),
            Ok(_) => unlinkat(self.cwd(), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| self.werr(entry, e)),
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.werr(entry, e)),
        }
    }

    /// Starts one member. A file stays open for [`Writer::data`] until [`Writer::end`].
    pub fn begin(&mut self, head: EntryHead) -> Result<(), BundleError> {
        self.end()?;
        let entry = head.raw_name.as_slice();
        if let Kind::Special(what) = head.kind {
            return Err(self.refuse(entry, Unsafe::Special(what)));
        }
        self.count_space(self.block(), entry)?;
        let path = match normalize(entry) {
            Err(reason) => return Err(self.refuse(entry, reason)),
            // `./` names the archive dir itself, which belongs to the agent.
            Ok(None) if head.kind == Kind::Dir => return Ok(()),
            Ok(None) => {
                return Err(BundleError::Malformed {
                    bundle: self.bundle.clone(),
                    entry: shown(entry),
                    detail: "a non-directory member names the archive dir itself".into(),
                })
            }
            Ok(Some(p)) => p,
        };
        match &head.kind {
            // Refused above, before the name was even looked at.
            Kind::Special(_) => {}
            Kind::Dir => {
                self.enter(path.components(), entry)?;
                self.report.dirs += 1;
                self.pending_dirs.push((path, head));
            }
            Kind::File => self.begin_file(path, head)?,
            Kind::Symlink { target } => self.symlink(&path, OsStr::from_bytes(target), &head)?,
            Kind::HardLink { target } => self.hard_link(&path, target, entry)?,
        }
        Ok(())
    }

    fn symlink(
        &mut self,
        path: &RelPath,
        target: &OsStr,
        head: &EntryHead,
    ) -> Result<(), BundleError> {
        let entry = head.raw_name.as_slice();
        self.enter(path.parent(), entry)?;
        let name = path.name();
        match symlinkat(target, self.cwd(), name) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                self.make_room(name, entry)?;
                symlinkat(target, self.cwd(), name).map_err(|e| self.werr(entry, e))?;
            }
            Err(e) => return Err(self.werr(entry, e)),
        }
        if let Some((uid, gid)) = self.wanted_owner(head) {
            let flag = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
            fchownat(self.cwd(), name, Some(uid), Some(gid), flag)
                .map_err(|e| self.werr(entry, e))?;
        }
        if let Some(m) = head.mtime {
            let flag = UtimensatFlags::NoFollowSymlink;
            utimensat(self.cwd(), name, &TimeSpec::UTIME_OMIT, &timespec(m), flag)
                .map_err(|e| self.werr(entry, e))?;
        }
        self.report.symlinks += 1;
        Ok(())
    }

    fn hard_link(
        &mut self,
        path: &RelPath,
        target: &[u8],
        entry: &[u8],
    ) -> Result<(), BundleError> {
        let tpath = match hard_link_target(path, target) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(()),
            Err(why) => return Err(self.refuse(entry, why)),
        };
        let tdir = self.walk_existing(tpath.parent(), entry)?;
        self.enter(path.parent(), entry)?;
        let name = path.name();
        let tfd = tdir.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
        // Flags 0: a symlink target is linked itself, never followed.
        let link = |cwd| linkat(tfd, tpath.name(), cwd, name, nix::fcntl::AtFlags::empty());
        match link(self.cwd()) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                self.make_room(name, entry)?;
                link(self.cwd()).map_err(|e| self.werr(entry, e))?;
            }
            Err(e) => return Err(self.werr(entry, e)),
        }
        self.report.files += 1;
        Ok(())
    }

    fn begin_file(&mut self, path: RelPath, head: EntryHead) -> Result<(), BundleError> {
        let entry = head.raw_name.as_slice();
        let special = head.mode.unwrap_or(0) & 0o7000;
        if self.opts.reject_setuid && special & 0o6000 != 0 {
            let mode = head.mode.unwrap_or(0);
            return Err(self.refuse(entry, Unsafe::Setuid { mode }));
        }
        self.enter(path.parent(), entry)?;
        let name = path.name();
        let perm = head.mode.map_or(0o666, |m| m & 0o777);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let create = |cwd| openat(cwd, name, flags, Mode::from_bits_truncate(perm));
        let fd = match create(self.cwd()) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => {
                self.make_room(name, entry)?;
                create(self.cwd()).map_err(|e| self.werr(entry, e))?
            }
            Err(e) => return Err(self.werr(entry, e)),
        };
        let mode_done = match (head.mode, self.umask) {
            (None, _) => true,
            (Some(_), Some(umask)) => special == 0 && perm & umask == 0,
            (Some(_), None) => false,
        };
        self.open = Some(OpenFile {
            file: File::from(fd),
            head,
            mode_done,
        });
        Ok(())
    }

    /// Appends to the open file, counting against the extraction limit before writing.
    pub fn data(&mut self, buf: &[u8]) -> Result<(), BundleError> {
        if self.open.is_none() {
            return Ok(());
        }
        if let Err(e) = self.count(buf.len() as u64, b"") {
            return Err(self.name_error(e));
        }
        let Some(of) = self.open.as_mut() else {
            return Ok(());
        };
        if let Err(e) = of.file.write_all(buf) {
            let entry = of.head.raw_name.clone();
            return Err(self.werr(&entry, e));
        }
        Ok(())
    }

    fn open_name(&self) -> Vec<u8> {
        self.open
            .as_ref()
            .map(|o| o.head.raw_name.clone())
            .unwrap_or_default()
    }

    /// Puts the open member's name into a counting error (cloned only on failure).
    fn name_error(&self, mut e: BundleError) -> BundleError {
        if let BundleError::TooLarge { entry, .. } | BundleError::NoSpace { entry, .. } = &mut e {
            *entry = shown(&self.open_name());
        }
        e
    }

    /// Appends the rest of `src` (a file of a directory bundle, `len` bytes by its `fstat`)
    /// to the open file, counting against the extraction limit: small files in one read and
    /// one write, large ones inside the kernel.
    pub fn data_from_file(&mut self, src: &mut File, len: u64) -> Result<(), BundleError> {
        const SMALL: u64 = 256 * 1024;
        let room = self.allowance();
        let Some(of) = self.open.as_mut() else {
            return Ok(());
        };
        let entry = of.head.raw_name.clone();
        let read_err = |source| BundleError::Read {
            bundle: self.bundle.clone(),
            entry: shown(&entry),
            source,
        };
        let copied = if len <= SMALL {
            fscopy::read_whole(src, len as usize, &mut self.buf).map_err(read_err)?;
            let n = self.buf.len() as u64;
            if n <= room {
                of.file
                    .write_all(&self.buf)
                    .map_err(|e| self.werr(&entry, e))?;
            }
            n
        } else {
            // One byte past the room is enough to tell that the file does not fit.
            fscopy::copy_range(src, &mut of.file, room.saturating_add(1))
                .map_err(|e| self.werr(&entry, e))?
        };
        // Siblings may have written meanwhile: the shared counts decide. A copy past the room
        // fails one of them (the room is the smaller of the two allowances).
        self.count(copied, &entry)?;
        if copied > room {
            return Err(self.too_large(&entry));
        }
        Ok(())
    }

    /// Finishes the open file, if any: owner, then mode (chown clears setuid), then mtime.
    pub fn end(&mut self) -> Result<(), BundleError> {
        let Some(of) = self.open.take() else {
            return Ok(());
        };
        let entry = of.head.raw_name.as_slice();
        let owner = self.wanted_owner(&of.head);
        if let Some((uid, gid)) = owner {
            fchown(&of.file, Some(uid), Some(gid)).map_err(|e| self.werr(entry, e))?;
        }
        if let Some(mode) = of.head.mode.filter(|_| !of.mode_done || owner.is_some()) {
            fchmod(&of.file, Mode::from_bits_truncate(mode & 0o7777))
                .map_err(|e| self.werr(entry, e))?;
        }
        if let Some(m) = of.head.mtime {
            futimens(&of.file, &TimeSpec::UTIME_OMIT, &timespec(m))
                .map_err(|e| self.werr(entry, e))?;
        }
        self.report.files += 1;
        crate::failpoint::hit("unpack");
        Ok(())
    }

    /// Applies directory metadata, deepest first, and returns the counts.
    pub fn finish(mut self) -> Result<UnpackReport, BundleError> {
        self.end()?;
        self.stack.clear();
        let mut dirs = std::mem::take(&mut self.pending_dirs);
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().len()));
        for (path, head) in &dirs {
            let entry = head.raw_name.as_slice();
            let Some(fd) = self.walk_existing(path.components(), entry)? else {
                continue;
            };
            if let Some((uid, gid)) = self.wanted_owner(head) {
                fchown(&fd, Some(uid), Some(gid)).map_err(|e| self.werr(entry, e))?;
            }
            if let Some(mode) = head.mode {
                fchmod(&fd, Mode::from_bits_truncate(mode & 0o7777))
                    .map_err(|e| self.werr(entry, e))?;
            }
            if let Some(m) = head.mtime {
                futimens(&fd, &TimeSpec::UTIME_OMIT, &timespec(m))
                    .map_err(|e| self.werr(entry, e))?;
            }
        }
        Ok(self.report)
    }

    /// This writer and `n - 1` siblings of it.
    pub fn with_siblings(self, n: usize) -> Result<Vec<Writer>, BundleError> {
        let mut all = Vec::with_capacity(n.max(1));
        for _ in 1..n {
            all.push(self.sibling()?);
        }
        all.insert(0, self);
        Ok(all)
    }

    /// The writers back from their joined threads, or the first writer's error: a refusal
    /// by a writer is the root cause even if the producer failed afterwards.
    pub fn joined(
        results: Vec<std::thread::Result<Result<Writer, BundleError>>>,
        bundle: &Path,
    ) -> Result<Vec<Writer>, BundleError> {
        let mut done = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(Ok(w)) => done.push(w),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(BundleError::Unsupported {
                        bundle: bundle.to_path_buf(),
                        what: "internal error: a writer thread panicked".into(),
                    })
                }
            }
        }
        Ok(done)
    }

    /// Finishes sibling writers once all of them wrote their last member; the reports summed.
    pub fn finish_all(writers: Vec<Writer>) -> Result<UnpackReport, BundleError> {
        let mut total = UnpackReport::default();
        for w in writers {
            let r = w.finish()?;
            total.files += r.files;
            total.dirs += r.dirs;
            total.symlinks += r.symlinks;
            total.bytes += r.bytes;
        }
        Ok(total)
    }

    /// The owner to set, when ownership is restored: names that resolve win over numbers.
    fn wanted_owner(&mut self, head: &EntryHead) -> Option<(Uid, Gid)> {
        if !self.opts.restore_ownership {
            return None;
        }
        let o: &Owner = head.owner.as_ref()?;
        let by_name = |n: &String| User::from_name(n).ok().flatten().map(|u| u.uid);
        let uid = o
            .uname
            .as_ref()
            .and_then(|n| *self.users.entry(n.clone()).or_insert_with(|| by_name(n)))
            .unwrap_or(Uid::from_raw(o.uid));
        let by_group = |n: &String| Group::from_name(n).ok().flatten().map(|g| g.gid);
        let gid = o
            .gname
            .as_ref()
            .and_then(|n| *self.groups.entry(n.clone()).or_insert_with(|| by_group(n)))
            .unwrap_or(Gid::from_raw(o.gid));
        Some((uid, gid))
    }
}

impl super::pipeline::Sink for Writer {
    fn begin(&mut self, head: EntryHead) -> Result<(), BundleError> {
        Writer::begin(self, head)
    }
    fn data(&mut self, buf: &[u8]) -> Result<(), BundleError> {
        Writer::data(self, buf)
    }
    fn end(&mut self) -> Result<(), BundleError> {
        Writer::end(self)
    }
    fn data_from_file(&mut self, src: &mut File, len: u64) -> Result<(), BundleError> {
        Writer::data_from_file(self, src, len)
    }
}
