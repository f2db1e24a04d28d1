//! `validate`: a bundle (directory, or tar / tgz / zip archive) -> a short summary of what a
//! deployment would do, or every problem found.
//!
//! Invariants: nothing is extracted or written. The bundle is read by the deployment's own
//! unpack code ([`bundle::list_bundle`]: the same type detection, name normalisation,
//! refusals, size limits and top-level-directory strip rule, feeding a listing instead of the
//! writer), its appspec is found by the same rule ([`appspec::choose_appspec`]) and read
//! under the same size limit ([`appspec::appspec_text`]), so `validate` and a deployment
//! cannot judge a bundle differently.

use std::path::Path;

use crate::appspec::{self, parse_detailed, AppSpec};
use crate::bundle::{self, BundleError, Listed, Node, UnpackOptions};

/// The appspec size limit every reader applies.
pub use crate::appspec::MAX_APPSPEC_BYTES;

/// The outcome of validating one bundle. `ok` drives the exit code (the CLI maps it to 0/1);
/// `crate::cmd::validate::render` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateReport {
    pub ok: bool,
    /// The bundle as given.
    pub bundle: String,
    /// The appspec's path inside the bundle, when one was found.
    pub appspec: Option<String>,
    pub spec: Option<AppSpec>,
    pub problems: Vec<String>,
    /// Things that will work but deserve a look (unknown keys, scripts not executable …).
    pub warnings: Vec<String>,
}

impl ValidateReport {
    /// A report of one problem that stopped the check (nothing else is known of the bundle).
    pub fn failed(bundle: &Path, problem: String) -> Self {
        Self {
            ok: false,
            bundle: bundle.display().to_string(),
            appspec: None,
            spec: None,
            problems: vec![problem],
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File {
        executable: bool,
    },
    Dir,
    /// A FIFO, socket or device, a loop of links, or a last-component link leading out of
    /// the revision (installed as a link, never run as a script).
    Other,
}

/// What a bundle holds, as far as validation cares.
trait BundleView {
    /// The kind of the object at `rel` (a normalised relative path; "" is the root).
    fn kind(&self, rel: &str) -> Option<Kind>;
}

impl BundleView for Listed {
    /// Links are judged as the deployment judges them (`crate::links`): followed only while
    /// they stay inside the bundle. A link leading out is `Other` when it is the last
    /// component and absent when the path goes on through it (the install refuses that).
    fn kind(&self, rel: &str) -> Option<Kind> {
        use crate::links::{Node as L, Resolved};
        match resolve_listed(self, rel.as_bytes(), true) {
            Resolved::Inside { node: L::Dir, .. } => Some(Kind::Dir),
            Resolved::Inside {
                real,
                node: L::File,
            } => {
                // A member without a Unix mode (a zip made on Windows) is made executable by
                // the agent before it runs; only an explicit mode without x bits is worth a
                // word.
                let mode = match self.entries.get(&real) {
                    Some(Node::File { mode }) => *mode,
                    _ => None,
                };
                Some(Kind::File {
                    executable: mode.is_none_or(|m| m & 0o111 != 0),
                })
            }
            Resolved::Inside {
                node: L::Missing, ..
            } => None,
            Resolved::Inside { .. } | Resolved::Loop { .. } => Some(Kind::Other),
            Resolved::Outside { .. } => match resolve_listed(self, rel.as_bytes(), false) {
                Resolved::Inside {
                    node: L::Symlink(_),
                    ..
                } => Some(Kind::Other),
                _ => None,
            },
        }
    }
}

/// Where `path` leads inside a listed bundle, by the same walk as on disk.
fn resolve_listed(listed: &Listed, path: &[u8], follow_last: bool) -> crate::links::Resolved {
    use crate::links::Node as L;
    let mut node = |rel: &[std::ffi::OsString]| -> Result<L, std::convert::Infallible> {
        Ok(match listed.entries.get(rel) {
            None if rel.is_empty() => L::Dir,
            None => L::Missing,
            Some(Node::Dir) => L::Dir,
            Some(Node::File { .. }) => L::File,
            Some(Node::Symlink { target }) => L::Symlink(target.clone()),
        })
    };
    match crate::links::resolve(&[], path, follow_last, &mut node) {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// `./a//b/` -> `a/b`; `.` components dropped. `None` for names that climb out (`..`) or
/// are absolute: they cannot be part of a bundle.
fn normalise(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The problem text of a bundle the deployment would refuse: the same words as the
/// deployment's error, without the archive dir a deployment would have written to.
fn bundle_problem(path: &Path, e: &BundleError) -> String {
    match e {
        BundleError::Refused {
            bundle,
            entry,
            reason,
            ..
        } => format!("bundle {}: entry \"{entry}\" refused: {reason}", bundle.display()),
        BundleError::TooLarge {
            bundle,
            entry,
            limit,
            ..
        } => format!(
            "bundle {}: entry \"{entry}\" takes the unpacked size past the limit of {limit} bytes (archive_max_extraction_size)",
            bundle.display()
        ),
        BundleError::NoSpace {
            bundle,
            entry,
            space,
        } => {
            let at = if entry.is_empty() {
                String::new()
            } else {
                format!("entry \"{entry}\": ")
            };
            format!("bundle {}: {at}{space}", bundle.display())
        }
        BundleError::Read { entry, source, .. } if entry.is_empty() => {
            format!("cannot read {}: {source}", path.display())
        }
        BundleError::Malformed { .. } | BundleError::Read { .. } | BundleError::Zip { .. } => {
            let label = archive_label(path);
            format!("{} is a damaged {label} archive: {e}", path.display())
        }
        BundleError::Unsupported { what, .. } if what.starts_with("not a bundle") => {
            format!("{} is {what}", path.display())
        }
        other => other.to_string(),
    }
}

/// "tar", "tgz" or "zip" by the bundle's first bytes, for messages.
fn archive_label(path: &Path) -> &'static str {
    use std::io::Read;
    let mut head = Vec::new();
    let _ = std::fs::File::open(path).and_then(|f| f.take(512).read_to_end(&mut head));
    match bundle::sniff(&head) {
        bundle::Content::Gzip => "tgz",
        bundle::Content::Zip => "zip",
        _ => "tar",
    }
}

/// Validates the bundle at `path` with the appspec named `appspec_name` (`-A`), else
/// `appspec.yml`, else `appspec.yaml`, under the built-in unpack limits and without measuring
/// free space (see [`validate_bundle`] for a host's own settings).
pub fn validate_path(path: &Path, appspec_name: Option<&str>) -> ValidateReport {
    let opts = UnpackOptions {
        reserve: None,
        ..UnpackOptions::from_config(&crate::config::Config::default(), false)
    };
    validate_bundle(path, appspec_name, &opts, None)
}

/// Validates the bundle at `path` as a deployment with `opts` would unpack it; with a reserve
/// in `opts`, free space is measured on the file system of `root_dir`.
pub fn validate_bundle(
    path: &Path,
    appspec_name: Option<&str>,
    opts: &UnpackOptions,
    root_dir: Option<&Path>,
) -> ValidateReport {
    let candidates = appspec::candidate_names(appspec_name);
    let listed = match bundle::list_bundle(path, opts, root_dir, &candidates) {
        Ok(l) => l,
        Err(e) => return ValidateReport::failed(path, bundle_problem(path, &e)),
    };
    let mut walk = |name: &[u8]| Ok(resolve_listed(&listed, name, true));
    let (rel, real) = match appspec::locate_appspec(path, appspec_name, &mut walk) {
        Ok(found) => found,
        Err(crate::appspec::AppSpecLocateError::NotFound { .. }) => {
            let tried = candidates.join(", ");
            let place = if path.is_dir() { "bundle" } else { "archive" };
            let msg = format!("no AppSpec file found in the {place}: tried {tried}");
            return ValidateReport::failed(path, msg);
        }
        Err(e) => return ValidateReport::failed(path, e.to_string()),
    };
    let rel = rel.as_str();
    let kept = match listed.texts.get(&real) {
        Some(t) => t.clone(),
        // A link to a file inside the revision that is not a candidate name itself: read
        // that file's bytes in a second pass.
        None => {
            let real_name = crate::links::show(&real);
            match bundle::list_bundle(path, opts, None, &[real_name.as_str()]) {
                Ok(again) => again.texts.get(&real).cloned().unwrap_or_default(),
                Err(e) => return ValidateReport::failed(path, bundle_problem(path, &e)),
            }
        }
    };
    let (bytes, len) = kept;
    let text = match appspec::appspec_text(rel, bytes, len) {
        Ok(t) => t,
        Err(e) => {
            let mut r = ValidateReport::failed(path, e.to_string());
            r.appspec = Some(rel.to_string());
            return r;
        }
    };
    let name = rel.to_string();
    let mut warnings = Vec::new();
    let mut report = ValidateReport {
        ok: false,
        bundle: path.display().to_string(),
        appspec: Some(name.clone()),
        spec: None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    match parse_detailed(&name, &text) {
        Err(errs) => report.problems = errs.iter().map(ToString::to_string).collect(),
        Ok(parsed) => {
            warnings.extend(parsed.warnings.iter().map(ToString::to_string));
            check_against_bundle(
                &parsed.spec,
                &name,
                &listed,
                &mut report.problems,
                &mut warnings,
            );
            report.spec = Some(parsed.spec);
        }
    }
    report.warnings = warnings;
    report.ok = report.problems.is_empty();
    report
}

/// Every file source and hook script named by the appspec must be in the bundle.
fn check_against_bundle(
    spec: &AppSpec,
    file: &str,
    view: &dyn BundleView,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let at = |line: usize, col: usize, field: &str| format!("{file}:{line}:{col}: {field}");
    for (i, f) in spec.files.iter().enumerate() {
        let rel = normalise(f.source.trim_start_matches('/')).unwrap_or_default();
        if view.kind(&rel).is_none() {
            let place = at(f.pos.line, f.pos.col, &format!("files[{i}].source"));
            problems.push(format!(
                "{place}: {:?} does not exist in the bundle",
                f.source
            ));
        }
    }
    for (i, p) in spec.permissions.iter().enumerate() {
        let related = spec.files.iter().any(|f| {
            let d = f.destination.trim_end_matches('/');
            let o = p.object.trim_end_matches('/');
            let under =
                |a: &str, b: &str| a == b || b.is_empty() || a.starts_with(&format!("{b}/"));
            under(o, d) || under(d, o)
        });
        if !related {
            let place = at(p.pos.line, p.pos.col, &format!("permissions[{i}].object"));
            warnings.push(format!(
                "{place}: {:?} is not at, above or below any files destination; permissions only apply to what this deployment installs, so it will change nothing",
                p.object
            ));
        }
    }
    for (event, scripts) in &spec.hooks.0 {
        for (i, s) in scripts.iter().enumerate() {
            let place = at(
                s.pos.line,
                s.pos.col,
                &format!("hooks.{event}[{i}].location"),
            );
            let rel = normalise(s.location.trim_start_matches('/')).unwrap_or_default();
            match view.kind(&rel) {
                None => problems.push(format!("{place}: {:?} does not exist in the bundle", s.location)),
                Some(Kind::Dir) => problems.push(format!("{place}: {:?} is a directory, not a script", s.location)),
                Some(Kind::Other) => problems.push(format!("{place}: {:?} is not a regular file", s.location)),
                Some(Kind::File { executable: false }) => warnings.push(format!(
                    "{place}: {:?} is not executable; the agent will make it executable before running it",
                    s.location
                )),
                Some(Kind::File { .. }) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalise("./a//b/"), Some("a/b".into()));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("/etc/x"), None);
    }
}
