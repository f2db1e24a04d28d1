//! Directory-bundle producer: walks a source tree depth-first without following symlinks and
//! describes it to the writer, so directory bundles get the same safety checks and limits as
//! archives. Modes, symlinks (as links) and times are kept; ownership is not (the official
//! agent's `cp_r` does not keep it either). Hard-linked files are copied as separate files.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::entry::{EntryHead, Kind};
use super::error::BundleError;
use super::pipeline::{Msg, Stop, Tx};

fn kind_of(md: &Metadata, path: &Path) -> io::Result<Kind> {
    let ft = md.file_type();
    Ok(if ft.is_symlink() {
        Kind::Symlink {
            target: fs::read_link(path)?.as_os_str().as_bytes().to_vec(),
        }
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_fifo() {
        Kind::Special("fifo")
    } else if ft.is_socket() {
        Kind::Special("socket")
    } else if ft.is_char_device() {
        Kind::Special("character device")
    } else {
        Kind::Special("block device")
    })
}

fn send_file(path: &Path, rel: &str, bundle: &Path, len: u64, tx: &Tx) -> Result<(), Stop> {
    let read_err = |e| {
        Stop::Failed(BundleError::Read {
            bundle: bundle.to_path_buf(),
            entry: rel.to_string(),
            source: e,
        })
    };
    let f: File = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a fifo swapped in since the walk looked must not hang the unpack.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(read_err)?;
    tx.send(Msg::File(f, len))?;
    tx.send(Msg::End)
}

pub fn produce(src: &Path, tx: &Tx) -> Result<(), Stop> {
    let read_err = |p: &Path, e| {
        Stop::Failed(BundleError::Read {
            bundle: src.to_path_buf(),
            entry: p.to_string_lossy().into_owned(),
            source: e,
        })
    };
    // Depth-first with one open directory handle per level.
    let mut stack: Vec<(PathBuf, fs::ReadDir)> = Vec::new();
    let root = fs::read_dir(src).map_err(|e| read_err(Path::new(""), e))?;
    stack.push((PathBuf::new(), root));
    while let Some((rel_dir, iter)) = stack.last_mut() {
        let Some(next) = iter.next() else {
            stack.pop();
            continue;
        };
        let de = next.map_err(|e| read_err(rel_dir, e))?;
        let rel = rel_dir.join(de.file_name());
        let abs = src.join(&rel);
        let md = fs::symlink_metadata(&abs).map_err(|e| read_err(&rel, e))?;
        let kind = kind_of(&md, &abs).map_err(|e| read_err(&rel, e))?;
        let raw_name = rel.to_string_lossy().into_owned();
        let is = (kind == Kind::File, kind == Kind::Dir);
        let mtime = (md.mtime(), u32::try_from(md.mtime_nsec()).unwrap_or(0));
        tx.send(Msg::Begin(EntryHead {
            raw_name: raw_name.clone(),
            kind,
            mode: Some(md.mode() & 0o7777),
            mtime: Some(mtime),
            owner: None,
        }))?;
        match is {
            (true, _) => send_file(&abs, &raw_name, src, md.len(), tx)?,
            (_, true) => {
                let iter = fs::read_dir(&abs).map_err(|e| read_err(&rel, e))?;
                stack.push((rel, iter));
            }
            _ => {}
        }
    }
    Ok(())
}
