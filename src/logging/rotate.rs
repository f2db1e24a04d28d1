//! A log file rotated by size: `name.log` is renamed to `name.log.1` (older ones shift up to
//! `name.log.<keep>`, the oldest is deleted) when the next write would pass the limit.
//!
//! Invariants: rotation renames, it never truncates, so a `tail -F` reader loses nothing;
//! one event is written with one `write` call under the lock, so lines of concurrent threads
//! never interleave; a failed rotation keeps writing to the current file rather than
//! dropping log lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug)]
struct State {
    file: File,
    size: u64,
}

/// The rotating file; cheap to clone (shared handle).
#[derive(Debug, Clone)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    state: Arc<Mutex<State>>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `path.<n>`
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    /// Opens (appending) `path`. `max_bytes` 0 never rotates; `keep` rotated files are kept.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            state: Arc::new(Mutex::new(State { file, size })),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotate(&self, state: &mut State) -> io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = numbered(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        state.file = open_append(&self.path)?;
        state.size = 0;
        Ok(())
    }

    /// Writes one whole record.
    pub fn write_record(&self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.max_bytes > 0 && state.size > 0 && state.size + buf.len() as u64 > self.max_bytes {
            if let Err(e) = self.rotate(&mut state) {
                // Say so in the log itself; the file we still hold keeps receiving lines.
                let note = format!("log rotation of {} failed: {e}\n", self.path.display());
                let _ = state.file.write_all(note.as_bytes());
            }
        }
        state.file.write_all(buf)?;
        state.size += buf.len() as u64;
        Ok(())
    }
}

/// The per-event writer handed to `tracing_subscriber::fmt`.
pub struct RecordWriter<'a>(&'a RotatingFile);

impl Write for RecordWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_record(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RecordWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        RecordWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a.log");
        let f = RotatingFile::open(&p, 20, 2).unwrap();
        for i in 0..5 {
            f.write_record(format!("line-{i}-123456789\n").as_bytes())
                .unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "line-4-123456789\n");
        assert_eq!(
            std::fs::read_to_string(numbered(&p, 1)).unwrap(),
            "line-3-123456789\n"
        );
        assert_eq!(
            std::fs::read_to_string(numbered(&p, 2)).unwrap(),
            "line-2-123456789\n"
        );
        assert!(!numbered(&p, 3).exists());
    }

    #[test]
    fn keep_zero_and_no_limit() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b.log");
        let f = RotatingFile::open(&p, 10, 0).unwrap();
        f.write_record(b"0123456789\n").unwrap();
        f.write_record(b"abc\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "abc\n");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        let q = t.path().join("c.log");
        let g = RotatingFile::open(&q, 0, 3).unwrap();
        for _ in 0..100 {
            g.write_record(b"xxxxxxxxxx\n").unwrap();
        }
        assert_eq!(std::fs::metadata(&q).unwrap().len(), 1100);
    }

    #[test]
    fn reopening_appends_and_counts_existing_size() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("d.log");
        std::fs::write(&p, "0123456789").unwrap();
        let f = RotatingFile::open(&p, 15, 1).unwrap();
        f.write_record(b"abcdefghij").unwrap();
        assert_eq!(
            std::fs::read_to_string(numbered(&p, 1)).unwrap(),
            "0123456789"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "abcdefghij");
    }
}
