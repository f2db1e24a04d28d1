//! TEST AID, hidden from the docs: in-memory spills and the plain reading of a cleanup journal,
//! shared by the crate's tests and the `journal` fuzz target (fuzz/fuzz_targets/journal.rs),
//! which cannot see `#[cfg(test)]` code.
//!
//! Invariant: nothing here is used by the agent itself.

use super::journal::Removal;
use super::tape::{Spill, SpillSource};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A spill in memory; clones share the bytes, so a test can look at (or damage) what reached
/// it. Reads return at most 1,000 bytes on purpose: readers must cope with short reads.
#[derive(Debug, Default, Clone)]
pub struct MemSpill(pub Arc<Mutex<Vec<u8>>>);

impl MemSpill {
    pub fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands out itself: every spill it opens shares its bytes.
impl SpillSource for MemSpill {
    fn open(&self) -> io::Result<Box<dyn Spill>> {
        Ok(Box::new(self.clone()))
    }
}

impl Spill for MemSpill {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes().extend_from_slice(bytes);
        Ok(())
    }

    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut v = self.bytes();
        let at = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = at + bytes.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[at..end].copy_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let v = self.bytes();
        let from = usize::try_from(offset).map_or(v.len(), |o| o.min(v.len()));
        let n = buf.len().min(v.len() - from).min(1000);
        buf[..n].copy_from_slice(&v[from..from + n]);
        Ok(n)
    }
}

/// Opens a new [`MemSpill`] each time and keeps them, so a test can count and inspect them.
#[derive(Debug, Default)]
pub struct MemSpills(Mutex<Vec<MemSpill>>);

impl MemSpills {
    fn list(&self) -> MutexGuard<'_, Vec<MemSpill>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many spills were opened.
    pub fn opened(&self) -> usize {
        self.list().len()
    }

    /// The `i`th spill opened.
    pub fn get(&self, i: usize) -> Option<MemSpill> {
        self.list().get(i).cloned()
    }
}

impl SpillSource for MemSpills {
    fn open(&self) -> io::Result<Box<dyn Spill>> {
        let s = MemSpill::default();
        self.list().push(s.clone());
        Ok(Box::new(s))
    }
}

/// A journal's meaning computed the plain way, apart from the reader's own code: split at
/// `\n`, drop what follows the last one (torn or empty), keep absolute lines, `semanage\0`
/// lines as contexts. Returns the removals (last line first) and the paths in order.
pub fn journal_model(text: &[u8]) -> (Vec<Removal>, Vec<PathBuf>) {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    lines.pop();
    let (mut removals, mut paths) = (Vec::new(), Vec::new());
    for l in lines {
        let (context, p) = match l.strip_prefix(b"semanage\0") {
            Some(rest) => (true, rest),
            None => (false, l),
        };
        if p.first() != Some(&b'/') {
            continue;
        }
        let p = Path::new(OsStr::from_bytes(p)).to_path_buf();
        if context {
            removals.push(Removal::SeContext(p));
        } else {
            paths.push(p.clone());
            removals.push(Removal::Path(p));
        }
    }
    removals.reverse();
    (removals, paths)
}
