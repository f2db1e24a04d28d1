//! Every citation in code (both crates) and documents resolves: a `docs/<path>` names a file or directory
//! of the repository, a `docs/<page>.md#<anchor>` names an anchor of that page (an
//! `<a id="...">` or a heading), and so do relative Markdown links between documents. Old
//! citations of a behaviour document that is not in the repository ("spec 7.4", "§8.5",
//! "section 10", a bare "quirk 8") are refused: docs/behaviour/ describes that behaviour
//! and docs/behaviour/citation-map.tsv says where each old number went.
//!
//! Plain Rust over the files of the checkout; no network.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// What is scanned, relative to the repository root.
const ROOTS: &[&str] = &[
    "src",
    "core/src",
    "tests",
    "docs",
    "README.md",
    "ARCHITECTURE.md",
];

/// Files that quote the old citation forms on purpose (to explain them).
const OLD_FORMS_QUOTED: &[&str] = &[
    "docs/behaviour/README.md",
    "docs/behaviour/citation-map.tsv",
];

/// This test's own examples of bad citations.
const SELF: &str = "tests/lib_docs_resolve.rs";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text_files(root: &Path, rel: &str, out: &mut Vec<(String, String)>) {
    let path = root.join(rel);
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        for name in entries {
            text_files(root, &format!("{rel}/{name}"), out);
        }
    } else if let Ok(bytes) = fs::read(&path) {
        // Binary fixtures (archives, keys in DER) cite nothing.
        if let Ok(text) = String::from_utf8(bytes) {
            out.push((rel.to_string(), text));
        }
    }
}

/// `*` too: "docs/compatibility-*.md" names a set of pages, which must not be empty.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '*')
}

fn is_anchor_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// `(path, anchor)` of every `docs/...` citation in `text`.
fn docs_citations(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("docs/") {
        let start = from + at;
        from = start + 5;
        if text[..start].chars().next_back().is_some_and(is_path_char) {
            continue; // part of a longer path (`fuzz/docs/`, `../docs/`)
        }
        let rest = &text[start..];
        let end = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
        // Sentence punctuation after a path is not part of it.
        let path = rest[..end].trim_end_matches(['.', ',', '-']);
        let anchor = rest[path.len()..].strip_prefix('#').map(|a| {
            let n = a.find(|c: char| !is_anchor_char(c)).unwrap_or(a.len());
            a[..n].trim_end_matches('-').to_string()
        });
        found.push((path.to_string(), anchor.filter(|a| !a.is_empty())));
    }
    found
}

/// Targets of relative Markdown links `[text](target)`.
fn markdown_links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("](") {
        let start = from + at + 2;
        from = start;
        let Some(len) = text[start..].find(')') else {
            break;
        };
        let target = &text[start..start + len];
        // Only plain relative paths: URLs, `mailto:` and bracketed code such as a grammar's
        // `[.c<b>](,...)` are not links to check.
        if target.is_empty() || !target.chars().all(|c| is_path_char(c) || c == '#') {
            continue;
        }
        found.push(target.to_string());
    }
    found
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn heading_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors_of(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('#') {
            anchors.insert(heading_slug(h.trim_start_matches('#')));
        }
        let mut rest = line;
        while let Some(at) = rest.find("<a id=\"").or_else(|| rest.find("<a name=\"")) {
            let value = &rest[at..];
            let value = &value[value.find('"').map_or(0, |q| q + 1)..];
            let end = value.find('"').unwrap_or(value.len());
            anchors.insert(value[..end].to_string());
            rest = &value[end..];
        }
    }
    anchors
}

/// A citation problem: where it is and what is wrong.
fn check_target(
    root: &Path,
    file: &Path,
    anchor: Option<&str>,
    cache: &mut HashMap<PathBuf, BTreeSet<String>>,
) -> Option<String> {
    let full = root.join(file);
    let name = file.to_string_lossy();
    if let Some((prefix, suffix)) = name.split_once('*') {
        let (dir, stem) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let matches = fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(stem) && n.ends_with(suffix) && n.len() >= stem.len() + suffix.len()
            });
        return (!matches).then(|| format!("{name} matches no file"));
    }
    if !full.exists() {
        return Some(format!("{} does not exist", file.display()));
    }
    let anchor = anchor?;
    if full.is_dir() {
        return Some(format!("{} is a directory, not a page", file.display()));
    }
    let anchors = cache
        .entry(full.clone())
        .or_insert_with(|| anchors_of(&fs::read_to_string(&full).unwrap_or_default()));
    (!anchors.contains(anchor)).then(|| format!("{} has no anchor #{anchor}", file.display()))
}

/// Lexically normalised `base/rel` (`..` and `.` resolved), relative to the repository.
fn join_relative(base: &Path, rel: &str) -> PathBuf {
    let mut parts: Vec<String> = base
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p.to_string()),
        }
    }
    parts.iter().collect()
}

/// Old citation forms on `line`: "spec 7.4", "Spec section 6", "§8.5", and "quirk N"
/// without a link to its anchor on the same line.
fn old_forms(line: &str) -> Vec<String> {
    let lower = line.to_lowercase();
    let mut found = Vec::new();
    let digit_after = |s: &str| s.chars().next().is_some_and(|c| c.is_ascii_digit());
    for (i, _) in lower.match_indices("spec ") {
        if lower[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        {
            continue;
        }
        let after = &lower[i + 5..];
        let after = after.strip_prefix("section ").unwrap_or(after);
        if digit_after(after) {
            found.push(line[i..].chars().take(16).collect());
        }
    }
    for (i, _) in line.match_indices('§') {
        // "RFC 5652 §5" cites an RFC, not the behaviour document.
        let rfc = line[..i].trim_end().ends_with(|c: char| c.is_ascii_digit());
        if !rfc && digit_after(line[i + '§'.len_utf8()..].trim_start()) {
            found.push(line[i..].chars().take(10).collect());
        }
    }
    for (i, _) in lower.match_indices("section ") {
        let before = lower[..i].trim_end();
        // "spec section 6" is caught above.
        if digit_after(&lower[i + 8..]) && before.ends_with('(') {
            found.push(line[i..].chars().take(12).collect());
        }
    }
    for (i, _) in lower.match_indices("quirk ") {
        let n: String = lower[i + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !n.is_empty() && !line.contains(&format!("quirk-{n}")) {
            found.push(line[i..].chars().take(10).collect());
        }
    }
    found
}

#[test]
fn every_citation_resolves_and_no_old_form_is_left() {
    let root = repo();
    let mut files = Vec::new();
    for r in ROOTS {
        text_files(&root, r, &mut files);
    }
    assert!(
        files.len() > 100,
        "scanned only {} files: wrong root {}?",
        files.len(),
        root.display()
    );
    let mut cache = HashMap::new();
    let mut problems = Vec::new();
    let mut resolved = 0usize;
    for (rel, text) in files.iter().filter(|(rel, _)| rel != SELF) {
        for (n, line) in text.lines().enumerate() {
            let at = format!("{rel}:{}", n + 1);
            for (path, anchor) in docs_citations(line) {
                match check_target(&root, Path::new(&path), anchor.as_deref(), &mut cache) {
                    Some(p) => problems.push(format!("{at}: cites {path}: {p}")),
                    None => resolved += 1,
                }
            }
            if rel.ends_with(".md") {
                let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
                for target in markdown_links(line) {
                    let (file, anchor) = match target.split_once('#') {
                        Some((f, a)) => (f, Some(a)),
                        None => (target.as_str(), None),
                    };
                    let file = if file.is_empty() {
                        PathBuf::from(rel)
                    } else {
                        join_relative(dir, file)
                    };
                    match check_target(&root, &file, anchor, &mut cache) {
                        Some(p) => problems.push(format!("{at}: links {target}: {p}")),
                        None => resolved += 1,
                    }
                }
            }
            if !OLD_FORMS_QUOTED.contains(&rel.as_str()) {
                for old in old_forms(line) {
                    problems.push(format!(
                        "{at}: old citation \"{old}\": cite docs/behaviour/<page>.md#<anchor> \
                         (docs/behaviour/citation-map.tsv)"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} citation problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The scan found the citations this repository is known to have.
    assert!(resolved > 100, "only {resolved} citations found");
}

#[test]
fn the_checks_catch_what_they_are_for() {
    let root = repo();
    let mut cache = HashMap::new();
    let missing_page = Path::new("docs/behaviour/no-such-page.md");
    assert!(check_target(&root, missing_page, None, &mut cache).is_some());
    let page = Path::new("docs/behaviour/hooks.md");
    assert!(check_target(&root, page, Some("no-such-anchor"), &mut cache).is_some());
    assert!(check_target(&root, page, Some("log-tail"), &mut cache).is_none());
    assert_eq!(
        docs_citations("see (docs/behaviour/hooks.md#log-tail), and docs/adr/."),
        vec![
            (
                "docs/behaviour/hooks.md".to_string(),
                Some("log-tail".to_string())
            ),
            ("docs/adr/".to_string(), None)
        ]
    );
    assert_eq!(old_forms("the tail (spec 10.6)").len(), 1);
    assert_eq!(old_forms("Spec section 6: layout").len(), 1);
    assert_eq!(old_forms("refused (§8.5)").len(), 1);
    assert!(old_forms("SignedData (RFC 5652 §5)").is_empty());
    let glob = Path::new("docs/compatibility-*.md");
    assert!(check_target(&root, glob, None, &mut cache).is_none());
    let no_match = Path::new("docs/no-such-*.md");
    assert!(check_target(&root, no_match, None, &mut cache).is_some());
    assert_eq!(old_forms("kept (quirk 8)").len(), 1);
    assert!(old_forms("kept (docs/behaviour/official-quirks.md#quirk-8)").is_empty());
    assert!(old_forms("the deployment spec names it").is_empty());
    assert_eq!(
        heading_slug(" 11. Off-by-one in the log tail"),
        "11-off-by-one-in-the-log-tail"
    );
}
