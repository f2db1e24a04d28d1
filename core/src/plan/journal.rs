//! The meaning of a `<group>-cleanup` journal (docs/behaviour/install.md#install-execution): what
//! the next install removes.
//!
//! Invariants: a last line without `\n` is a torn write and is ignored; removals come out in
//! reverse order (children before their parents); relative paths are ignored rather than
//! resolved against whatever the working directory happens to be. A line is a path's raw
//! bytes, as the official agent writes it: nothing is trimmed or decoded, so a name that is
//! not UTF-8, or ends in a space or `\r`, is removed exactly (only `\n` cannot be recorded,
//! and the planner refuses such paths).
//!
//! Memory: a journal is never held whole. It is read where it lies (the cleanup file, through
//! [`ReadAt`]): forwards twice to build an index of its paths grouped by parent directory,
//! backwards for the removals. The index goes to a [`Spill`] once the journal is larger than
//! [`IN_MEMORY`]; what stays in memory is one small entry per directory and the group of
//! paths last looked up, so a journal of a million files costs what one of ten thousand does
//! (one directory's paths at a time).

use super::files::path_hash;
use super::tape::{Spill, SpillSource};
use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One thing the next install removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Unlink a file or symlink; remove a directory only if empty.
    Path(PathBuf),
    /// `semanage fcontext -d <path>`.
    SeContext(PathBuf),
}

/// Answers whether the previous revision installed a path (the planner counts those as
/// absent, since they are removed first). Reading the answer can fail when the journal is
/// read from disk.
pub trait Previous: std::fmt::Debug {
    fn installed(&self, p: &Path) -> io::Result<bool>;
}

impl Previous for HashSet<PathBuf> {
    fn installed(&self, p: &Path) -> io::Result<bool> {
        Ok(self.contains(p))
    }
}

/// Bytes read at offsets: the journal file, or memory.
pub trait ReadAt: std::fmt::Debug {
    fn size(&self) -> u64;
    /// Reads bytes at `offset`; fewer than asked is not an error, none means the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let from = usize::try_from(offset).map_or(self.len(), |o| o.min(self.len()));
        let n = buf.len().min(self.len() - from);
        buf[..n].copy_from_slice(&self[from..from + n]);
        Ok(n)
    }
}

const SEMANAGE_PREFIX: &[u8] = b"semanage\0";
/// How much is read at once.
const CHUNK: usize = 64 * 1024;
/// Journals up to this size keep their index in memory.
pub const IN_MEMORY: u64 = 256 * 1024;

/// Read size and the journal size up to which the index stays in memory.
#[derive(Debug, Clone, Copy)]
struct Limits {
    chunk: usize,
    in_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            chunk: CHUNK,
            in_memory: IN_MEMORY,
        }
    }
}

/// A line's meaning: `Some((is_context, path))` for an entry, `None` for a blank or relative
/// line.
fn classify(line: &[u8]) -> Option<(bool, &[u8])> {
    let (context, path) = match line.strip_prefix(SEMANAGE_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    (path.first() == Some(&b'/')).then_some((context, path))
}

fn as_path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// The group a path is indexed under: its parent directory, hashed by components (as `Path`
/// compares), so `/a//b` and `/a/b` fall together.
fn group_of(p: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    p.parent().hash(&mut h);
    h.finish()
}

fn read_full(src: &dyn ReadAt, buf: &mut [u8], at: u64) -> io::Result<()> {
    read_full_with(|b, o| src.read_at(b, o), buf, at)
}

/// Fills `buf` from offset `at` with `read` (which may return short), or fails at the end.
fn read_full_with(
    read: impl Fn(&mut [u8], u64) -> io::Result<usize>,
    buf: &mut [u8],
    mut at: u64,
) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = read(&mut buf[done..], at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the cleanup journal or its index became shorter while it was read",
            ));
        }
        done += n;
        at += n as u64;
    }
    Ok(())
}

/// Calls `f` with every complete line of `src[..end]`, in order.
fn each_line(
    src: &dyn ReadAt,
    end: u64,
    size: usize,
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut at = 0;
    let mut carry: Vec<u8> = Vec::new();
    let mut chunk = vec![0; size];
    while at < end {
        let want = usize::try_from(end - at).map_or(size, |n| n.min(size));
        read_full(src, &mut chunk[..want], at)?;
        at += want as u64;
        let mut rest = &chunk[..want];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if carry.is_empty() {
                f(&rest[..nl])?;
            } else {
                carry.extend_from_slice(&rest[..nl]);
                f(&carry)?;
                carry.clear();
            }
            rest = &rest[nl + 1..];
        }
        carry.extend_from_slice(rest);
    }
    Ok(())
}

/// Where the paths of one parent directory lie in the index.
#[derive(Debug, Default, Clone, Copy)]
struct Group {
    at: u64,
    len: u64,
    /// Bytes written so far while the index is built.
    filled: u64,
}

#[derive(Debug)]
enum Index {
    Mem(Vec<u8>),
    Spill(Box<dyn Spill>),
}

impl Index {
    fn write_at(&mut self, bytes: &[u8], at: u64) -> io::Result<()> {
        match self {
            Index::Mem(v) => {
                let at = usize::try_from(at).map_err(|_| io::ErrorKind::InvalidInput)?;
                v[at..at + bytes.len()].copy_from_slice(bytes);
                Ok(())
            }
            Index::Spill(s) => s.write_at(bytes, at),
        }
    }

    fn read_full(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        match self {
            Index::Mem(v) => read_full(v, buf, at),
            Index::Spill(s) => read_full_with(|b, o| s.read_at(b, o), buf, at),
        }
    }
}

/// A parsed journal, read where it lies (see the module's memory note).
#[derive(Debug)]
pub struct PreviousInstall {
    src: Box<dyn ReadAt>,
    /// End of the last complete line; a torn tail lies beyond.
    end: u64,
    /// Bytes read at once.
    chunk: usize,
    entries: usize,
    groups: HashMap<u64, Group>,
    index: Index,
    /// The groups last looked up, most recent first (at most [`GROUPS_KEPT`]): lookups
    /// alternate between a few directories (a file's and its ancestors').
    cache: RefCell<Vec<Loaded>>,
}

impl Default for PreviousInstall {
    fn default() -> Self {
        Self::parse(Vec::new())
    }
}

impl PreviousInstall {
    /// Parses journal bytes held in memory (tests, small journals).
    pub fn parse(bytes: Vec<u8>) -> Self {
        // Memory cannot fail to read, and without a spill source nothing is written.
        Self::open(Box::new(bytes), None).unwrap_or_else(|_| Self::empty())
    }

    fn empty() -> Self {
        Self {
            src: Box::new(Vec::new()),
            end: 0,
            chunk: CHUNK,
            entries: 0,
            groups: HashMap::new(),
            index: Index::Mem(Vec::new()),
            cache: RefCell::new(Vec::new()),
        }
    }

    /// Reads the journal in `src` and indexes its paths; the index goes to a spill from
    /// `spills` when the journal is larger than [`IN_MEMORY`].
    pub fn open(src: Box<dyn ReadAt>, spills: Option<&dyn SpillSource>) -> io::Result<Self> {
        Self::open_with(src, spills, Limits::default())
    }

    /// [`PreviousInstall::open`] with the index going to a spill past `in_memory` bytes of
    /// journal instead of [`IN_MEMORY`]: the fuzz target reaches the spill with small inputs.
    #[doc(hidden)]
    pub fn open_spilling_past(
        src: Box<dyn ReadAt>,
        spills: &dyn SpillSource,
        in_memory: u64,
    ) -> io::Result<Self> {
        let limits = Limits {
            in_memory,
            ..Limits::default()
        };
        Self::open_with(src, Some(spills), limits)
    }

    /// [`PreviousInstall::open`] with other read sizes and spill threshold (tests reach every
    /// chunk boundary and the spill with small journals).
    fn open_with(
        src: Box<dyn ReadAt>,
        spills: Option<&dyn SpillSource>,
        limits: Limits,
    ) -> io::Result<Self> {
        let Limits { chunk, in_memory } = limits;
        let end = complete_end(&*src, chunk)?;
        let mut entries = 0;
        let mut groups: HashMap<u64, Group> = HashMap::new();
        each_line(&*src, end, chunk, &mut |line| {
            if let Some((context, path)) = classify(line) {
                entries += 1;
                if !context {
                    groups.entry(group_of(as_path(path))).or_default().len += 4 + path.len() as u64;
                }
            }
            Ok(())
        })?;
        let mut total = 0;
        for g in groups.values_mut() {
            g.at = total;
            total += g.len;
        }
        let mut index = match spills {
            Some(s) if end > in_memory => Index::Spill(s.open()?),
            _ => Index::Mem(vec![
                0;
                usize::try_from(total)
                    .map_err(|_| io::ErrorKind::OutOfMemory)?
            ]),
        };
        // Lines of one directory mostly follow each other: writes are gathered while they
        // land next to each other.
        let mut pending: (u64, Vec<u8>) = (0, Vec::new());
        each_line(&*src, end, chunk, &mut |line| {
            let Some((false, path)) = classify(line) else {
                return Ok(());
            };
            let Some(g) = groups.get_mut(&group_of(as_path(path))) else {
                return Ok(());
            };
            let at = g.at + g.filled;
            g.filled += 4 + path.len() as u64;
            if pending.0 + pending.1.len() as u64 != at || pending.1.len() >= chunk {
                if !pending.1.is_empty() {
                    index.write_at(&pending.1, pending.0)?;
                }
                pending = (at, Vec::new());
            }
            let len = u32::try_from(path.len()).map_err(|_| io::ErrorKind::InvalidData)?;
            pending.1.extend_from_slice(&len.to_le_bytes());
            pending.1.extend_from_slice(path);
            Ok(())
        })?;
        if !pending.1.is_empty() {
            index.write_at(&pending.1, pending.0)?;
        }
        Ok(Self {
            src,
            end,
            chunk,
            entries,
            groups,
            index,
            cache: RefCell::new(Vec::new()),
        })
    }

    /// The removals, last journal line first.
    pub fn removals(&self) -> impl Iterator<Item = io::Result<Removal>> + '_ {
        Backward {
            src: &*self.src,
            chunk: self.chunk,
            lo: self.end.saturating_sub(1),
            buf: Vec::new(),
            done: self.end == 0,
        }
        .filter_map(|line| match line {
            Err(e) => Some(Err(e)),
            Ok(line) => classify(&line).map(|(context, p)| {
                let p = as_path(p).to_path_buf();
                Ok(if context {
                    Removal::SeContext(p)
                } else {
                    Removal::Path(p)
                })
            }),
        })
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// The end of the last line that ends in `\n`.
fn complete_end(src: &dyn ReadAt, size: usize) -> io::Result<u64> {
    let mut hi = src.size();
    let mut chunk = vec![0; size];
    while hi > 0 {
        let lo = hi.saturating_sub(size as u64);
        let n = usize::try_from(hi - lo).unwrap_or(size);
        read_full(src, &mut chunk[..n], lo)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

/// The lines of `src[..=lo]` (which ends with a `\n` at `lo`), last first.
struct Backward<'a> {
    src: &'a dyn ReadAt,
    chunk: usize,
    /// Where the unread part ends (exclusive): `buf` holds the bytes from there up to the
    /// `\n` that ends the next line to yield.
    lo: u64,
    buf: Vec<u8>,
    done: bool,
}

impl Iterator for Backward<'_> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some(nl) = self.buf.iter().rposition(|&b| b == b'\n') {
                let line = self.buf.split_off(nl + 1);
                self.buf.truncate(nl);
                return Some(Ok(line));
            }
            if self.lo == 0 {
                self.done = true;
                return Some(Ok(std::mem::take(&mut self.buf)));
            }
            let from = self.lo.saturating_sub(self.chunk as u64);
            let n = usize::try_from(self.lo - from).unwrap_or(self.chunk);
            let mut chunk = vec![0; n];
            if let Err(e) = read_full(self.src, &mut chunk, from) {
                self.done = true;
                return Some(Err(e));
            }
            chunk.extend_from_slice(&self.buf);
            self.buf = chunk;
            self.lo = from;
        }
    }
}

/// How many directories' groups stay loaded.
const GROUPS_KEPT: usize = 4;

/// One directory's paths, loaded from the index: the bytes (`u32` length, path; repeated)
/// and each path's hash with its offset, sorted by hash.
#[derive(Debug)]
struct Loaded {
    key: u64,
    bytes: Vec<u8>,
    by_hash: Vec<(u64, u32)>,
}

impl Loaded {
    fn path_at(&self, at: u32) -> Option<&Path> {
        let at = at as usize;
        let head = self.bytes.get(at..at + 4)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        self.bytes.get(at + 4..at + 4 + len).map(as_path)
    }

    fn contains(&self, p: &Path) -> bool {
        let h = path_hash(p);
        let first = self.by_hash.partition_point(|&(x, _)| x < h);
        self.by_hash[first..]
            .iter()
            .take_while(|&&(x, _)| x == h)
            .any(|&(_, at)| self.path_at(at) == Some(p))
    }
}

impl PreviousInstall {
    fn load(&self, key: u64, g: &Group) -> io::Result<Loaded> {
        let len = usize::try_from(g.len).map_err(|_| io::ErrorKind::OutOfMemory)?;
        let mut bytes = vec![0; len];
        self.index.read_full(&mut bytes, g.at)?;
        let mut by_hash = Vec::new();
        let mut at = 0usize;
        while at + 4 <= bytes.len() {
            let n = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let Some(path) = bytes.get(at + 4..at + 4 + n as usize) else {
                break;
            };
            let off = u32::try_from(at).map_err(|_| io::ErrorKind::OutOfMemory)?;
            by_hash.push((path_hash(as_path(path)), off));
            at += 4 + n as usize;
        }
        by_hash.sort_unstable();
        Ok(Loaded {
            key,
            bytes,
            by_hash,
        })
    }
}

impl Previous for PreviousInstall {
    /// Compares paths as `Path` does (by components), so `/a//b` finds `/a/b`.
    fn installed(&self, p: &Path) -> io::Result<bool> {
        let key = group_of(p);
        let Some(g) = self.groups.get(&key) else {
            return Ok(false);
        };
        let mut cache = self.cache.borrow_mut();
        match cache.iter().position(|l| l.key == key) {
            Some(0) => {}
            Some(i) => {
                let l = cache.remove(i);
                cache.insert(0, l);
            }
            None => {
                let l = self.load(key, g)?;
                cache.truncate(GROUPS_KEPT - 1);
                cache.insert(0, l);
            }
        }
        Ok(cache.first().is_some_and(|l| l.contains(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl PreviousInstall {
        fn inst(&self, p: &Path) -> bool {
            self.installed(p).unwrap()
        }
    }

    fn parse(bytes: &[u8]) -> Vec<String> {
        PreviousInstall::parse(bytes.to_vec())
            .removals()
            .map(|r| match r.unwrap() {
                Removal::Path(p) => p.to_string_lossy().into_owned(),
                Removal::SeContext(p) => format!("semanage {}", p.display()),
            })
            .collect()
    }

    #[test]
    fn empty_and_torn() {
        assert!(parse(b"").is_empty());
        assert!(parse(b"/a/b").is_empty());
        assert_eq!(parse(b"/a\n/a/b\n/a/b/c"), ["/a/b", "/a"]);
    }

    #[test]
    fn reverse_order_and_semanage() {
        let j = b"/d\n/d/f\nsemanage\0/d/f\n";
        assert_eq!(parse(j), ["semanage /d/f", "/d/f", "/d"]);
    }

    #[test]
    fn blank_and_relative_lines_ignored() {
        assert_eq!(parse(b"\nrel/x\n/a\n\n"), ["/a"]);
        let j = PreviousInstall::parse(b"\nrel/x\n/a\n\n".to_vec());
        assert!(j.inst(Path::new("/a")));
        assert_eq!(j.len(), 1);
    }

    #[test]
    fn lines_are_names_byte_for_byte() {
        // A carriage return or a space at the end is part of the name: `/a\r` is not `/a`.
        let j = PreviousInstall::parse(b"/a\r\n/b \n/caf\xe9\n/caf\xe8\n".to_vec());
        let p = |b: &'static [u8]| Path::new(OsStr::from_bytes(b));
        assert!(j.inst(p(b"/a\r")) && !j.inst(p(b"/a")));
        assert!(j.inst(p(b"/b ")) && !j.inst(p(b"/b")));
        assert!(j.inst(p(b"/caf\xe9")) && j.inst(p(b"/caf\xe8")));
        assert!(!j.inst(p("/caf\u{fffd}".as_bytes())));
        assert_eq!(j.len(), 4);
    }

    #[test]
    fn odd_bytes_survive() {
        let j = PreviousInstall::parse(b"/a b/\xff\n".to_vec());
        let want = Path::new(OsStr::from_bytes(b"/a b/\xff"));
        let got: Vec<Removal> = j.removals().map(Result::unwrap).collect();
        assert_eq!(got, [Removal::Path(want.to_path_buf())]);
        assert!(j.inst(want));
    }

    #[test]
    fn lookups_match_a_hash_set_of_the_same_lines() {
        let mut text = Vec::new();
        let mut set = HashSet::new();
        for i in (0..500).rev() {
            let p = format!("/app/d{}/f{i}", i % 7);
            text.extend_from_slice(p.as_bytes());
            text.push(b'\n');
            set.insert(PathBuf::from(p));
        }
        text.extend_from_slice(b"semanage\0/app/only-context\n/app/torn");
        let j = PreviousInstall::parse(text);
        for i in 0..600 {
            let p = PathBuf::from(format!("/app/d{}/f{i}", i % 7));
            assert_eq!(j.inst(&p), set.installed(&p).unwrap(), "{}", p.display());
        }
        assert!(!j.inst(Path::new("/app/only-context")));
        assert!(!j.inst(Path::new("/app/torn")));
        assert!(j.inst(Path::new("/app//d0/f0")), "compared by components");
    }
}

#[cfg(test)]
mod big_tests {
    use super::super::testing::{journal_model, MemSpills};
    use super::*;

    /// A journal as an install writes it: each directory, then its files; some lines longer
    /// than the read chunk; a context line; a torn tail.
    fn journal(dirs: usize, files: usize) -> (Vec<u8>, Vec<PathBuf>) {
        let mut text = Vec::new();
        let mut paths = Vec::new();
        let mut line = |p: String, text: &mut Vec<u8>| {
            text.extend_from_slice(p.as_bytes());
            text.push(b'\n');
            paths.push(PathBuf::from(p));
        };
        line("/app".into(), &mut text);
        for d in 0..dirs {
            line(format!("/app/d{d}"), &mut text);
            for f in 0..files {
                line(format!("/app/d{d}/file-{f}.txt"), &mut text);
            }
            if d == 3 {
                line(format!("/app/d{d}/{}", "n".repeat(70_000)), &mut text);
            }
        }
        text.extend_from_slice(b"semanage\0/app/d1\n/app/torn");
        (text, paths)
    }

    #[test]
    fn a_large_journal_is_indexed_on_a_spill_and_answers_as_a_small_one() {
        let (text, paths) = journal(200, 50);
        assert!(text.len() as u64 > IN_MEMORY);
        let spills = MemSpills::default();
        let j = PreviousInstall::open(Box::new(text.clone()), Some(&spills)).unwrap();
        assert_eq!(spills.opened(), 1, "the index went to a spill");
        let small = PreviousInstall::parse(text);
        assert_eq!(j.len(), paths.len() + 1, "every path and the context line");
        assert_eq!(small.len(), j.len());
        for p in paths.iter().step_by(7).chain(paths.last()) {
            assert!(j.installed(p).unwrap(), "{}", p.display());
            assert!(small.installed(p).unwrap());
        }
        for p in [
            "/app/torn",
            "/app/d1/file-50.txt",
            "/app/d999",
            "/",
            "/app/d1/",
        ] {
            let p = Path::new(p);
            assert_eq!(
                j.installed(p).unwrap(),
                small.installed(p).unwrap(),
                "{p:?}"
            );
        }
        assert!(!j.installed(Path::new("/app/torn")).unwrap());
        // Lookups that alternate between directories, as a removal's ancestors do, and more
        // directories than stay loaded.
        for d in 0..200 {
            let dir = PathBuf::from(format!("/app/d{d}"));
            assert!(j.installed(&dir.join("file-49.txt")).unwrap());
            assert!(j.installed(&dir).unwrap());
            assert!(j.installed(Path::new("/app")).unwrap());
            assert!(!j.installed(&dir.join("file-50.txt")).unwrap());
            assert!(j
                .installed(Path::new(&format!("/app/d{}/file-0.txt", (d * 7) % 200)))
                .unwrap());
        }
        assert!(
            j.installed(Path::new("/app//d7/file-3.txt")).unwrap(),
            "by components"
        );
        // Removals: last line first, the context line among them, the torn tail dropped.
        let removals: Vec<Removal> = j.removals().map(Result::unwrap).collect();
        let mut want: Vec<Removal> = paths.iter().cloned().map(Removal::Path).collect();
        want.push(Removal::SeContext("/app/d1".into()));
        want.reverse();
        assert_eq!(removals, want);
    }

    #[test]
    fn a_journal_damaged_while_it_is_read_is_an_error() {
        let (text, _) = journal(200, 50);
        let spills = MemSpills::default();
        let j = PreviousInstall::open(Box::new(text), Some(&spills)).unwrap();
        spills.get(0).unwrap().bytes().truncate(10);
        let p = Path::new("/app/d90/file-1.txt");
        assert!(
            j.installed(p).is_err(),
            "a lost index is reported, not read as absent"
        );
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_journal_reads_as_the_plain_model_at_any_chunk_size(
            text in proptest::collection::vec(
                prop_oneof![Just(b'/'), Just(b'a'), Just(b'b'), Just(b'\n'), Just(b'\0'),
                            Just(b's'), Just(0xffu8)],
                0..400),
            context_lines in proptest::collection::vec(0usize..400, 0..4),
            chunk in 1usize..40,
            spill in any::<bool>(),
        ) {
            let mut text = text;
            for at in context_lines {
                let at = at.min(text.len());
                text.splice(at..at, b"\nsemanage\0/a".iter().copied());
            }
            let spills = MemSpills::default();
            let limits = Limits { chunk, in_memory: if spill { 0 } else { u64::MAX } };
            let j = PreviousInstall::open_with(Box::new(text.clone()), Some(&spills), limits)
                .unwrap();
            let (removals, paths) = journal_model(&text);
            let got: Vec<Removal> = j.removals().map(Result::unwrap).collect();
            prop_assert_eq!(&got, &removals);
            prop_assert_eq!(j.len(), removals.len());
            for p in &paths {
                prop_assert!(j.installed(p).unwrap(), "{:?}", p);
            }
            for q in ["/", "/a", "/a/b", "/b/a", "//a", "/a/", "/s"] {
                let q = Path::new(q);
                prop_assert_eq!(j.installed(q).unwrap(), paths.iter().any(|p| p == q), "{:?}", q);
            }
        }
    }
}
