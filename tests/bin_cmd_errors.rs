//! Each subcommand's error path, black box: what it prints and the exit code it ends with when
//! its configuration file is missing (and, for deploy-local, that a wrong argument is still
//! reported before the configuration is read). These are the forms `main.rs` maps from each
//! `src/cmd/` entry's result; scripts and operators match on them.

use std::path::Path;
use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codedeploy-agent"))
        .args(args)
        .env_remove("CODEDEPLOY_AGENT_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .expect("run codedeploy-agent")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Case {
    _tmp: tempfile::TempDir,
    missing: String,
    bundle: String,
}

/// A missing configuration path, and a directory bundle with an appspec.
fn case() -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    let missing = tmp.path().join("missing.yml");
    Case {
        missing: missing.display().to_string(),
        bundle: bundle.display().to_string(),
        _tmp: tmp,
    }
}

fn missing_message(path: &str) -> String {
    format!("configuration file {path} does not exist or is not readable")
}

#[test]
fn status_without_configuration_is_lsb_unknown() {
    let c = case();
    let out = agent(&["--config-file", &c.missing, "status"]);
    assert_eq!(out.status.code(), Some(4), "LSB 4: unknown");
    assert_eq!(
        text(&out.stderr),
        format!("ERROR: {}\n", missing_message(&c.missing))
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn logs_without_configuration_fails() {
    let c = case();
    let out = agent(&["--config-file", &c.missing, "logs"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("ERROR: {}\n", missing_message(&c.missing))
    );
}

#[test]
fn validate_reports_the_configuration_as_a_problem() {
    let c = case();
    let out = agent(&["--config-file", &c.missing, "validate", &c.bundle]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!(
            "appspec in {}: 1 problem\n  error: configuration: {}\n",
            c.bundle,
            missing_message(&c.missing)
        )
    );
}

#[test]
fn deploy_local_checks_arguments_before_the_configuration() {
    let c = case();
    let out = agent(&[
        "--config-file",
        &c.missing,
        "deploy-local",
        "-l",
        &c.bundle,
        "-b",
        "SOMETIMES",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ERROR: file-exists-behavior SOMETIMES is not one of DISALLOW, OVERWRITE, RETAIN\n"
    );
    let out = agent(&["--config-file", &c.missing, "deploy-local", "-l", &c.bundle]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("ERROR: {}\n", missing_message(&c.missing))
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn run_without_configuration_fails_naming_the_file() {
    let c = case();
    let out = agent(&["--config-file", &c.missing, "run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(&c.missing), "{err}");
    assert!(
        !Path::new(&c.missing).exists(),
        "run must not create its configuration"
    );
}
