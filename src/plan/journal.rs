//! The meaning of a `<group>-cleanup` journal (spec 9.5): what the next install removes.
//!
//! Invariants: a last line without `\n` is a torn write and is ignored; removals come out in
//! reverse order (children before their parents); relative paths are ignored rather than
//! resolved against whatever the working directory happens to be.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One thing the next install removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Unlink a file or symlink; remove a directory only if empty.
    Path(PathBuf),
    /// `semanage fcontext -d <path>`.
    SeContext(PathBuf),
}

const SEMANAGE_PREFIX: &[u8] = b"semanage\0";

/// Parses journal bytes into removals, last entry first.
pub fn parse_journal(bytes: &[u8]) -> Vec<Removal> {
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let mut out: Vec<Removal> = bytes[..end]
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let (is_context, path) = match line.strip_prefix(SEMANAGE_PREFIX) {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            if path.first() != Some(&b'/') {
                return None;
            }
            let path = PathBuf::from(OsStr::from_bytes(path));
            Some(if is_context {
                Removal::SeContext(path)
            } else {
                Removal::Path(path)
            })
        })
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Removal {
        Removal::Path(PathBuf::from(s))
    }

    #[test]
    fn empty_and_torn() {
        assert!(parse_journal(b"").is_empty());
        assert!(parse_journal(b"/a/b").is_empty());
        assert_eq!(parse_journal(b"/a\n/a/b\n/a/b/c"), vec![p("/a/b"), p("/a")]);
    }

    #[test]
    fn reverse_order_and_semanage() {
        let j = b"/d\n/d/f\nsemanage\0/d/f\n";
        assert_eq!(
            parse_journal(j),
            vec![Removal::SeContext("/d/f".into()), p("/d/f"), p("/d")]
        );
    }

    #[test]
    fn blank_and_relative_lines_ignored_crlf_tolerated() {
        assert_eq!(parse_journal(b"\nrel/x\n/a\r\n\n"), vec![p("/a")]);
    }

    #[test]
    fn odd_bytes_survive() {
        let r = parse_journal(b"/a b/\xff\n");
        assert_eq!(
            r,
            vec![Removal::Path(PathBuf::from(OsStr::from_bytes(
                b"/a b/\xff"
            )))]
        );
    }
}
