//! Directory bundles: walks a source tree depth-first without following symlinks and hands
//! each entry to a [`Writer`], so directory bundles get the same safety checks and limits as
//! archives. Modes, symlinks (as links) and times are kept; ownership is not (the official
//! agent's `cp_r` does not keep it either). Hard-linked files are copied as separate files.
//!
//! There is nothing to decode, so the work is creating files: the walk (on the calling
//! thread) hands batches of one directory's entries to up to [`fscopy::copy_threads`]
//! writers, since creating a file holds its directory's lock and writers in different
//! directories do not wait for each other. A walk never yields an entry below a symlink or
//! the same name twice, so the order between batches does not matter. Invariants: memory
//! stays at a few batches whatever the tree's size; directory metadata is applied only after
//! every writer wrote its last file; the first error stops the copy and is the one returned.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::entry::{shown, EntryHead, Kind};
use super::error::BundleError;
use super::pipeline::Sink;
use super::writer::Writer;
use super::UnpackReport;
use crate::fscopy::{self, LastDir};

/// Entries in one batch at most.
const BATCH: usize = 256;
/// Batches queued for the writers.
const DEPTH: usize = 8;

/// One entry: its header and, for a regular file, where to read it and its size.
struct Item {
    head: EntryHead,
    file: Option<(PathBuf, u64)>,
}

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

fn read_err(bundle: &Path, entry: &[u8], source: io::Error) -> BundleError {
    BundleError::Read {
        bundle: bundle.to_path_buf(),
        entry: shown(entry),
        source,
    }
}

/// Applies one batch with `w`. The batch's entries share a directory, which is opened once
/// (by the path the walk took, as the whole path would be) and the files in it by name.
fn apply(w: &mut impl Sink, bundle: &Path, batch: Vec<Item>) -> Result<(), BundleError> {
    let mut dir = LastDir::default();
    for item in batch {
        let name = item.head.raw_name.clone();
        w.begin(item.head)?;
        if let Some((_, len)) = item.file.as_ref().filter(|_| !w.wants_data()) {
            w.skipped(*len)?;
        } else if let Some((path, len)) = item.file {
            let mut f = open_source(&mut dir, &path).map_err(|e| read_err(bundle, &name, e))?;
            w.data_from_file(&mut f, len)?;
        }
        w.end()?;
    }
    Ok(())
}

/// Opens the file at `path` without following a link in its last component, through `dir`
/// (its parent, opened by the path the walk took, as the whole path would be).
fn open_source(dir: &mut LastDir<OwnedFd>, path: &Path) -> io::Result<File> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let d = dir.get_or_open(parent, fscopy::open_dir_path)?;
    // O_NONBLOCK: a fifo swapped in since the walk looked must not hang the copy.
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    Ok(File::from(openat(d, name, flags, Mode::empty())?))
}

/// Walks `src`, giving `sink` batches of entries that share a directory.
fn walk(
    src: &Path,
    sink: &mut dyn FnMut(Vec<Item>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    let rerr = |p: &Path, e| read_err(src, p.as_os_str().as_bytes(), e);
    // Depth-first with one open directory handle per level.
    let mut stack: Vec<(PathBuf, fs::ReadDir)> = Vec::new();
    let root = fs::read_dir(src).map_err(|e| rerr(Path::new(""), e))?;
    stack.push((PathBuf::new(), root));
    let mut batch: Vec<Item> = Vec::new();
    while let Some((rel_dir, iter)) = stack.last_mut() {
        let Some(next) = iter.next() else {
            stack.pop();
            continue;
        };
        let de = next.map_err(|e| rerr(rel_dir, e))?;
        let rel = rel_dir.join(de.file_name());
        let abs = src.join(&rel);
        // Asked relative to the open directory: no walk of the whole path per entry.
        let md = de.metadata().map_err(|e| rerr(&rel, e))?;
        let kind = kind_of(&md, &abs).map_err(|e| rerr(&rel, e))?;
        let is_dir = kind == Kind::Dir;
        let file = (kind == Kind::File).then(|| (abs.clone(), md.len()));
        let mtime = (md.mtime(), u32::try_from(md.mtime_nsec()).unwrap_or(0));
        let same_dir = batch.last().is_none_or(|i| {
            Path::new(OsStr::from_bytes(&i.head.raw_name)).parent() == rel.parent()
        });
        if !same_dir || batch.len() >= BATCH {
            sink(std::mem::take(&mut batch))?;
        }
        batch.push(Item {
            head: EntryHead {
                raw_name: rel.as_os_str().as_bytes().to_vec(),
                kind,
                mode: Some(md.mode() & 0o7777),
                mtime: Some(mtime),
                owner: None,
            },
            file,
        });
        if is_dir {
            let iter = fs::read_dir(&abs).map_err(|e| rerr(&rel, e))?;
            stack.push((rel, iter));
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(())
}

/// What copying the tree at `src` needs: its files' sizes plus a `block` per entry.
pub fn need(src: &Path, block: u64) -> Result<u64, BundleError> {
    let mut sum: u64 = 0;
    walk(src, &mut |batch| {
        for item in batch {
            let len = item.file.map_or(0, |(_, len)| len);
            sum = sum.saturating_add(len).saturating_add(block);
        }
        Ok(())
    })?;
    Ok(sum)
}

/// Gives every entry of the tree at `src` to `sink` on this thread (a listing).
pub(super) fn list(src: &Path, sink: &mut impl Sink) -> Result<(), BundleError> {
    walk(src, &mut |batch| apply(sink, src, batch))?;
    sink.end()
}

/// Copies the tree at `src` with `writer` (and siblings of it on other threads), then
/// applies every writer's directory metadata; returns the summed report.
pub fn copy(src: &Path, mut writer: Writer) -> Result<UnpackReport, BundleError> {
    let threads = fscopy::copy_threads();
    if threads < 2 {
        walk(src, &mut |batch| apply(&mut writer, src, batch))?;
        return writer.finish();
    }
    let writers = writer.with_siblings(threads)?;
    let (tx, rx) = sync_channel::<Vec<Item>>(DEPTH);
    let rx = Mutex::new(rx);
    let failed = AtomicBool::new(false);
    let (walked, results) = std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .into_iter()
            .map(|w| {
                let (rx, failed) = (&rx, &failed);
                s.spawn(move || work(w, src, rx, failed))
            })
            .collect();
        let walked = walk(src, &mut |batch| {
            if failed.load(Ordering::Relaxed) {
                return Err(stopped(src));
            }
            tx.send(batch).map_err(|_| stopped(src))
        });
        drop(tx);
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (walked, results)
    });
    let done = Writer::joined(results, src)?;
    walked?;
    Writer::finish_all(done)
}

fn work(
    mut w: Writer,
    src: &Path,
    rx: &Mutex<Receiver<Vec<Item>>>,
    failed: &AtomicBool,
) -> Result<Writer, BundleError> {
    loop {
        let batch = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return Err(internal(src, "a copying thread panicked")),
        };
        let Ok(batch) = batch else {
            return Ok(w);
        };
        if let Err(e) = apply(&mut w, src, batch) {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
    }
}

fn internal(src: &Path, what: &str) -> BundleError {
    BundleError::Unsupported {
        bundle: src.to_path_buf(),
        what: format!("internal error: {what}"),
    }
}

/// The walk stopped because a writer failed; that writer's error is the one reported.
fn stopped(src: &Path) -> BundleError {
    internal(src, "the copy stopped")
}
