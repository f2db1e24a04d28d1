//! Adapter: the [`Spill`] files the install keeps large things in instead of memory, unlinked
//! temporary files in the agent's instructions directory (the plan of a revision with a million
//! files, core's `plan::tape`; the index of a large cleanup journal, core's `plan::journal`),
//! and [`JournalFile`], the cleanup journal read where it lies
//! (docs/adr/0012-install-plan-on-disk.md).
//!
//! Invariants: the file has no name while it is used (`O_TMPFILE`, or created and unlinked at
//! once where the file system lacks it), so a crash leaves nothing behind; it is only readable
//! by the agent's user; it lives on the agent's own disk, never in a tmpfs that would count
//! against memory.

use crate::plan::{ReadAt, Spill, SpillSource};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct TempSpill {
    file: File,
    len: u64,
}

impl Spill for TempSpill {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)?;
        self.len = self.len.max(offset + bytes.len() as u64);
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let end = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = buf.len().min(end);
        self.file.read_at(&mut buf[..n], offset)
    }
}

/// A cleanup journal read where it lies (core's `plan::journal` never holds it whole).
#[derive(Debug)]
pub(crate) struct JournalFile {
    file: File,
    size: u64,
}

impl JournalFile {
    /// Opens the journal at `path`; `None` when there is none.
    pub(crate) fn open(path: &Path) -> io::Result<Option<Self>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata()?.len();
        Ok(Some(Self { file, size }))
    }
}

impl ReadAt for JournalFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
}

/// Opens spills in `dir`.
#[derive(Debug)]
pub(crate) struct SpillDir(pub PathBuf);

impl SpillSource for SpillDir {
    fn open(&self) -> io::Result<Box<dyn Spill>> {
        let file = open_unnamed(&self.0)?;
        crate::failpoint::hit("plan-spill");
        Ok(Box::new(TempSpill { file, len: 0 }))
    }
}

fn open_unnamed(dir: &Path) -> io::Result<File> {
    let unnamed = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match unnamed {
        Ok(f) => Ok(f),
        // Kernels or file systems without O_TMPFILE: a name for an instant.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            let path = dir.join(format!(
                ".install-plan.{}.{:x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            fs::remove_file(&path)?;
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spill_reads_back_what_was_appended_and_leaves_no_name() {
        let t = tempfile::tempdir().unwrap();
        let mut s = SpillDir(t.path().to_path_buf()).open().unwrap();
        s.append(b"hello ").unwrap();
        s.append(b"world").unwrap();
        let mut buf = [0u8; 64];
        let n = s.read_at(&mut buf, 3).unwrap();
        assert_eq!(&buf[..n], b"lo world");
        assert_eq!(s.read_at(&mut buf, 11).unwrap(), 0);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "no name left");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let err = SpillDir(t.path().join("gone")).open().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
