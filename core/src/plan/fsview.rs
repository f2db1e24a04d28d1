//! The planner's read-only view of the filesystem, and lexical path normalisation.
//!
//! Invariant: implementations answer from `lstat`-style facts: a destination symlink is
//! reported as a symlink (with whether it points at a directory), a source symlink with its
//! text. Sources are only asked about below the archive dir through real directories (the
//! planner follows the revision's links itself, with [`crate::links::resolve`], and never
//! out of the revision), so answering never looks outside it.

use std::ffi::OsString;
use std::io;

pub use crate::links::Node;
use std::path::{Component, Path, PathBuf};

/// What stands at a destination path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    Absent,
    Dir,
    /// A symlink whose target is a directory.
    SymlinkToDir,
    File,
    /// A symlink to a non-directory, or a dangling one.
    Symlink,
    /// A FIFO, socket or device node.
    Special,
}

/// Read-only filesystem facts the planner needs. Errors are the operating system's; the
/// planner adds the path ([`crate::plan::PlanError::Inspect`]).
pub trait FsView {
    fn dest_kind(&self, path: &Path) -> io::Result<DestKind>;
    /// What stands at a source path (below the archive dir, no symlink among the components
    /// between it and the archive dir), not following a symlink there.
    fn source_node(&self, path: &Path) -> io::Result<Node>;
    /// Entry names of a source directory, excluding `.`/`..`.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// [`FsView::list_dir`] of a source directory, with each entry's node where the listing
    /// tells it without a further look (a directory or a regular file, from the entry's
    /// type); `None`: ask [`FsView::source_node`].
    fn list_dir_typed(&self, path: &Path) -> io::Result<Vec<(OsString, Option<Node>)>> {
        Ok(self
            .list_dir(path)?
            .into_iter()
            .map(|n| (n, None))
            .collect())
    }
    /// A stable identity (device, inode) of a source directory, to detect symlink loops.
    fn dir_id(&self, path: &Path) -> io::Result<(u64, u64)>;
}

/// Makes `p` absolute against `base` and removes `.`, `..` and repeated or trailing
/// separators without looking at the disk (`File.expand_path` semantics).
pub fn normalize(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        let b = Path::new("/work");
        assert_eq!(normalize(b, Path::new("/a/b/")), Path::new("/a/b"));
        assert_eq!(normalize(b, Path::new("/a//./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(b, Path::new("rel/x")), Path::new("/work/rel/x"));
        assert_eq!(normalize(b, Path::new("/../..")), Path::new("/"));
    }
}
