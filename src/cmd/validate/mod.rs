//! `codedeploy-agent validate PATH [-A NAME]`: the bundle checked with this host's
//! configuration (found as every tool finds it), so the limits are the ones a deployment
//! here would apply; the report printed by [`render`]. Returns whether the bundle is valid.
//!
//! Invariant: a configuration that cannot be read is reported as a problem of the bundle's
//! report (exit 1), like every other problem, not as an error of its own.

pub mod render;

use super::startup;
use crate::bundle::UnpackOptions;
use crate::cli::ValidateArgs;
use crate::validate::{validate_bundle, ValidateReport};
use std::path::Path;

pub fn run(args: &ValidateArgs, config_file: Option<&Path>) -> bool {
    startup::tool_logging();
    let report = on_host(&args.path, args.appspec_filename.as_deref(), config_file);
    print!("{}", render::text(&report));
    report.ok
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
