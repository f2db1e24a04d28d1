//! Adapter: finding and reading the appspec file of an unpacked bundle. The only part of
//! `appspec` that touches the disk; everything it reads goes through the pure [`super::parse`].
//!
//! Invariant: the appspec must be a regular file inside the revision. Its name is walked
//! with [`crate::links`] (lstat and readlink only); a name that leads outside the revision
//! (an absolute link, a `..` climbing out, a chain of links ending outside) or to something
//! that is not a regular file is refused before anything is opened, and the file found is
//! opened with `O_NOFOLLOW`, so no host file is ever read or quoted as an appspec.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::{AppSpecError, AppSpecErrors, AppSpecLocateError};
use super::model::AppSpec;
use crate::links::{disk::Revision, Node, Rel, Resolved};

/// The names tried, in order, when no custom name is given.
pub const APPSPEC_DEFAULT_NAMES: [&str; 2] = ["appspec.yml", "appspec.yaml"];

/// Larger appspecs are refused rather than read into memory, by every reader (Install, the
/// hooks, `validate`).
pub const MAX_APPSPEC_BYTES: u64 = 16 * 1024 * 1024;

/// The names tried, in order: the custom name when given (`-A`), else `appspec.yml`, else
/// `appspec.yaml`.
pub fn candidate_names(custom: Option<&str>) -> Vec<&str> {
    match custom {
        Some(name) => vec![name],
        None => APPSPEC_DEFAULT_NAMES.to_vec(),
    }
}

/// The appspec of `bundle_root`: the custom name when given (`-A`), else `appspec.yml`, else
/// `appspec.yaml`. The same rule serves the Install step, the hooks and `validate` (the
/// official agent's hooks never fall back to `appspec.yaml`; ours do, so every step reads
/// the same file). Returns where the file is, with no symbolic link below `bundle_root`: a
/// link to a regular file inside the revision is allowed and resolved; a name that leads
/// anywhere else is refused without opening it (a missing name or a directory is skipped).
pub fn find_appspec(
    bundle_root: &Path,
    custom: Option<&str>,
) -> Result<PathBuf, AppSpecLocateError> {
    let rev = Revision::new(bundle_root);
    let mut walk = |name: &[u8]| rev.resolve(name, true);
    locate_appspec(bundle_root, custom, &mut walk).map(|(_, real)| rev.join(&real))
}

/// The locating rule over any view of a revision (a directory on disk, or a bundle listed
/// without unpacking it): `walk` resolves a name through the revision's links
/// ([`crate::links::resolve`]). Returns the name that matched and where it really is.
pub fn locate_appspec(
    bundle_root: &Path,
    custom: Option<&str>,
    walk: &mut dyn FnMut(&[u8]) -> std::io::Result<Resolved>,
) -> Result<(String, Rel), AppSpecLocateError> {
    let names = candidate_names(custom);
    for name in &names {
        let resolved = walk(name.as_bytes()).map_err(|e| AppSpecLocateError::Inspect {
            bundle: bundle_root.to_path_buf(),
            name: name.to_string(),
            source: e.into(),
        })?;
        let refuse = |what| AppSpecLocateError::NotRegular {
            bundle: bundle_root.to_path_buf(),
            name: name.to_string(),
            what,
        };
        match resolved {
            Resolved::Inside {
                real,
                node: Node::File,
            } => return Ok((name.to_string(), real)),
            Resolved::Inside {
                node: Node::Missing | Node::Dir,
                ..
            } => {}
            Resolved::Inside {
                node: Node::Special,
                ..
            } => return Err(refuse("a FIFO, socket or device")),
            Resolved::Inside {
                node: Node::Symlink(_),
                ..
            }
            | Resolved::Loop { .. } => return Err(refuse("a loop of symbolic links")),
            Resolved::Outside { via } => {
                return Err(AppSpecLocateError::LeavesRevision {
                    bundle: bundle_root.to_path_buf(),
                    name: name.to_string(),
                    link: via.map_or_else(|| "..".into(), |l| l.describe()),
                })
            }
        }
    }
    Err(AppSpecLocateError::NotFound {
        bundle: bundle_root.to_path_buf(),
        tried: names.iter().map(|n| bundle_root.join(n)).collect(),
    })
}

/// Reads and parses the appspec at `path` (as [`find_appspec`] returned it); a read failure
/// is reported as an error of that file. A symbolic link or a non-regular file at `path` is
/// refused, never opened through.
pub fn parse_file(path: &Path) -> Result<AppSpec, AppSpecErrors> {
    let name = crate::names::path(path).into_owned();
    let (bytes, len) =
        read_regular(path).map_err(|e| single(&name, format!("cannot read the file: {e}")))?;
    let text = appspec_text(&name, bytes, len)?;
    super::parse(&name, &text)
}

/// At most [`MAX_APPSPEC_BYTES`] + 1 bytes of the regular file at `path`, and its size.
fn read_regular(path: &Path) -> std::io::Result<(Vec<u8>, u64)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    f.take(MAX_APPSPEC_BYTES + 1).read_to_end(&mut bytes)?;
    Ok((bytes, meta.len()))
}

/// PURE: an appspec's bytes as text, refused when the file (`len` bytes; `bytes` holds at
/// most [`MAX_APPSPEC_BYTES`] + 1 of them) is too large or not UTF-8. Every reader goes
/// through here, so they refuse alike and say so alike.
pub fn appspec_text(name: &str, bytes: Vec<u8>, len: u64) -> Result<String, AppSpecErrors> {
    let len = len.max(bytes.len() as u64);
    if len > MAX_APPSPEC_BYTES {
        return Err(single(
            name,
            format!("the file is {len} bytes; an appspec may be at most {MAX_APPSPEC_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| single(name, format!("not UTF-8 text: {e}")))
}

fn single(file: &str, message: String) -> AppSpecErrors {
    AppSpecErrors(vec![AppSpecError {
        file: file.to_string(),
        line: None,
        col: None,
        field: String::new(),
        message,
    }])
}
