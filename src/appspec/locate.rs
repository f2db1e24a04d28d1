//! Adapter: finding and reading the appspec file of an unpacked bundle. The only part of
//! `appspec` that touches the disk; everything it reads goes through the pure [`super::parse`].

use std::path::{Path, PathBuf};

use super::error::{AppSpecError, AppSpecErrors, AppSpecLocateError};
use super::model::AppSpec;

/// The names tried, in order, when no custom name is given.
pub const APPSPEC_DEFAULT_NAMES: [&str; 2] = ["appspec.yml", "appspec.yaml"];

/// Larger appspecs are refused rather than read into memory, by every reader (Install, the
/// hooks, `validate`).
pub const MAX_APPSPEC_BYTES: u64 = 16 * 1024 * 1024;

/// What stands at a candidate name inside the revision, as the locating rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// A regular file (not through a symlink).
    Regular,
    /// Anything else, including a symlink, or nothing.
    NotRegular,
}

/// PURE: the names tried, in order: the custom name when given (`-A`), else `appspec.yml`,
/// else `appspec.yaml`.
pub fn candidate_names(custom: Option<&str>) -> Vec<&str> {
    match custom {
        Some(name) => vec![name],
        None => APPSPEC_DEFAULT_NAMES.to_vec(),
    }
}

/// PURE: the appspec among the candidate names: the first that is a regular file. One rule
/// for a revision on disk ([`find_appspec`]) and a listed archive (`validate`).
pub fn choose_appspec(custom: Option<&str>, what_is: impl Fn(&str) -> Candidate) -> Option<&str> {
    candidate_names(custom)
        .into_iter()
        .find(|n| what_is(n) == Candidate::Regular)
}

/// The appspec of `bundle_root` by [`choose_appspec`]. The same rule serves the Install step
/// and the hooks (the official agent's hooks never fall back to `appspec.yaml`; ours do, so
/// both steps read the same file).
pub fn find_appspec(
    bundle_root: &Path,
    custom: Option<&str>,
) -> Result<PathBuf, AppSpecLocateError> {
    let on_disk = |name: &str| match std::fs::symlink_metadata(bundle_root.join(name)) {
        Ok(m) if m.file_type().is_file() => Candidate::Regular,
        _ => Candidate::NotRegular,
    };
    match choose_appspec(custom, on_disk) {
        Some(found) => Ok(bundle_root.join(found)),
        None => Err(AppSpecLocateError {
            bundle: bundle_root.to_path_buf(),
            tried: candidate_names(custom)
                .iter()
                .map(|n| bundle_root.join(n))
                .collect(),
        }),
    }
}

/// Reads and parses the appspec at `path`; a read failure is reported as an error of that file.
pub fn parse_file(path: &Path) -> Result<AppSpec, AppSpecErrors> {
    use std::io::Read;
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_APPSPEC_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return Err(single(&name, format!("cannot read the file: {e}")));
    }
    let len = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
    let text = appspec_text(&name, bytes, len)?;
    super::parse(&name, &text)
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
