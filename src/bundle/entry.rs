//! PURE: the archive-independent description of one member, and the normalisation of member
//! names into safe relative paths.
//!
//! Invariant: a [`RelPath`] has at least one component, and every component is a plain name
//! (no `/`, not `.`, not `..`, no NUL). So joining it under the archive dir can never leave it
//! lexically; symlinks on the way are the writer's job.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::error::Unsafe;

/// A normalised relative path inside the archive dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath(Vec<OsString>);

impl RelPath {
    pub fn components(&self) -> &[OsString] {
        &self.0
    }
    pub fn parent(&self) -> &[OsString] {
        &self.0[..self.0.len() - 1]
    }
    pub fn name(&self) -> &OsStr {
        &self.0[self.0.len() - 1]
    }
}

/// Normalises a member name. `Ok(None)` means the name denotes the archive dir itself
/// (`./`, `.`), which callers skip. `..` is resolved lexically and refused once it would climb
/// above the archive dir; it never reaches the kernel.
pub fn normalize(raw: &[u8]) -> Result<Option<RelPath>, Unsafe> {
    if raw.contains(&0) {
        return Err(Unsafe::NulByte);
    }
    if raw.first() == Some(&b'/') {
        return Err(Unsafe::AbsolutePath);
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(Unsafe::Escapes);
                }
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok((!out.is_empty()).then_some(RelPath(out)))
}

/// Where a hard-link member named `path` points: `Ok(None)` when it names itself (nothing to
/// do), an error when its target is not a name inside the archive dir.
pub fn hard_link_target(path: &RelPath, target: &[u8]) -> Result<Option<RelPath>, Unsafe> {
    match normalize(target) {
        Ok(Some(t)) if t == *path => Ok(None),
        Ok(Some(t)) => Ok(Some(t)),
        Ok(None) | Err(_) => Err(Unsafe::HardLinkOutside {
            target: shown(target),
        }),
    }
}

/// File-type of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink {
        target: Vec<u8>,
    },
    /// Raw link-target name, validated by the writer so the error names this member.
    HardLink {
        target: Vec<u8>,
    },
    /// Device node, fifo or socket: always refused.
    Special(&'static str),
}

/// Owner as recorded in a tar header; names win over numbers when they resolve (GNU tar).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub uname: Option<String>,
    pub gname: Option<String>,
}

/// One member as the producers describe it to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHead {
    /// The member name as stored: bytes, never converted (two names that differ in bytes
    /// that are not UTF-8 stay two names).
    pub raw_name: Vec<u8>,
    pub kind: Kind,
    /// Permission bits incl. setuid/setgid/sticky; `None` = leave to the umask.
    pub mode: Option<u32>,
    /// Seconds and nanoseconds since the epoch; `None` = leave as created.
    pub mtime: Option<(i64, u32)>,
    pub owner: Option<Owner>,
}

/// A member name as messages show it (see [`crate::names`]).
pub fn shown(raw: &[u8]) -> String {
    crate::names::encode(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<Option<Vec<String>>, Unsafe> {
        normalize(s.as_bytes()).map(|o| {
            o.map(|p| {
                p.components()
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect()
            })
        })
    }

    #[test]
    fn plain_and_dotted_names() {
        assert_eq!(norm("a/b.txt").unwrap().unwrap(), ["a", "b.txt"]);
        assert_eq!(norm("./a//b/").unwrap().unwrap(), ["a", "b"]);
        assert_eq!(norm("a/./../b").unwrap().unwrap(), ["b"]);
        assert_eq!(norm("./").unwrap(), None);
        assert_eq!(norm(".").unwrap(), None);
    }

    #[test]
    fn refusals() {
        assert_eq!(norm("/etc/passwd"), Err(Unsafe::AbsolutePath));
        assert_eq!(norm("../x"), Err(Unsafe::Escapes));
        assert_eq!(norm("a/../../x"), Err(Unsafe::Escapes));
        assert_eq!(norm("./.."), Err(Unsafe::Escapes));
        assert_eq!(normalize(b"a\0b"), Err(Unsafe::NulByte));
    }

    #[test]
    fn parent_and_name() {
        let p = normalize(b"x/y/z").unwrap().unwrap();
        assert_eq!(p.parent(), [OsString::from("x"), OsString::from("y")]);
        assert_eq!(p.name(), "z");
    }

    #[test]
    fn hard_link_targets() {
        let me = normalize(b"a/b").unwrap().unwrap();
        let other = hard_link_target(&me, b"./c/../d").unwrap().unwrap();
        assert_eq!(other.components(), [OsString::from("d")]);
        assert_eq!(hard_link_target(&me, b"a//b").unwrap(), None);
        for outside in [&b"../x"[..], b"/etc/shadow", b".", b"a\0b"] {
            assert!(
                matches!(
                    hard_link_target(&me, outside),
                    Err(Unsafe::HardLinkOutside { .. })
                ),
                "{outside:?}"
            );
        }
    }
}
