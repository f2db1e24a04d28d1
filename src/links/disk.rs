//! Adapter: the [`super::resolve`] callback for a revision on disk, and opening a file the
//! walk found without following a link on the way.
//!
//! Invariants: [`Revision::node`] uses `lstat`/`readlink` only, so answering never opens,
//! reads or follows anything; [`Revision::open_file`] walks from the root with
//! `O_NOFOLLOW` at every component, so a link swapped in after the walk makes it fail
//! rather than read from elsewhere.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::{resolve, Node, Rel, Resolved};

/// A revision rooted at a directory on disk.
#[derive(Debug, Clone)]
pub struct Revision {
    root: PathBuf,
}

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

impl Revision {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel`.
    pub fn join(&self, rel: &[OsString]) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(rel);
        p
    }

    /// What stands at `rel`, not following a symlink there.
    pub fn node(&self, rel: &[OsString]) -> io::Result<Node> {
        let p = self.join(rel);
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if gone(&e) => return Ok(Node::Missing),
            Err(e) => return Err(e),
        };
        let ft = m.file_type();
        Ok(if ft.is_symlink() {
            Node::Symlink(fs::read_link(&p)?.into_os_string().as_bytes().to_vec())
        } else if ft.is_dir() {
            Node::Dir
        } else if ft.is_file() {
            Node::File
        } else {
            Node::Special
        })
    }

    /// Walks `path` (relative to the root) as [`resolve`] does.
    pub fn resolve(&self, path: &[u8], follow_last: bool) -> io::Result<Resolved> {
        resolve(&[], path, follow_last, &mut |rel| self.node(rel))
    }

    /// Opens the directory at `real` (a path [`Revision::resolve`] found, no link among its
    /// components) without following a link at any component: a link swapped in since the
    /// walk makes this fail (`ELOOP`/`ENOTDIR`) instead of leading elsewhere.
    pub fn open_dir(&self, real: &[OsString]) -> io::Result<OwnedFd> {
        let mut cur: OwnedFd = openat(nix::fcntl::AT_FDCWD, &self.root, DIR_FLAGS, Mode::empty())?;
        for d in real {
            cur = openat(&cur, d.as_os_str(), DIR_FLAGS, Mode::empty())?;
        }
        Ok(cur)
    }

    /// Opens the regular file at `real` (a path [`Revision::resolve`] found, no link among
    /// its components) for reading. A link at any component is refused (`ELOOP`), never
    /// opened through; so is anything but a regular file.
    pub fn open_file(&self, real: &[OsString]) -> io::Result<File> {
        let Some((name, dirs)) = real.split_last() else {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        };
        let dir = self.open_dir(dirs)?;
        let file = open_no_follow(&dir, name)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                crate::names::os(OsStr::new(name))
            )));
        }
        Ok(file)
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens `name` in `dir` for reading without following a symlink there (`ELOOP` if it is
/// one); `O_NONBLOCK` so a FIFO put there meanwhile cannot hang the open.
pub fn open_no_follow(dir: &OwnedFd, name: &OsStr) -> io::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    Ok(File::from(openat(dir, name, flags, Mode::empty())?))
}

/// `rel` as a relative path.
pub fn rel_path(rel: &Rel) -> PathBuf {
    rel.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_and_opens_without_leaving() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::write(&outside, "canary").unwrap();
        let root = t.path().join("rev");
        fs::create_dir_all(root.join("inner")).unwrap();
        fs::write(root.join("inner/a.txt"), "inside").unwrap();
        symlink("inner", root.join("conf")).unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink("../outside", root.join("up")).unwrap();
        let rev = Revision::new(&root);

        let Resolved::Inside { real, node } = rev.resolve(b"conf/a.txt", true).unwrap() else {
            panic!("inside expected");
        };
        assert_eq!(node, Node::File);
        assert_eq!(rel_path(&real), Path::new("inner/a.txt"));
        let mut s = String::new();
        rev.open_file(&real)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "inside");

        for name in [&b"out"[..], b"up"] {
            assert!(matches!(
                rev.resolve(name, true).unwrap(),
                Resolved::Outside { via: Some(_) }
            ));
            // Opening the link itself is refused, never followed.
            let e = rev
                .open_file(&[OsStr::from_bytes(name).to_os_string()])
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        }
        let e = rev.open_file(&[OsString::from("conf"), OsString::from("a.txt")]);
        assert!(e.is_err(), "a link on the way is not followed");
    }
}
