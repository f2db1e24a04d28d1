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
use crate::links::{disk::Revision, Node, Resolved};

/// The names tried, in order, when no custom name is given.
pub const APPSPEC_DEFAULT_NAMES: [&str; 2] = ["appspec.yml", "appspec.yaml"];

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
    let names: Vec<&str> = match custom {
        Some(name) => vec![name],
        None => APPSPEC_DEFAULT_NAMES.to_vec(),
    };
    let rev = Revision::new(bundle_root);
    for name in &names {
        let resolved =
            rev.resolve(name.as_bytes(), true)
                .map_err(|e| AppSpecLocateError::Inspect {
                    bundle: bundle_root.to_path_buf(),
                    name: name.to_string(),
                    message: e.to_string(),
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
            } => return Ok(rev.join(&real)),
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
    match read_regular(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => super::parse(&name, &text),
            Err(e) => Err(single(&name, format!("not UTF-8 text: {e}"))),
        },
        Err(e) => Err(single(&name, format!("cannot read the file: {e}"))),
    }
}

fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
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
