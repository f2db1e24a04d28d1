//! PURE: where a path inside a revision (an unpacked bundle) leads once its symbolic links are
//! followed, judged without ever leaving the revision.
//!
//! The walk follows the kernel's rules: a link's text is read relative to the directory that
//! holds the link, `..` climbs the real directory (not the spelled one), and more than
//! [`MAX_LINKS`] links is a loop. One rule is added: a link whose text is absolute, or whose
//! `..` climbs above the revision root, leads *outside*, and so does a path that climbs out
//! with its own `..`. A revision cannot know where it will be unpacked, so an absolute link
//! never counts as inside, whatever it names.
//!
//! Invariant: the `node` callback is only ever asked about paths made of real directories
//! of the revision (no symlink among the leading components) plus one last name, so an
//! adapter answering from `lstat` never looks outside the revision. The callback is the only
//! I/O; [`disk`] supplies it for a directory on disk.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::names;

/// At most this many links on one walk, as Linux's `ELOOP` limit.
pub const MAX_LINKS: usize = 40;

/// A path below the revision root, one name per component.
pub type Rel = Vec<OsString>;

/// What stands at a path, not following a symlink there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Missing,
    Dir,
    File,
    /// A FIFO, socket or device node.
    Special,
    /// A symbolic link and its text.
    Symlink(Vec<u8>),
}

/// One symbolic link of the revision: where it is and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub at: Rel,
    pub target: Vec<u8>,
}

impl Link {
    /// `at -> target`, names through the escaping of [`names`].
    pub fn describe(&self) -> String {
        format!("{} -> {}", show(&self.at), names::encode(&self.target))
    }
}

/// Where a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Inside the revision at `real` (no symlink among its components, except that `node`
    /// is [`Node::Symlink`] when the last link was not to be followed). A missing component,
    /// or a file used as a directory, ends the walk with [`Node::Missing`].
    Inside { real: Rel, node: Node },
    /// The walk leaves the revision: through `via`, or by the path's own `..` when `None`.
    Outside { via: Option<Link> },
    /// More than [`MAX_LINKS`] links: `link` is the one that went over.
    Loop { link: Rel },
}

/// `rel` joined with `/`, through the escaping of [`names`] (`.` for the root).
pub fn show(rel: &[OsString]) -> String {
    if rel.is_empty() {
        return ".".into();
    }
    let bytes: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
    names::encode(&bytes.join(&b'/')).into_owned()
}

/// The components of a path text: empty and `.` ones dropped, `..` kept.
pub fn parts(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Walks `path` (relative; a leading `/` is ignored) from the real directory `start` of the
/// revision. `follow_last`: whether a symlink in the last component is followed too.
/// `node` answers what stands at a path of the revision (see the module invariant).
pub fn resolve<E>(
    start: &[OsString],
    path: &[u8],
    follow_last: bool,
    node: &mut dyn FnMut(&[OsString]) -> Result<Node, E>,
) -> Result<Resolved, E> {
    let mut cur: Rel = start.to_vec();
    let mut followed: Vec<Link> = Vec::new();
    // Components still to walk, the next one last, each with the link whose text it came from.
    let mut pending: Vec<(Vec<u8>, Option<usize>)> =
        parts(path).rev().map(|c| (c.to_vec(), None)).collect();
    while let Some((comp, origin)) = pending.pop() {
        if comp == b".." {
            if cur.pop().is_none() {
                return Ok(Resolved::Outside {
                    via: origin.map(|i| followed[i].clone()),
                });
            }
            continue;
        }
        cur.push(OsString::from_vec(comp));
        let last = pending.is_empty();
        match node(&cur)? {
            Node::Dir => {}
            Node::Symlink(target) if !last || follow_last => {
                let link = Link {
                    at: cur.clone(),
                    target,
                };
                if followed.len() >= MAX_LINKS {
                    return Ok(Resolved::Loop { link: link.at });
                }
                if link.target.first() == Some(&b'/') {
                    return Ok(Resolved::Outside { via: Some(link) });
                }
                if link.target.is_empty() {
                    // The kernel answers ENOENT for an empty link text.
                    return Ok(Resolved::Inside {
                        real: cur,
                        node: Node::Missing,
                    });
                }
                cur.pop();
                let i = followed.len();
                pending.extend(parts(&link.target).rev().map(|c| (c.to_vec(), Some(i))));
                followed.push(link);
            }
            n if last => return Ok(Resolved::Inside { real: cur, node: n }),
            // A file (or nothing) where a directory is needed.
            _ => {
                return Ok(Resolved::Inside {
                    real: cur,
                    node: Node::Missing,
                })
            }
        }
    }
    Ok(Resolved::Inside {
        real: cur,
        node: Node::Dir,
    })
}

#[cfg(test)]
mod tests;
