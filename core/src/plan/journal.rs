//! The meaning of a `<group>-cleanup` journal (docs/behaviour/install.md#install-execution): what
//! the next install removes.
//!
//! Invariants: a last line without `\n` is a torn write and is ignored; removals come out in
//! reverse order (children before their parents); relative paths are ignored rather than
//! resolved against whatever the working directory happens to be. A line is a path's raw
//! bytes, as the official agent writes it: nothing is trimmed or decoded, so a name that is
//! not UTF-8, or ends in a space or `\r`, is removed exactly (only `\n` cannot be recorded,
//! and the planner refuses such paths).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One thing the next install removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal<'a> {
    /// Unlink a file or symlink; remove a directory only if empty.
    Path(&'a Path),
    /// `semanage fcontext -d <path>`.
    SeContext(&'a Path),
}

/// Answers whether the previous revision installed a path (the planner counts those as
/// absent, since they are removed first).
pub trait Previous: std::fmt::Debug {
    fn installed(&self, p: &Path) -> bool;
}

impl Previous for HashSet<PathBuf> {
    fn installed(&self, p: &Path) -> bool {
        self.contains(p)
    }
}

const SEMANAGE_PREFIX: &[u8] = b"semanage\0";

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    len: u32,
    context: bool,
}

/// A parsed journal. Kept as the file's bytes plus the span of each entry, and the path
/// entries in sorted order for lookups: a revision of 100,000 files costs the journal's own
/// size and 20 bytes per line, not a path allocation and a hash-set slot per line.
#[derive(Debug, Default)]
pub struct PreviousInstall {
    bytes: Vec<u8>,
    /// Last line first: the order removals are applied (children before their parents).
    entries: Vec<Entry>,
    /// Indices into `entries` of the path (not semanage) entries, sorted by path.
    sorted: Vec<u32>,
}

impl PreviousInstall {
    /// Parses journal bytes. A last line without `\n` is torn and dropped; blank and
    /// relative lines are ignored; every other line is a path, byte for byte.
    pub fn parse(bytes: Vec<u8>) -> Self {
        let mut entries = Vec::new();
        if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
            let mut start = 0;
            for line in bytes[..end].split(|&b| b == b'\n') {
                let line_start = start;
                start += line.len() + 1;
                let (context, skip) = match line.strip_prefix(SEMANAGE_PREFIX) {
                    Some(_) => (true, SEMANAGE_PREFIX.len()),
                    None => (false, 0),
                };
                let path = &line[skip..];
                let Ok(len) = u32::try_from(path.len()) else {
                    continue;
                };
                if path.first() == Some(&b'/') {
                    entries.push(Entry {
                        start: line_start + skip,
                        len,
                        context,
                    });
                }
            }
        }
        entries.reverse();
        let mut this = Self {
            bytes,
            entries,
            sorted: Vec::new(),
        };
        let mut sorted: Vec<u32> = (0..this.entries.len())
            .filter(|&i| !this.entries[i].context)
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        sorted.sort_unstable_by(|&a, &b| this.path(a as usize).cmp(this.path(b as usize)));
        this.sorted = sorted;
        this
    }

    fn path(&self, i: usize) -> &Path {
        let e = self.entries[i];
        Path::new(OsStr::from_bytes(
            &self.bytes[e.start..e.start + e.len as usize],
        ))
    }

    /// The removals, last journal line first.
    pub fn removals(&self) -> impl ExactSizeIterator<Item = Removal<'_>> + '_ {
        (0..self.entries.len()).map(|i| {
            let p = self.path(i);
            if self.entries[i].context {
                Removal::SeContext(p)
            } else {
                Removal::Path(p)
            }
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Previous for PreviousInstall {
    /// Compares paths as `Path` does (by components), so `/a//b` finds `/a/b`.
    fn installed(&self, p: &Path) -> bool {
        self.sorted
            .binary_search_by(|&i| self.path(i as usize).cmp(p))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<String> {
        PreviousInstall::parse(bytes.to_vec())
            .removals()
            .map(|r| match r {
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
        assert!(j.installed(Path::new("/a")));
        assert_eq!(j.len(), 1);
    }

    #[test]
    fn lines_are_names_byte_for_byte() {
        // A carriage return or a space at the end is part of the name: `/a\r` is not `/a`.
        let j = PreviousInstall::parse(b"/a\r\n/b \n/caf\xe9\n/caf\xe8\n".to_vec());
        let p = |b: &'static [u8]| Path::new(OsStr::from_bytes(b));
        assert!(j.installed(p(b"/a\r")) && !j.installed(p(b"/a")));
        assert!(j.installed(p(b"/b ")) && !j.installed(p(b"/b")));
        assert!(j.installed(p(b"/caf\xe9")) && j.installed(p(b"/caf\xe8")));
        assert!(!j.installed(p("/caf\u{fffd}".as_bytes())));
        assert_eq!(j.len(), 4);
    }

    #[test]
    fn odd_bytes_survive() {
        let j = PreviousInstall::parse(b"/a b/\xff\n".to_vec());
        let want = Path::new(OsStr::from_bytes(b"/a b/\xff"));
        assert_eq!(j.removals().collect::<Vec<_>>(), [Removal::Path(want)]);
        assert!(j.installed(want));
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
            assert_eq!(j.installed(&p), set.installed(&p), "{}", p.display());
        }
        assert!(!j.installed(Path::new("/app/only-context")));
        assert!(!j.installed(Path::new("/app/torn")));
        assert!(
            j.installed(Path::new("/app//d0/f0")),
            "compared by components"
        );
    }
}
