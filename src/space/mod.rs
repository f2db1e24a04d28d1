//! Free space on the file systems the agent writes to: the deployment root (bundles unpack
//! there) and every install destination. The decisions (the reserve, what fits, what a bundle
//! needs) are pure, in [`rule`]; this adapter measures with `statvfs` and names the mount.
//!
//! Invariant: a [`Guard`] never lets its writers take the file system below the reserve by
//! more than one [`CHECK_EVERY`] stretch, whoever else writes to it meanwhile; its own bytes
//! are counted exactly against the room measured when it was made.

mod rule;

pub use rule::{
    archive_lower_bound, check, human, on_disk, parse_reserve, parse_size, room, ArchiveKind,
    FsSpace, Reserve, ReserveSyntax, Shortfall,
};

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The configuration key of the reserve, named in every refusal.
pub const RESERVE_KEY: &str = "free_space_reserve";

/// Bytes written between two `statvfs` calls of a [`Guard`]: often enough that other writers
/// to the same file system cannot take much of the reserve, rarely enough to cost nothing.
pub const CHECK_EVERY: u64 = 4 * 1024 * 1024;

/// Not enough room above the reserve: the numbers, the path and its mount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not enough disk space on {path} (file system mounted at {mount}): needed at least {}, free {}, \
     reserve {} that must stay free ({RESERVE_KEY}: {rule})",
    human(*needed), human(*free), human(*reserve),
    path = path.display(), mount = mount.display()
)]
pub struct NoSpace {
    pub needed: u64,
    pub free: u64,
    pub reserve: u64,
    pub path: PathBuf,
    pub mount: PathBuf,
    pub rule: Reserve,
}

impl NoSpace {
    pub fn new(short: Shortfall, path: &Path, rule: Reserve) -> Self {
        Self {
            needed: short.needed,
            free: short.free,
            reserve: short.reserve,
            path: path.to_path_buf(),
            mount: mount_point(path),
            rule,
        }
    }
}

/// The nearest ancestor of `path` (itself included) that exists; the working directory for
/// a relative path none of whose ancestors exists.
pub fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors()
        .find(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_ok())
        .unwrap_or(if path.is_absolute() {
            Path::new("/")
        } else {
            Path::new(".")
        })
}

/// Size and free bytes of the file system holding `path` (or the nearest existing ancestor,
/// for a directory not created yet).
pub fn probe(path: &Path) -> io::Result<FsSpace> {
    let st = nix::sys::statvfs::statvfs(existing_ancestor(path))?;
    let unit = st.fragment_size().max(1) as u64;
    Ok(FsSpace {
        total: (st.blocks() as u64).saturating_mul(unit),
        free: (st.blocks_available() as u64).saturating_mul(unit),
        block: (st.block_size() as u64).max(1),
    })
}

/// The device holding `path` (or its nearest existing ancestor): file systems are told
/// apart by it.
pub fn device_of(path: &Path) -> io::Result<u64> {
    std::fs::metadata(existing_ancestor(path)).map(|m| m.dev())
}

/// Where the file system holding `path` is mounted: the highest ancestor on the same device.
/// For messages only; falls back to the path itself.
pub fn mount_point(path: &Path) -> PathBuf {
    let start = existing_ancestor(path);
    let Ok(start) = std::fs::canonicalize(start) else {
        return path.to_path_buf();
    };
    let Ok(dev) = std::fs::metadata(&start).map(|m| m.dev()) else {
        return start;
    };
    let mut mount = start.clone();
    for a in start.ancestors().skip(1) {
        match std::fs::metadata(a) {
            Ok(m) if m.dev() == dev => mount = a.to_path_buf(),
            _ => break,
        }
    }
    mount
}

/// Checks one file system before and while bytes are written to it.
#[derive(Debug)]
pub struct Guard {
    path: PathBuf,
    rule: Reserve,
    /// What was free when the guard was made, and the room above the reserve then.
    start: FsSpace,
    start_room: u64,
    written: AtomicU64,
    unchecked: AtomicU64,
}

impl Guard {
    /// Measures the file system of `path` now.
    pub fn new(path: &Path, rule: Reserve) -> io::Result<Self> {
        let start = probe(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            rule,
            start,
            start_room: room(start, &rule),
            written: AtomicU64::new(0),
            unchecked: AtomicU64::new(0),
        })
    }

    /// Bytes that may be written from the start before the reserve is reached.
    pub fn room_at_start(&self) -> u64 {
        self.start_room
    }

    /// Bytes that may still be written.
    pub fn remaining(&self) -> u64 {
        self.start_room
            .saturating_sub(self.written.load(Ordering::Relaxed))
    }

    /// The file system's allocation unit.
    pub fn block(&self) -> u64 {
        self.start.block
    }

    /// Refuses, before anything is written, when `needed` bytes will not fit.
    pub fn ahead(&self, needed: u64) -> Result<(), NoSpace> {
        check(needed, self.start, &self.rule).map_err(|s| NoSpace::new(s, &self.path, self.rule))
    }

    /// Counts `n` bytes about to be written; refuses when they would reach into the reserve,
    /// counting this guard's bytes exactly and, every [`CHECK_EVERY`] bytes, what the file
    /// system really has left (other writers may have taken some).
    pub fn wrote(&self, n: u64) -> Result<(), NoSpace> {
        let total = self
            .written
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n);
        if total > self.start_room {
            return Err(self.refusal(total, self.start));
        }
        let pending = self.unchecked.fetch_add(n, Ordering::Relaxed) + n;
        if pending < CHECK_EVERY {
            return Ok(());
        }
        self.unchecked.store(0, Ordering::Relaxed);
        let now = probe(&self.path).unwrap_or(self.start);
        // The next stretch is written before the next look: it must fit too.
        check(CHECK_EVERY, now, &self.rule).map_err(|s| NoSpace::new(s, &self.path, self.rule))
    }

    fn refusal(&self, needed: u64, at: FsSpace) -> NoSpace {
        NoSpace {
            needed,
            free: at.free,
            reserve: self.rule.bytes_for(at.total),
            path: self.path.clone(),
            mount: mount_point(&self.path),
            rule: self.rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_of_root_and_a_missing_path() {
        assert_eq!(mount_point(Path::new("/")), Path::new("/"));
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("not/yet");
        assert_eq!(existing_ancestor(&missing), t.path());
        assert!(probe(&missing).unwrap().total > 0);
        let m = mount_point(&missing);
        assert!(t.path().canonicalize().unwrap().starts_with(&m), "{m:?}");
    }

    #[test]
    fn guard_counts_its_own_bytes_against_the_room() {
        let t = tempfile::tempdir().unwrap();
        let rule = Reserve {
            basis_points: 0,
            bytes: 0,
        };
        let g = Guard::new(t.path(), rule).unwrap();
        let room = g.room_at_start();
        assert!(g.ahead(room).is_ok());
        let e = g.ahead(room + 1).unwrap_err();
        assert_eq!(e.needed, room + 1);
        assert!(e.to_string().contains(RESERVE_KEY), "{e}");
        assert!(g.wrote(1).is_ok());
        let e = g.wrote(room).unwrap_err();
        assert_eq!(e.needed, room + 1);
    }
}
