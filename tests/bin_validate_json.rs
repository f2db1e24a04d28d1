//! `validate PATH --json [--strict]` as a pipeline gate, through the built binary: one JSON
//! document on stdout (valid, problems with file/line/column/field/message/severity, a
//! summary of what the deployment would do), exit status 0 valid, 1 invalid, 2 unreadable;
//! directory, tgz and zip bundles alike (docs/validate-in-pipelines.md).

#[path = "support/common.rs"]
mod common;

use common::{make_tgz, make_zip, write, BIN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    doc: Value,
}

fn config(base: &Path) -> PathBuf {
    let cfg = base.join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "root_dir: {}\nlog_dir: {}\n",
            base.join("root").display(),
            base.join("log").display()
        ),
    )
    .unwrap();
    cfg
}

fn validate(base: &Path, bundle: &Path, extra: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("--config-file")
        .arg(config(base))
        .arg("validate")
        .arg(bundle)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run {
        code: out.status.code().expect("exited"),
        doc,
    }
}

/// The directory bundle and its tgz and zip forms.
fn forms(base: &Path, dir: &Path) -> Vec<PathBuf> {
    let tgz = base.join(format!(
        "{}.tgz",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let zip = base.join(format!(
        "{}.zip",
        dir.file_name().unwrap().to_string_lossy()
    ));
    make_tgz(dir, &tgz);
    make_zip(dir, &zip);
    vec![dir.to_path_buf(), tgz, zip]
}

const GOOD_APPSPEC: &str = "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\npermissions:\n  - object: /srv/app\n    mode: 640\n    type: [file]\nhooks:\n  BeforeInstall:\n    - location: scripts/before.sh\n  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 60\n      runas: www-data\n";

fn good_bundle(base: &Path) -> PathBuf {
    let dir = base.join("good");
    write(&dir.join("appspec.yml"), GOOD_APPSPEC, false);
    write(&dir.join("app/index.html"), "hello\n", false);
    write(
        &dir.join("scripts/before.sh"),
        "#!/bin/bash\necho before\n",
        true,
    );
    write(
        &dir.join("scripts/start.sh"),
        "#!/usr/bin/env sh\necho start\n",
        true,
    );
    dir
}

#[test]
fn a_good_bundle_is_valid_with_its_summary_in_every_form() {
    let t = tempfile::tempdir().unwrap();
    let dir = good_bundle(t.path());
    for bundle in forms(t.path(), &dir) {
        let r = validate(t.path(), &bundle, &["--strict"]);
        assert_eq!(r.code, 0, "{bundle:?}: {:#}", r.doc);
        assert_eq!(r.doc["valid"], true);
        assert_eq!(r.doc["problems"], serde_json::json!([]));
        assert_eq!(r.doc["appspec"], "appspec.yml");
        let s = &r.doc["summary"];
        assert_eq!(
            s["files"],
            serde_json::json!([{"source": "app", "destination": "/srv/app"}])
        );
        assert_eq!(s["permissions"][0]["object"], "/srv/app");
        assert_eq!(s["permissions"][0]["mode"], "640");
        let events: Vec<&str> = s["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["BeforeInstall", "ApplicationStart"]);
        assert_eq!(
            s["hooks"][1]["scripts"][0],
            serde_json::json!({"location": "scripts/start.sh", "timeout": 60, "runas": "www-data"})
        );
    }
}

#[test]
fn a_bad_bundle_lists_every_problem_with_its_place_and_exits_1() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("bad");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: missing-dir\n    destination: /srv/app\nhooks:\n  BeforeInstall:\n    - location: scripts/gone.sh\n  AfterInstall:\n    - location: scripts/crlf.sh\n      timeout: 60\n    - location: scripts/relative.sh\n      timeout: 60\n",
        false,
    );
    write(
        &dir.join("scripts/crlf.sh"),
        "#!/bin/bash\r\necho hi\r\n",
        true,
    );
    write(&dir.join("scripts/relative.sh"), "#!bash\necho hi\n", true);
    for bundle in forms(t.path(), &dir) {
        let r = validate(t.path(), &bundle, &[]);
        assert_eq!(r.code, 1, "{bundle:?}: {:#}", r.doc);
        assert_eq!(r.doc["valid"], false);
        let problems = r.doc["problems"].as_array().unwrap();
        for p in problems {
            for key in ["file", "line", "column", "field", "message", "severity"] {
                assert!(p.get(key).is_some(), "{key} missing in {p}");
            }
        }
        let errors: Vec<&Value> = problems
            .iter()
            .filter(|p| p["severity"] == "error")
            .collect();
        let find = |field: &str| {
            errors
                .iter()
                .find(|p| p["field"] == field)
                .unwrap_or_else(|| panic!("no error in {field}: {:#}", r.doc))
        };
        // A file source and a script that are not in the bundle.
        let source = find("files[0].source");
        assert_eq!(
            (source["line"].as_u64(), source["column"].as_u64()),
            (Some(4), Some(5))
        );
        assert!(source["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"));
        assert_eq!(find("hooks.BeforeInstall[0].location")["line"], 8);
        // The scripts' own first lines: the place is the script.
        let crlf = find("hooks.AfterInstall[0].location");
        assert_eq!(crlf["file"], "scripts/crlf.sh");
        assert_eq!(
            (crlf["line"].as_u64(), crlf["column"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(crlf["message"]
            .as_str()
            .unwrap()
            .contains("carriage return"));
        let relative = find("hooks.AfterInstall[1].location");
        assert!(relative["message"]
            .as_str()
            .unwrap()
            .contains("relative path"));
    }
}

#[test]
fn appspec_errors_carry_file_line_column_and_field() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("spec");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 7200\n",
        false,
    );
    write(&dir.join("a.sh"), "#!/bin/sh\n", true);
    let r = validate(t.path(), &dir, &[]);
    assert_eq!(r.code, 1, "{:#}", r.doc);
    let p = &r.doc["problems"][0];
    assert_eq!(p["file"], "appspec.yml", "{p}");
    assert_eq!(p["field"], "hooks.AfterInstall[0].timeout", "{p}");
    assert_eq!(p["line"], 6, "{p}");
    assert!(p["column"].as_u64().is_some_and(|c| c > 0), "{p}");
    assert_eq!(p["severity"], "error");
    assert_eq!(
        r.doc["summary"],
        Value::Null,
        "no summary of an appspec that does not parse"
    );
}

#[test]
fn warnings_pass_unless_strict() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("warn");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: plain.sh\n",
        false,
    );
    // No #! line: /bin/sh runs it (a warning, docs/validate-in-pipelines.md).
    write(&dir.join("plain.sh"), "echo hi\n", true);
    for bundle in forms(t.path(), &dir) {
        let lax = validate(t.path(), &bundle, &[]);
        assert_eq!(lax.code, 0, "{:#}", lax.doc);
        assert_eq!(lax.doc["valid"], true);
        let problems = lax.doc["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{:#}", lax.doc);
        assert_eq!(problems[0]["severity"], "warning");
        assert_eq!(problems[0]["file"], "plain.sh");
        assert!(problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("no #! line"));
        let strict = validate(t.path(), &bundle, &["--strict"]);
        assert_eq!(strict.code, 1, "{:#}", strict.doc);
        assert_eq!(strict.doc["valid"], false);
        assert_eq!(strict.doc["problems"], lax.doc["problems"]);
    }
}

#[test]
fn a_bundle_that_cannot_be_read_exits_2_with_a_document() {
    let t = tempfile::tempdir().unwrap();
    let r = validate(t.path(), &t.path().join("no-such-bundle.zip"), &[]);
    assert_eq!(r.code, 2, "{:#}", r.doc);
    assert_eq!(r.doc["valid"], false);
    assert_eq!(r.doc["readable"], false);
    assert_eq!(r.doc["summary"], Value::Null);
    let p = &r.doc["problems"][0];
    assert_eq!(p["severity"], "error");
    assert_eq!(p["file"], Value::Null);
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("no-such-bundle.zip"),
        "{p}"
    );
    // A damaged archive was read: it is invalid (1), not unreadable.
    let junk = t.path().join("junk.zip");
    std::fs::write(&junk, b"PK\x03\x04 not really a zip").unwrap();
    let r = validate(t.path(), &junk, &[]);
    assert_eq!(r.code, 1, "{:#}", r.doc);
    assert_eq!(r.doc["readable"], true);
}
