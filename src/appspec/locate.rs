//! Adapter: finding and reading the appspec file of an unpacked bundle. The only part of
//! `appspec` that touches the disk; everything it reads goes through the pure [`super::parse`].

use std::path::{Path, PathBuf};

use super::error::{AppSpecError, AppSpecErrors, AppSpecLocateError};
use super::model::AppSpec;

/// The names tried, in order, when no custom name is given.
pub const APPSPEC_DEFAULT_NAMES: [&str; 2] = ["appspec.yml", "appspec.yaml"];

/// The appspec of `bundle_root`: the custom name when given (`-A`), else `appspec.yml`, else
/// `appspec.yaml`. The same rule serves the Install step and the hooks (the official agent's
/// hooks never fall back to `appspec.yaml`; ours do, so both steps read the same file).
pub fn find_appspec(
    bundle_root: &Path,
    custom: Option<&str>,
) -> Result<PathBuf, AppSpecLocateError> {
    let names: Vec<&str> = match custom {
        Some(name) => vec![name],
        None => APPSPEC_DEFAULT_NAMES.to_vec(),
    };
    let tried: Vec<PathBuf> = names.iter().map(|n| bundle_root.join(n)).collect();
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(AppSpecLocateError {
            bundle: bundle_root.to_path_buf(),
            tried,
        }),
    }
}

/// Reads and parses the appspec at `path`; a read failure is reported as an error of that file.
pub fn parse_file(path: &Path) -> Result<AppSpec, AppSpecErrors> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => super::parse(&name, &text),
            Err(e) => Err(single(&name, format!("not UTF-8 text: {e}"))),
        },
        Err(e) => Err(single(&name, format!("cannot read the file: {e}"))),
    }
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
