//! `validate`: a bundle (directory, or tar / tgz / zip archive) -> a short summary of what a
//! deployment would do, or every problem found.
//!
//! Invariants: nothing is extracted or written; archives are read in one streaming pass that
//! records entry names and kinds and keeps only the appspec candidates' text (bounded size).
//! The archive type is detected from magic bytes, never from the file name. Archives get the
//! same top-level-directory strip rule as a deployment (a single top directory holding an
//! entry whose name contains "appspec", any case), so what is checked is what would install.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::appspec::{find_appspec, parse_detailed, summary, AppSpec, APPSPEC_DEFAULT_NAMES};

/// Larger appspecs are refused rather than read into memory.
pub const MAX_APPSPEC_BYTES: u64 = 1024 * 1024;

/// The outcome of validating one bundle. `ok` drives the exit code (the CLI maps it to 0/1).
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
    fn failed(bundle: &Path, problem: String) -> Self {
        Self {
            ok: false,
            bundle: bundle.display().to_string(),
            appspec: None,
            spec: None,
            problems: vec![problem],
            warnings: Vec::new(),
        }
    }

    /// The text the `validate` command prints: a short plan when valid, else every problem.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let appspec = self.appspec.as_deref().unwrap_or("appspec");
        match (&self.spec, self.ok) {
            (Some(spec), true) => {
                let _ = writeln!(out, "{} in {}: valid", appspec, self.bundle);
                out.push_str(&summary(spec));
            }
            _ => {
                let n = self.problems.len();
                let s = if n == 1 { "" } else { "s" };
                let _ = writeln!(out, "{} in {}: {n} problem{s}", appspec, self.bundle);
                for p in &self.problems {
                    let _ = writeln!(out, "  error: {p}");
                }
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File { executable: bool },
    Dir,
    Symlink,
    Other,
}

/// What a bundle holds, as far as validation cares.
trait BundleView {
    /// The kind of the object at `rel` (a normalised relative path; "" is the root).
    fn kind(&self, rel: &str) -> Option<Kind>;
}

struct DirView<'a>(&'a Path);

impl BundleView for DirView<'_> {
    /// Links are judged as the deployment judges them (`crate::links`): followed only while
    /// they stay inside the bundle, and nothing outside it is ever looked at. A link leading
    /// out is `Other` when it is the last component (installed as a link, never run as a
    /// script) and absent when the path goes on through it (the install refuses that).
    fn kind(&self, rel: &str) -> Option<Kind> {
        use crate::links::{disk::Revision, Node, Resolved};
        use std::os::unix::fs::PermissionsExt;
        let rev = Revision::new(self.0);
        match rev.resolve(rel.as_bytes(), true).ok()? {
            Resolved::Inside {
                node: Node::Dir, ..
            } => Some(Kind::Dir),
            Resolved::Inside {
                real,
                node: Node::File,
            } => {
                let meta = std::fs::symlink_metadata(rev.join(&real)).ok()?;
                Some(Kind::File {
                    executable: meta.permissions().mode() & 0o111 != 0,
                })
            }
            Resolved::Inside {
                node: Node::Missing,
                ..
            } => None,
            Resolved::Inside { .. } | Resolved::Loop { .. } => Some(Kind::Other),
            Resolved::Outside { .. } => match rev.resolve(rel.as_bytes(), false).ok()? {
                Resolved::Inside {
                    node: Node::Symlink(_),
                    ..
                } => Some(Kind::Other),
                _ => None,
            },
        }
    }
}

/// Entry names of an archive after the strip rule, with implied parent directories.
struct ArchiveView(BTreeMap<String, Kind>);

impl BundleView for ArchiveView {
    fn kind(&self, rel: &str) -> Option<Kind> {
        if rel.is_empty() {
            return Some(Kind::Dir);
        }
        self.0.get(rel).copied()
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

/// Spec §7.4: one top-level entry, a directory, directly holding a name containing
/// "appspec" (any case) -> that directory's name, to be stripped.
fn strip_prefix(entries: &BTreeMap<String, Kind>) -> Option<String> {
    let mut tops = entries.keys().map(|k| k.split('/').next().unwrap_or(k));
    let top = tops.next()?.to_string();
    if tops.any(|t| t != top) || entries.get(&top) != Some(&Kind::Dir) {
        return None;
    }
    let prefix = format!("{top}/");
    let holds_appspec = entries.keys().any(|k| {
        k.strip_prefix(&prefix)
            .is_some_and(|child| !child.contains('/') && child.to_lowercase().contains("appspec"))
    });
    holds_appspec.then_some(top)
}

/// The entries under `prefix`, renamed without it.
fn strip<V>(m: BTreeMap<String, V>, prefix: &str) -> BTreeMap<String, V> {
    m.into_iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v)))
        .collect()
}

struct Archive {
    view: ArchiveView,
    /// Text of the entries that may be the appspec, by name after stripping.
    texts: BTreeMap<String, Result<String, String>>,
    warnings: Vec<String>,
}

/// Whether an entry could be the appspec: a candidate name at the top or one level down
/// (before the strip rule is known).
fn is_candidate(name: &str, candidates: &[&str]) -> bool {
    candidates.iter().any(|c| {
        name == *c
            || name
                .strip_suffix(c)
                .and_then(|rest| rest.strip_suffix('/'))
                .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'))
    })
}

fn read_text(reader: impl Read, size: u64) -> Result<String, String> {
    if size > MAX_APPSPEC_BYTES {
        return Err(format!(
            "the file is {size} bytes; an appspec may be at most {MAX_APPSPEC_BYTES}"
        ));
    }
    let mut bytes = Vec::new();
    reader
        .take(MAX_APPSPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it from the archive: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// Collects entries (raw names) into an [`Archive`], applying the strip rule at the end.
#[derive(Default)]
struct Collector {
    entries: BTreeMap<String, Kind>,
    texts: BTreeMap<String, Result<String, String>>,
    warnings: Vec<String>,
}

impl Collector {
    fn add(
        &mut self,
        raw: &str,
        kind: Kind,
        text: impl FnOnce() -> Result<String, String>,
        candidates: &[&str],
    ) {
        let Some(name) = normalise(raw) else {
            self.warnings.push(format!(
                "archive entry {raw:?} is absolute or climbs out with `..`; it would not be installed"
            ));
            return;
        };
        if name.is_empty() {
            return;
        }
        let mut parent = name.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            self.entries.entry(p.to_string()).or_insert(Kind::Dir);
            parent = p;
        }
        if matches!(kind, Kind::File { .. }) && is_candidate(&name, candidates) {
            self.texts.insert(name.clone(), text());
        }
        self.entries.insert(name, kind);
    }

    fn finish(self) -> Archive {
        let Some(top) = strip_prefix(&self.entries) else {
            return Archive {
                view: ArchiveView(self.entries),
                texts: self.texts,
                warnings: self.warnings,
            };
        };
        let prefix = format!("{top}/");
        Archive {
            view: ArchiveView(strip(self.entries, &prefix)),
            texts: strip(self.texts, &prefix),
            warnings: self.warnings,
        }
    }
}

fn read_tar(reader: impl Read, candidates: &[&str]) -> io::Result<Archive> {
    let mut archive = tar::Archive::new(reader);
    let mut c = Collector::default();
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink | tar::EntryType::Link => Kind::Symlink,
            t if t.is_file() => Kind::File {
                executable: header.mode().unwrap_or(0) & 0o111 != 0,
            },
            _ => Kind::Other,
        };
        let name = entry.path()?.to_string_lossy().into_owned();
        let size = entry.size();
        c.add(&name, kind, || read_text(entry, size), candidates);
    }
    Ok(c.finish())
}

fn read_zip(file: File, candidates: &[&str]) -> zip::result::ZipResult<Archive> {
    let mut archive = zip::ZipArchive::new(file)?;
    let mut c = Collector::default();
    for i in 0..archive.len() {
        let entry = archive.by_index(i)?;
        let kind = if entry.is_dir() {
            Kind::Dir
        } else if entry.is_symlink() {
            Kind::Symlink
        } else {
            // Archives made on Windows carry no Unix mode; the agent makes scripts
            // executable anyway, so only an explicit mode without x bits is worth a warning.
            Kind::File {
                executable: entry.unix_mode().is_none_or(|m| m & 0o111 != 0),
            }
        };
        let name = entry.name()?.into_owned();
        let size = entry.size();
        c.add(&name, kind, || read_text(entry, size), candidates);
    }
    Ok(c.finish())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Gzip,
    Zip,
    Tar,
}

/// Detects the archive type from its first bytes.
fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if head.starts_with(b"PK\x03\x04") {
        Some(Format::Zip)
    } else if head.get(257..262) == Some(b"ustar") {
        Some(Format::Tar)
    } else {
        None
    }
}

fn open_archive(path: &Path, candidates: &[&str]) -> Result<Archive, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
    let mut head = Vec::new();
    File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(|e| cannot(&e))?;
    let format = sniff(&head).ok_or_else(|| {
        format!(
            "{} is not a bundle: expected a directory or a tar, tgz (gzip) or zip archive",
            path.display()
        )
    })?;
    let file = File::open(path).map_err(|e| cannot(&e))?;
    let broken = |kind: &str, e: &dyn std::fmt::Display| {
        format!("{} is a damaged {kind} archive: {e}", path.display())
    };
    match format {
        Format::Tar => read_tar(file, candidates).map_err(|e| broken("tar", &e)),
        Format::Gzip => {
            read_tar(flate2::read::GzDecoder::new(file), candidates).map_err(|e| broken("tgz", &e))
        }
        Format::Zip => read_zip(file, candidates).map_err(|e| broken("zip", &e)),
    }
}

/// Validates the bundle at `path` (directory or archive) with the appspec named
/// `appspec_name` (`-A`), else `appspec.yml`, else `appspec.yaml`.
pub fn validate_path(path: &Path, appspec_name: Option<&str>) -> ValidateReport {
    let candidates: Vec<&str> = match appspec_name {
        Some(n) => vec![n],
        None => APPSPEC_DEFAULT_NAMES.to_vec(),
    };
    let (name, text, view, mut warnings): (String, String, Box<dyn BundleView>, Vec<String>) =
        if path.is_dir() {
            let found = match find_appspec(path, appspec_name) {
                Ok(p) => p,
                Err(e) => return ValidateReport::failed(path, e.to_string()),
            };
            let rel = found
                .strip_prefix(path)
                .unwrap_or(&found)
                .display()
                .to_string();
            let text = match File::open(&found)
                .map_err(|e| e.to_string())
                .and_then(|f| read_text(f, found.metadata().map_or(0, |m| m.len())))
            {
                Ok(t) => t,
                Err(e) => return ValidateReport::failed(path, format!("{rel}: {e}")),
            };
            (rel, text, Box::new(DirView(path)), Vec::new())
        } else {
            let mut archive = match open_archive(path, &candidates) {
                Ok(a) => a,
                Err(e) => return ValidateReport::failed(path, e),
            };
            let found = candidates
                .iter()
                .find_map(|c| archive.texts.remove(*c).map(|t| (c, t)));
            let Some((rel, text)) = found else {
                let tried = candidates.join(", ");
                let msg = format!("no AppSpec file found in the archive: tried {tried}");
                return ValidateReport::failed(path, msg);
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => return ValidateReport::failed(path, format!("{rel}: {e}")),
            };
            (
                rel.to_string(),
                text,
                Box::new(archive.view),
                archive.warnings,
            )
        };

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
                view.as_ref(),
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
                Some(Kind::File { .. } | Kind::Symlink) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[(&str, Kind)]) -> BTreeMap<String, Kind> {
        names.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    const F: Kind = Kind::File { executable: false };

    #[test]
    fn strip_rule() {
        let wrapped = entries(&[("app", Kind::Dir), ("app/APPSPEC.yaml", F), ("app/x", F)]);
        assert_eq!(strip_prefix(&wrapped), Some("app".into()));
        let notes = entries(&[("app", Kind::Dir), ("app/my-appspec-notes", F)]);
        assert_eq!(strip_prefix(&notes), Some("app".into()));
        let deep_only = entries(&[
            ("app", Kind::Dir),
            ("app/sub", Kind::Dir),
            ("app/sub/appspec.yml", F),
        ]);
        assert_eq!(strip_prefix(&deep_only), None);
        let two_tops = entries(&[("app", Kind::Dir), ("app/appspec.yml", F), ("b", F)]);
        assert_eq!(strip_prefix(&two_tops), None);
        let top_file = entries(&[("appspec.yml", F)]);
        assert_eq!(strip_prefix(&top_file), None);
    }

    #[test]
    fn names_and_magic() {
        assert_eq!(normalise("./a//b/"), Some("a/b".into()));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("/etc/x"), None);
        assert!(is_candidate("appspec.yml", &["appspec.yml"]));
        assert!(is_candidate("top/appspec.yml", &["appspec.yml"]));
        assert!(!is_candidate("a/b/appspec.yml", &["appspec.yml"]));
        assert!(!is_candidate("xappspec.yml", &["appspec.yml"]));
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Some(Format::Gzip));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Format::Zip));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Format::Tar));
        assert_eq!(sniff(b"version: 0.0"), None);
    }
}
