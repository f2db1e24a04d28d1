//! PURE: node tree -> [`AppSpec`], checking every rule of the top level, `files` and `hooks`
//! (permissions live in `permissions.rs`). Problems are collected, never thrown: the result
//! is an `AppSpec` only when no error was recorded.

use super::events::event_name_problem;
use super::model::{AppSpec, FileExistsBehavior, FileMapping, Hooks, Os, Script};
use super::permissions::convert_permissions;
use super::typing::{
    escapes_root, expect_map, expect_seq, expect_text, join, opt_text, parse_bool, Ctx, Fields,
};
use super::yaml::{Document, Node};
use super::DEFAULT_SCRIPT_TIMEOUT_SECS;

/// The longest an event's scripts may take together, and so any one script.
pub const MAX_EVENT_TIMEOUT_SECS: u32 = 3600;

const TOP_KEYS: &[&str] = &[
    "version",
    "os",
    "files",
    "permissions",
    "hooks",
    "file_exists_behavior",
];
const FILE_KEYS: &[&str] = &["source", "destination"];
const SCRIPT_KEYS: &[&str] = &["location", "timeout", "runas", "sudo"];

pub(crate) fn convert(ctx: &mut Ctx, doc: &Document) -> Option<AppSpec> {
    for dup in &doc.duplicate_keys {
        ctx.err(
            dup.second,
            &dup.key,
            format!(
                "duplicate key {:?} (first at line {}); a YAML loader would silently keep only the last one, so merge them",
                dup.key, dup.first.line
            ),
        );
    }
    let empty = match &doc.root {
        None => true,
        Some(root) => root.as_scalar().is_some_and(|t| t.trim().is_empty()),
    };
    let Some(root) = doc.root.as_ref().filter(|_| !empty) else {
        ctx.err_nopos(
            "",
            "the AppSpec file is empty; it must define at least `version: 0.0` and `os: linux`",
        );
        return None;
    };
    let top = expect_map(ctx, root, "", "a mapping with version, os, files, hooks …")?;
    top.warn_unknown(ctx, "", TOP_KEYS);

    check_version(ctx, top);
    let os = convert_os(ctx, top);
    let files = convert_files(ctx, top);
    let permissions = match top.get("permissions") {
        Some(node) => convert_permissions(ctx, node),
        None => Vec::new(),
    };
    let hooks = convert_hooks(ctx, top);
    let file_exists_behavior = convert_feb(ctx, top);
    if !ctx.errors.is_empty() {
        return None;
    }
    Some(AppSpec {
        os: os?,
        files,
        permissions,
        hooks,
        file_exists_behavior,
    })
}

/// `0.0` however written: `0.0`, `0`, `"0.0"`, `0.00`.
fn is_version_zero(text: &str) -> bool {
    let t = text.trim();
    match t.split_once('.') {
        Some((int, frac)) => int == "0" && !frac.is_empty() && frac.bytes().all(|b| b == b'0'),
        None => t == "0",
    }
}

fn check_version(ctx: &mut Ctx, top: Fields<'_>) {
    match top.get("version") {
        None => ctx.err(
            top.pos,
            "version",
            "missing; every AppSpec file starts with `version: 0.0`",
        ),
        Some(node) => {
            if let Some(text) = expect_text(ctx, node, "version", "0.0") {
                if !is_version_zero(&text) {
                    ctx.err(
                        node.pos,
                        "version",
                        format!("expected 0.0 (the only AppSpec version), found {text:?}"),
                    );
                }
            }
        }
    }
}

fn convert_os(ctx: &mut Ctx, top: Fields<'_>) -> Option<Os> {
    let Some(node) = top.get("os") else {
        ctx.err(top.pos, "os", "missing; add `os: linux`");
        return None;
    };
    let text = expect_text(ctx, node, "os", "linux")?;
    match text.trim().to_ascii_lowercase().as_str() {
        "linux" => Some(Os::Linux),
        "windows" => {
            ctx.err(
                node.pos,
                "os",
                "`windows` targets Windows Server instances, but this agent deploys to Linux; use `os: linux`",
            );
            None
        }
        _ => {
            ctx.err(
                node.pos,
                "os",
                format!("expected linux (or windows for the Windows agent), found {text:?}"),
            );
            None
        }
    }
}

fn convert_feb(ctx: &mut Ctx, top: Fields<'_>) -> Option<FileExistsBehavior> {
    let node = top.get("file_exists_behavior")?;
    let text = expect_text(
        ctx,
        node,
        "file_exists_behavior",
        "DISALLOW, OVERWRITE or RETAIN",
    )?;
    let parsed = FileExistsBehavior::parse(&text.trim().to_ascii_uppercase());
    if parsed.is_none() {
        ctx.err(
            node.pos,
            "file_exists_behavior",
            format!("expected DISALLOW, OVERWRITE or RETAIN, found {text:?}"),
        );
    }
    parsed
}

fn convert_files(ctx: &mut Ctx, top: Fields<'_>) -> Vec<FileMapping> {
    let Some(node) = top.get("files") else {
        return Vec::new();
    };
    let what = "a list of `- source: … destination: …` entries";
    let Some(items) = expect_seq(ctx, node, "files", what) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("files[{i}]");
        let Some(f) = expect_map(ctx, item, &path, "a mapping with source and destination") else {
            continue;
        };
        f.warn_unknown(ctx, &path, FILE_KEYS);
        let source = required_text(ctx, f, "source", &path, "a path inside the bundle");
        let destination = required_text(
            ctx,
            f,
            "destination",
            &path,
            "an absolute path on the instance",
        );
        if let (Some(src), Some(node)) = (&source, f.get("source")) {
            if src.trim().is_empty() {
                ctx.err(
                    node.pos,
                    &join(&path, "source"),
                    "empty; write `/` for the whole bundle",
                );
            } else if escapes_root(src) {
                ctx.err(
                    node.pos,
                    &join(&path, "source"),
                    format!("{src:?} climbs out of the bundle with `..`; sources are paths inside the bundle"),
                );
            }
        }
        if let (Some(dst), Some(node)) = (&destination, f.get("destination")) {
            if !dst.starts_with('/') {
                ctx.err(
                    node.pos,
                    &join(&path, "destination"),
                    format!("expected an absolute path such as /opt/app, found {dst:?}"),
                );
            }
        }
        if let (Some(source), Some(destination)) = (source, destination) {
            out.push(FileMapping {
                source,
                destination,
                pos: item.pos,
            });
        }
    }
    out
}

/// A text field that must be present and non-null.
pub(crate) fn required_text(
    ctx: &mut Ctx,
    f: Fields<'_>,
    key: &str,
    path: &str,
    what: &str,
) -> Option<String> {
    if f.get(key).is_none() {
        ctx.err(f.pos, &join(path, key), format!("missing; expected {what}"));
        return None;
    }
    opt_text(ctx, f, key, path, what)
}

fn convert_hooks(ctx: &mut Ctx, top: Fields<'_>) -> Hooks {
    let mut hooks = Hooks::default();
    let Some(node) = top.get("hooks") else {
        return hooks;
    };
    let what =
        "a mapping of event name to a list of scripts, e.g. `AfterInstall:` then `- location: …`";
    let Some(events) = expect_map(ctx, node, "hooks", what) else {
        return hooks;
    };
    for (key, value) in events.entries {
        let name = key.as_scalar().unwrap_or_default();
        let path = format!("hooks.{name}");
        if let Some(problem) = event_name_problem(name) {
            ctx.err(key.pos, &path, problem);
            continue;
        }
        if value.is_null() {
            continue;
        }
        let what = "a list of scripts, each `- location: …`";
        let Some(items) = expect_seq(ctx, value, &path, what) else {
            continue;
        };
        let scripts: Vec<Script> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| convert_script(ctx, item, &format!("{path}[{i}]")))
            .collect();
        if scripts.len() == items.len() {
            let total: u64 = scripts.iter().map(|s| u64::from(s.timeout_secs)).sum();
            if total > u64::from(MAX_EVENT_TIMEOUT_SECS) {
                ctx.err(
                    key.pos,
                    &path,
                    format!(
                        "the scripts of {name} have timeouts adding up to {total} seconds; an event may take at most {MAX_EVENT_TIMEOUT_SECS} seconds in all (a script without timeout counts {DEFAULT_SCRIPT_TIMEOUT_SECS})"
                    ),
                );
            }
        }
        hooks.0.push((name.to_string(), scripts));
    }
    hooks
}

fn convert_script(ctx: &mut Ctx, item: &Node, path: &str) -> Option<Script> {
    if let Some(text) = item.as_scalar().filter(|_| !item.is_null()) {
        ctx.err(
            item.pos,
            path,
            format!(
                "expected a script mapping, found the bare text {text:?}; write `- location: {}`",
                text.trim()
            ),
        );
        return None;
    }
    let f = expect_map(
        ctx,
        item,
        path,
        "a script mapping with location, timeout, runas",
    )?;
    f.warn_unknown(ctx, path, SCRIPT_KEYS);
    let what = "the script's path inside the bundle";
    let location = required_text(ctx, f, "location", path, what).and_then(|loc| {
        let loc = loc.trim().to_string();
        let field = join(path, "location");
        let pos = f.get("location").map_or(f.pos, |n| n.pos);
        if loc.is_empty() {
            ctx.err(pos, &field, format!("empty; expected {what}"));
            return None;
        }
        if escapes_root(&loc) {
            ctx.err(
                pos,
                &field,
                format!("{loc:?} climbs out of the bundle with `..`"),
            );
            return None;
        }
        Some(loc)
    });
    let timeout_secs = match f.get("timeout") {
        None => Some(DEFAULT_SCRIPT_TIMEOUT_SECS),
        Some(node) => {
            let field = join(path, "timeout");
            let expected =
                format!("a whole number of seconds between 1 and {MAX_EVENT_TIMEOUT_SECS}");
            expect_text(ctx, node, &field, &expected).and_then(|t| {
                let parsed = t
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_EVENT_TIMEOUT_SECS).contains(n));
                if parsed.is_none() {
                    ctx.err(
                        node.pos,
                        &field,
                        format!("expected {expected}, found {t:?}"),
                    );
                }
                parsed
            })
        }
    };
    let runas = opt_text(ctx, f, "runas", path, "a user name")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let sudo = match f.get("sudo") {
        None => false,
        Some(node) => {
            let field = join(path, "sudo");
            match expect_text(ctx, node, &field, "true or false") {
                None => false,
                Some(text) => parse_bool(&text).unwrap_or_else(|| {
                    ctx.err(
                        node.pos,
                        &field,
                        format!("expected true or false, found {text:?}"),
                    );
                    false
                }),
            }
        }
    };
    Some(Script {
        location: location?,
        timeout_secs: timeout_secs?,
        runas,
        sudo,
        pos: item.pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_spellings() {
        for ok in ["0.0", "0", "0.00", " 0.0 "] {
            assert!(is_version_zero(ok), "{ok}");
        }
        for bad in ["1", "0.1", "00", "0.", "", "zero", "1.0"] {
            assert!(!is_version_zero(bad), "{bad}");
        }
    }
}
