//! PURE: a validated [`AppSpec`] -> a few lines saying what a deployment would do (files,
//! permissions, hooks with their scripts and timeouts), for `validate` and logs.

use std::fmt::Write as _;

use super::events::is_lifecycle_hook_event;
use super::model::AppSpec;

/// What the deployment would do, in a few lines.
pub fn summary(spec: &AppSpec) -> String {
    let mut out = String::new();
    let feb = spec.file_exists_behavior.map_or(
        "not set: the deployment's choice, else DISALLOW".to_string(),
        |f| f.as_str().to_string(),
    );
    let _ = writeln!(out, "files (file_exists_behavior {feb}):");
    if spec.files.is_empty() {
        out.push_str("  (none: only hooks run)\n");
    }
    for f in &spec.files {
        let _ = writeln!(out, "  {} -> {}", f.source, f.destination);
    }
    if !spec.permissions.is_empty() {
        out.push_str("permissions:\n");
    }
    for p in &spec.permissions {
        let mut line = format!("  {}", p.object);
        if p.pattern != "**" {
            let _ = write!(line, " pattern {}", p.pattern);
        }
        if !p.except.is_empty() {
            let _ = write!(line, " except {}", p.except.join(","));
        }
        if let Some(m) = p.mode {
            let _ = write!(line, " mode {m}");
        }
        for (label, v) in [("owner", &p.owner), ("group", &p.group)] {
            if let Some(v) = v {
                let _ = write!(line, " {label} {v}");
            }
        }
        if !p.acls.is_empty() {
            let acls: Vec<String> = p.acls.iter().map(ToString::to_string).collect();
            let _ = write!(line, " acls {}", acls.join(","));
        }
        if let Some(c) = &p.context {
            let _ = write!(line, " context {}", c.type_);
        }
        if !(p.types.file && p.types.directory) {
            let _ = write!(
                line,
                " ({} only)",
                if p.types.file { "files" } else { "directories" }
            );
        }
        let _ = writeln!(out, "{line}");
    }
    out.push_str("hooks:\n");
    if spec.hooks.0.is_empty() {
        out.push_str("  (none)\n");
    }
    for (event, scripts) in &spec.hooks.0 {
        let custom = if is_lifecycle_hook_event(event) {
            ""
        } else {
            " (custom event: runs only when the deployment lists it)"
        };
        let none = if scripts.is_empty() {
            " (no scripts)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {event}{custom}{none}:");
        for s in scripts {
            let mut line = format!("    {} (timeout {}s", s.location, s.timeout_secs);
            if let Some(r) = &s.runas {
                let _ = write!(line, ", runas {r}");
            }
            if s.sudo {
                line.push_str(", sudo");
            }
            let _ = writeln!(out, "{line})");
        }
    }
    out
}
