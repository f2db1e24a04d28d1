//! How `validate` shows its report: text for a person (a short plan when valid, else every
//! problem; warnings last), or one JSON document for a pipeline ([`json`], its fields in
//! docs/validate-in-pipelines.md). Other forms of the same report belong beside these.

use super::Verdict;
use crate::appspec::{is_lifecycle_hook_event, summary, AppSpec};
use crate::validate::{Problem, ValidateReport};
use serde_json::{json, Value};
use std::fmt::Write as _;

fn problem_json(p: &Problem, severity: &str) -> Value {
    json!({
        "file": p.file,
        "line": p.line,
        "column": p.column,
        "field": p.field,
        "message": p.message,
        "severity": severity,
    })
}

/// What the deployment would do: files, permissions and hooks per event, in appspec order.
fn summary_json(spec: &AppSpec) -> Value {
    let files: Vec<Value> = spec
        .files
        .iter()
        .map(|f| json!({"source": f.source, "destination": f.destination}))
        .collect();
    let permissions: Vec<Value> = spec
        .permissions
        .iter()
        .map(|p| {
            let mut types = Vec::new();
            if p.types.file {
                types.push("file");
            }
            if p.types.directory {
                types.push("directory");
            }
            json!({
                "object": p.object,
                "pattern": p.pattern,
                "except": p.except,
                "mode": p.mode.map(|m| m.to_string()),
                "owner": p.owner,
                "group": p.group,
                "acls": p.acls.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "context": p.context.as_ref().map(|c| json!({
                    "user": c.user,
                    "type": c.type_,
                    "range": c.range.as_ref().map(ToString::to_string),
                })),
                "types": types,
            })
        })
        .collect();
    let hooks: Vec<Value> = spec
        .hooks
        .0
        .iter()
        .map(|(event, scripts)| {
            let scripts: Vec<Value> = scripts
                .iter()
                .map(|s| json!({"location": s.location, "timeout": s.timeout_secs, "runas": s.runas}))
                .collect();
            json!({"event": event, "custom": !is_lifecycle_hook_event(event), "scripts": scripts})
        })
        .collect();
    json!({
        "file_exists_behavior": spec.file_exists_behavior.map(|f| f.as_str().to_string()),
        "files": files,
        "permissions": permissions,
        "hooks": hooks,
    })
}

/// The last line of the text form when `--strict` alone made the bundle invalid.
pub fn strict_note(report: &ValidateReport, verdict: Verdict) -> Option<String> {
    (report.ok && verdict == Verdict::Invalid).then(|| {
        let n = report.warnings.len();
        let s = if n == 1 { "" } else { "s" };
        format!("invalid with --strict: {n} warning{s}\n")
    })
}

/// The one JSON document `validate --json` prints: `valid` is the verdict (with `--strict`,
/// warnings count), `problems` holds errors then warnings, `summary` is null when the appspec
/// could not be read.
pub fn json(report: &ValidateReport, verdict: Verdict) -> Value {
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| problem_json(p, "error"))
        .chain(report.warnings.iter().map(|p| problem_json(p, "warning")))
        .collect();
    json!({
        "valid": verdict == Verdict::Valid,
        "readable": verdict != Verdict::Unreadable,
        "bundle": report.bundle,
        "appspec": report.appspec,
        "problems": problems,
        "summary": report.spec.as_ref().map(summary_json),
    })
}

/// The text the `validate` command prints.
pub fn text(report: &ValidateReport) -> String {
    let mut out = String::new();
    let appspec = report.appspec.as_deref().unwrap_or("appspec");
    match (&report.spec, report.ok) {
        (Some(spec), true) => {
            let _ = writeln!(out, "{} in {}: valid", appspec, report.bundle);
            out.push_str(&summary(spec));
        }
        _ => {
            let n = report.problems.len();
            let s = if n == 1 { "" } else { "s" };
            let _ = writeln!(out, "{} in {}: {n} problem{s}", appspec, report.bundle);
            for p in &report.problems {
                let _ = writeln!(out, "  error: {p}");
            }
        }
    }
    for w in &report.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: bool, problems: &[&str], warnings: &[&str]) -> ValidateReport {
        ValidateReport {
            ok,
            unreadable: false,
            bundle: "/b".into(),
            appspec: Some("appspec.yml".into()),
            spec: None,
            problems: problems.iter().map(|s| Problem::whole(*s)).collect(),
            warnings: warnings.iter().map(|s| Problem::whole(*s)).collect(),
        }
    }

    #[test]
    fn json_lists_errors_then_warnings_with_their_places() {
        let mut r = report(false, &["bad"], &["meh"]);
        r.problems.push(Problem::at(
            "appspec.yml",
            3,
            5,
            "files[0].source".into(),
            "missing".into(),
        ));
        let v = json(&r, Verdict::Invalid);
        assert_eq!(v["valid"], false);
        assert_eq!(v["summary"], Value::Null);
        let p = v["problems"].as_array().unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0]["file"], Value::Null);
        assert_eq!(p[0]["severity"], "error");
        assert_eq!(
            p[1],
            json!({"file": "appspec.yml", "line": 3, "column": 5, "field": "files[0].source", "message": "missing", "severity": "error"})
        );
        assert_eq!(p[2]["severity"], "warning");
    }

    #[test]
    fn json_summary_shows_files_permissions_and_hooks_in_order() {
        let spec = crate::appspec::parse(
            "appspec.yml",
            "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\npermissions:\n  - object: /srv/app\n    mode: 640\n    owner: www\n    type: [file]\nhooks:\n  BeforeInstall:\n    - location: a.sh\n  AfterInstall:\n    - location: b.sh\n      timeout: 30\n      runas: www\n",
        )
        .unwrap();
        let mut r = report(true, &[], &[]);
        r.spec = Some(spec);
        let v = json(&r, Verdict::Valid);
        assert_eq!(v["valid"], true);
        let s = &v["summary"];
        assert_eq!(
            s["files"],
            json!([{"source": "app", "destination": "/srv/app"}])
        );
        assert_eq!(s["permissions"][0]["mode"], "640");
        assert_eq!(s["permissions"][0]["owner"], "www");
        assert_eq!(s["permissions"][0]["types"], json!(["file"]));
        assert_eq!(s["hooks"][0]["event"], "BeforeInstall");
        assert_eq!(
            s["hooks"][1],
            json!({"event": "AfterInstall", "custom": false, "scripts": [{"location": "b.sh", "timeout": 30, "runas": "www"}]})
        );
    }

    #[test]
    fn problems_are_counted_and_listed_then_warnings() {
        assert_eq!(
            text(&report(false, &["a", "b"], &["w"])),
            "appspec.yml in /b: 2 problems\n  error: a\n  error: b\n  warning: w\n"
        );
        assert_eq!(
            text(&report(false, &["a"], &[])),
            "appspec.yml in /b: 1 problem\n  error: a\n"
        );
    }

    #[test]
    fn no_appspec_found_is_named_generically() {
        let mut r = report(false, &["none"], &[]);
        r.appspec = None;
        assert!(text(&r).starts_with("appspec in /b: 1 problem\n"));
    }
}
