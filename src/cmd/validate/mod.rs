//! `codedeploy-agent validate PATH [-A NAME] [--json] [--strict]`: the bundle checked with this
//! host's configuration (found as every tool finds it), so the limits are the ones a deployment
//! here would apply; the report printed by [`render`] as text or, with `--json`, as one JSON
//! document for a pipeline (docs/validate-in-pipelines.md). Returns the [`Verdict`], which
//! `main.rs` turns into the exit status: 0 valid, 1 invalid, 2 could not read.
//!
//! Invariant: a configuration that cannot be read is reported as a problem of the bundle's
//! report (exit 1), like every other problem, not as an error of its own.

pub mod render;

use super::startup;
use crate::bundle::UnpackOptions;
use crate::cli::ValidateArgs;
use crate::validate::{validate_bundle, ValidateReport};
use std::path::Path;

/// What `validate` concluded, as its exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// The bundle could not be read: the check did not run.
    Unreadable,
}

impl Verdict {
    /// PURE: the verdict of a report; with `strict`, warnings make the bundle invalid.
    pub fn of(report: &ValidateReport, strict: bool) -> Self {
        if report.unreadable {
            Self::Unreadable
        } else if !report.ok || (strict && !report.warnings.is_empty()) {
            Self::Invalid
        } else {
            Self::Valid
        }
    }

    /// The exit status.
    pub const fn code(self) -> u8 {
        match self {
            Self::Valid => 0,
            Self::Invalid => 1,
            Self::Unreadable => 2,
        }
    }
}

pub fn run(args: &ValidateArgs, config_file: Option<&Path>) -> Verdict {
    startup::tool_logging();
    let report = on_host(&args.path, args.appspec_filename.as_deref(), config_file);
    let verdict = Verdict::of(&report, args.strict);
    if args.json {
        println!("{}", render::json(&report, verdict));
    } else {
        print!("{}", render::text(&report));
        if let Some(note) = render::strict_note(&report, verdict) {
            print!("{note}");
        }
    }
    verdict
}

/// Validates the bundle at `path` with this host's configuration.
fn on_host(path: &Path, appspec_name: Option<&str>, config_file: Option<&Path>) -> ValidateReport {
    let cfg = match startup::read_tool_config(config_file) {
        Ok(c) => c,
        Err(e) => return ValidateReport::failed(path, format!("configuration: {e}")),
    };
    let opts = UnpackOptions::from_config(&cfg, nix::unistd::geteuid().is_root());
    validate_bundle(path, appspec_name, &opts, Some(&cfg.root_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: bool, unreadable: bool, warnings: usize) -> ValidateReport {
        ValidateReport {
            ok,
            unreadable,
            bundle: "/b".into(),
            appspec: None,
            spec: None,
            problems: Vec::new(),
            warnings: vec![crate::validate::Problem::whole("w"); warnings],
        }
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(Verdict::of(&report(true, false, 0), false).code(), 0);
        assert_eq!(Verdict::of(&report(true, false, 1), false).code(), 0);
        assert_eq!(Verdict::of(&report(true, false, 1), true).code(), 1);
        assert_eq!(Verdict::of(&report(true, false, 0), true).code(), 0);
        assert_eq!(Verdict::of(&report(false, false, 0), false).code(), 1);
        assert_eq!(Verdict::of(&report(false, true, 0), true).code(), 2);
    }
}
