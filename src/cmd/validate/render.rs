//! How `validate` shows its report: text for a person (a short plan when valid, else every
//! problem; warnings last). Other forms of the same report belong beside [`text`].

use crate::appspec::summary;
use crate::validate::ValidateReport;
use std::fmt::Write as _;

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
            bundle: "/b".into(),
            appspec: Some("appspec.yml".into()),
            spec: None,
            problems: problems.iter().map(|s| s.to_string()).collect(),
            warnings: warnings.iter().map(|s| s.to_string()).collect(),
        }
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
