//! The install plan's record of directories and copies, kept as one append-only byte stream
//! that moves into a [`Spill`] (the adapter's unlinked temporary file) once it outgrows a
//! small buffer. A revision of a million files then costs the planner the same memory as one
//! of ten thousand: the per-file bytes live on disk and are read back in order.
//!
//! Invariants: records are only appended, and readers see them in the order they were
//! appended; the logical stream is the spilled bytes followed by the buffered ones, so a
//! reader started while planning still sees everything appended so far. Nothing here decides
//! where the bytes go: without a spill source everything stays in memory (tests, small plans).
//!
//! Record layout (little-endian lengths): `BASE src_len src dest_len dest` sets the directory
//! pair the following copies use; `MKDIR|flag len dir`; `COPY|flag len name`, where `flag`
//! is [`REPLACE`]; `PERM entry len path`, a path that permissions entry `entry` covers.

use super::{PermEntry, PermissionStep, Step};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where a large plan's records are written and read back. The adapter backs it with a
/// temporary file on the agent's own disk; reads may come while appends continue.
pub trait Spill: std::fmt::Debug + Send + Sync {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Writes `bytes` at `offset`, past the end too (the gap reads as zeros).
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// Reads bytes at `offset` of what was appended; fewer than asked is not an error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

/// Makes a [`Spill`] when the planner's buffer fills.
pub trait SpillSource: std::fmt::Debug {
    fn open(&self) -> io::Result<Box<dyn Spill>>;
}

const BASE: u8 = 0;
const MKDIR: u8 = 1;
const COPY: u8 = 2;
const PERM: u8 = 3;
const REPLACE: u8 = 0x80;

/// Buffered bytes beyond which the buffer moves to the spill (and is written there in
/// pieces of this size from then on).
const SPILL_AT: usize = 128 * 1024;
/// How much a reader fetches from the spill at once.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Tape {
    spill: Option<Box<dyn Spill>>,
    /// Bytes already in the spill.
    spilled: u64,
    buf: Vec<u8>,
    /// The directory pair of the last BASE record.
    base: Option<(PathBuf, PathBuf)>,
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), TooLong> {
    let len = u32::try_from(b.len()).map_err(|_| TooLong)?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// A name or path longer than 4 GiB: no file system has one.
#[derive(Debug)]
pub(crate) struct TooLong;

impl From<TooLong> for io::Error {
    fn from(_: TooLong) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, "a path longer than 4 GiB")
    }
}

impl Tape {
    /// Once the buffer has outgrown memory, opens a spill from `source` (when there is one)
    /// and moves the buffer there; records go to it from then on.
    pub(crate) fn spill_if_due(&mut self, source: Option<&dyn SpillSource>) -> io::Result<()> {
        let Some(source) = source else {
            return Ok(());
        };
        if self.spill.is_some() || self.buf.len() < SPILL_AT {
            return Ok(());
        }
        self.spill = Some(source.open()?);
        self.flush_if_full(true)
    }

    fn flush_if_full(&mut self, force: bool) -> io::Result<()> {
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        if self.buf.is_empty() || (!force && self.buf.len() < SPILL_AT) {
            return Ok(());
        }
        spill.append(&self.buf)?;
        self.spilled += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn push_mkdir(&mut self, dir: &Path, replace: bool) -> io::Result<()> {
        self.buf.push(MKDIR | if replace { REPLACE } else { 0 });
        put_bytes(&mut self.buf, dir.as_os_str().as_encoded_bytes())?;
        self.flush_if_full(false)
    }

    pub(crate) fn push_copy(
        &mut self,
        source_dir: &Path,
        dest_dir: &Path,
        name: &OsStr,
        replace: bool,
    ) -> io::Result<()> {
        let same = self
            .base
            .as_ref()
            .is_some_and(|(s, d)| s == source_dir && d == dest_dir);
        if !same {
            self.buf.push(BASE);
            put_bytes(&mut self.buf, source_dir.as_os_str().as_encoded_bytes())?;
            put_bytes(&mut self.buf, dest_dir.as_os_str().as_encoded_bytes())?;
            self.base = Some((source_dir.to_path_buf(), dest_dir.to_path_buf()));
        }
        self.buf.push(COPY | if replace { REPLACE } else { 0 });
        put_bytes(&mut self.buf, name.as_encoded_bytes())?;
        self.flush_if_full(false)
    }

    pub(crate) fn push_perm(&mut self, entry: u32, path: &Path) -> io::Result<()> {
        self.buf.push(PERM);
        self.buf.extend_from_slice(&entry.to_le_bytes());
        put_bytes(&mut self.buf, path.as_os_str().as_encoded_bytes())?;
        self.flush_if_full(false)
    }

    /// The records appended so far, in order.
    pub(crate) fn records(&self) -> Records<'_> {
        Records {
            tape: self,
            at: 0,
            window: Vec::new(),
            pos: 0,
            base: (PathBuf::new(), PathBuf::new()),
            failed: false,
        }
    }

    /// The steps recorded so far, in order; a permission record becomes a step of its
    /// entry in `entries` when that entry asks for anything.
    pub(crate) fn steps<'a>(
        &'a self,
        entries: &'a [PermEntry],
    ) -> impl Iterator<Item = io::Result<Step>> + 'a {
        self.records().filter_map(move |r| match r {
            Err(e) => Some(Err(e)),
            Ok(Rec::Step(s)) => Some(Ok(s)),
            Ok(Rec::Perm { entry, path }) => {
                let e = entries.get(entry as usize)?;
                e.asks.then(|| {
                    Ok(Step::SetPermissions(Box::new(PermissionStep {
                        path,
                        ..e.template.clone()
                    })))
                })
            }
        })
    }
}

/// One record read back.
#[derive(Debug)]
pub(crate) enum Rec {
    /// A directory or a copy.
    Step(Step),
    /// A path permissions entry `entry` covers.
    Perm { entry: u32, path: PathBuf },
}

/// Reads a tape's records back; each item is built when asked for.
pub(crate) struct Records<'a> {
    tape: &'a Tape,
    /// Logical offset of the end of `window`.
    at: u64,
    window: Vec<u8>,
    pos: usize,
    base: (PathBuf, PathBuf),
    failed: bool,
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the install plan's spill file ends inside a record",
    )
}

impl Records<'_> {
    fn total(&self) -> u64 {
        self.tape.spilled + self.tape.buf.len() as u64
    }

    /// Makes `n` bytes available at `window[pos..]`. `Ok(false)`: the stream ended cleanly
    /// before any of them.
    fn need(&mut self, n: usize) -> io::Result<bool> {
        while self.window.len() - self.pos < n {
            if self.at >= self.total() {
                return if self.window.len() == self.pos {
                    Ok(false)
                } else {
                    Err(truncated())
                };
            }
            self.window.drain(..self.pos);
            self.pos = 0;
            let want = READ_CHUNK.max(n - self.window.len());
            let spilled = self.tape.spilled;
            if self.at < spilled {
                let Some(spill) = self.tape.spill.as_ref() else {
                    return Err(truncated());
                };
                let len = usize::try_from(spilled - self.at).map_or(want, |l| l.min(want));
                let old = self.window.len();
                self.window.resize(old + len, 0);
                let got = spill.read_at(&mut self.window[old..], self.at)?;
                self.window.truncate(old + got);
                if got == 0 {
                    return Err(truncated());
                }
                self.at += got as u64;
            } else {
                let from = usize::try_from(self.at - spilled).map_err(|_| truncated())?;
                let rest = &self.tape.buf[from..];
                let len = rest.len().min(want);
                self.window.extend_from_slice(&rest[..len]);
                self.at += len as u64;
            }
        }
        Ok(true)
    }

    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if !self.need(n)? {
            return Err(truncated());
        }
        let s = &self.window[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn bytes(&mut self) -> io::Result<&[u8]> {
        let head = self.take(4)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = usize::try_from(len).map_err(|_| truncated())?;
        self.take(len)
    }

    fn path(&mut self) -> io::Result<PathBuf> {
        // On Unix every byte string is a name: the bytes come back exactly as written.
        Ok(PathBuf::from(OsStr::from_bytes(self.bytes()?)))
    }

    fn next_rec(&mut self) -> io::Result<Option<Rec>> {
        loop {
            if !self.need(1)? {
                return Ok(None);
            }
            let tag = self.window[self.pos];
            self.pos += 1;
            let replace = tag & REPLACE != 0;
            match tag & !REPLACE {
                BASE => {
                    let s = self.path()?;
                    let d = self.path()?;
                    self.base = (s, d);
                }
                MKDIR => {
                    let dir = self.path()?;
                    return Ok(Some(Rec::Step(Step::Mkdir { dir, replace })));
                }
                COPY => {
                    let name = self.path()?;
                    return Ok(Some(Rec::Step(Step::Copy {
                        source: self.base.0.join(&name),
                        destination: self.base.1.join(&name),
                        replace,
                    })));
                }
                PERM => {
                    let b = self.take(4)?;
                    let entry = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let path = self.path()?;
                    return Ok(Some(Rec::Perm { entry, path }));
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the install plan's spill file holds an unknown record {tag}"),
                    ))
                }
            }
        }
    }
}

impl Iterator for Records<'_> {
    type Item = io::Result<Rec>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_rec() {
            Ok(s) => s.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::MemSpill;
    use super::*;

    fn fill(t: &mut Tape, n: usize) {
        for i in 0..n {
            let d = PathBuf::from(format!("/dest/d{}", i / 7));
            if i % 7 == 0 {
                t.push_mkdir(&d, i % 2 == 0).unwrap();
            }
            let s = PathBuf::from(format!("/ar/d{}", i / 7));
            t.push_copy(&s, &d, OsStr::new(&format!("f{i}")), i % 3 == 0)
                .unwrap();
        }
    }

    fn expected(n: usize) -> Vec<Step> {
        let mut v = Vec::new();
        for i in 0..n {
            if i % 7 == 0 {
                v.push(Step::Mkdir {
                    dir: format!("/dest/d{}", i / 7).into(),
                    replace: i % 2 == 0,
                });
            }
            v.push(Step::Copy {
                source: format!("/ar/d{}/f{i}", i / 7).into(),
                destination: format!("/dest/d{}/f{i}", i / 7).into(),
                replace: i % 3 == 0,
            });
        }
        v
    }

    #[test]
    fn steps_come_back_in_order_from_memory_and_from_a_spill() {
        let mut mem = Tape::default();
        fill(&mut mem, 20_000);
        assert!(
            mem.buf.len() >= SPILL_AT,
            "large enough to spill, had there been a source"
        );
        let got: Vec<Step> = mem.steps(&[]).map(Result::unwrap).collect();
        assert_eq!(got, expected(20_000));

        let store = MemSpill::default();
        let mut t = Tape::default();
        for chunk in 0..4 {
            fill(&mut t, 5_000);
            t.spill_if_due(Some(&store)).unwrap();
            // A reader started midway sees everything appended so far.
            assert_eq!(t.steps(&[]).count(), (chunk + 1) * (5_000 + 715));
        }
        let spilled = store.bytes().len();
        assert!(spilled > 0 && t.buf.len() < SPILL_AT, "{spilled}");
        let got: Vec<Step> = t.steps(&[]).map(Result::unwrap).collect();
        assert_eq!(got.len(), 4 * (5_000 + 715));
        assert_eq!(&got[..5_715], &expected(5_000)[..]);
    }

    #[test]
    fn a_spill_that_lost_bytes_is_an_error_not_a_shorter_plan() {
        let store = MemSpill::default();
        let mut t = Tape::default();
        fill(&mut t, 20_000);
        t.spill_if_due(Some(&store)).unwrap();
        store.bytes().truncate(1_000);
        let results: Vec<io::Result<Step>> = t.steps(&[]).collect();
        let last = results.last().unwrap();
        assert!(last.is_err(), "the reader must report the damage");
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    }
}
