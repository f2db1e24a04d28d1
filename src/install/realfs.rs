//! [`FsView`] over the real filesystem: `lstat` for destinations (plus a followed `stat` to
//! tell a symlink to a directory), `lstat` and `readlink` for sources, never following one.

use crate::plan::{DestKind, FsView, Node};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) struct RealFs;

fn absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

impl FsView for RealFs {
    fn dest_kind(&self, path: &Path) -> io::Result<DestKind> {
        let m = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if absent(&e) => return Ok(DestKind::Absent),
            Err(e) => return Err(e),
        };
        let ft = m.file_type();
        Ok(if ft.is_symlink() {
            match fs::metadata(path) {
                Ok(t) if t.is_dir() => DestKind::SymlinkToDir,
                _ => DestKind::Symlink,
            }
        } else if ft.is_dir() {
            DestKind::Dir
        } else if ft.is_file() {
            DestKind::File
        } else {
            DestKind::Special
        })
    }

    fn source_node(&self, path: &Path) -> io::Result<Node> {
        let m = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if absent(&e) => return Ok(Node::Missing),
            Err(e) => return Err(e),
        };
        let ft = m.file_type();
        Ok(if ft.is_symlink() {
            let target = fs::read_link(path)?;
            Node::Symlink(target.into_os_string().into_vec())
        } else if ft.is_dir() {
            Node::Dir
        } else if ft.is_file() {
            Node::File
        } else {
            Node::Special
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(path)? {
            out.push(entry?.file_name());
        }
        Ok(out)
    }

    fn list_dir_typed(&self, path: &Path) -> io::Result<Vec<(OsString, Option<Node>)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            // The entry's own type (never a link's target); a file system that does not
            // give it is asked by `file_type`, which then looks with lstat.
            let hint = match entry.file_type() {
                Ok(t) if t.is_dir() => Some(Node::Dir),
                Ok(t) if t.is_file() => Some(Node::File),
                _ => None,
            };
            out.push((entry.file_name(), hint));
        }
        Ok(out)
    }

    fn dir_id(&self, path: &Path) -> io::Result<(u64, u64)> {
        let m = fs::metadata(path)?;
        Ok((m.dev(), m.ino()))
    }
}
