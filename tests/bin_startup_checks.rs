//! Start-up checks, against the built binary: what would make every deployment fail (a
//! root_dir or log_dir that cannot be created or written, on a read-only file system; an
//! unreadable deployment_spec_ca_file or on-premises file) stops `run` and `deploy-local`
//! with one line naming the key, the path and the cause, exit status 1, before any event.
//!
//! The read-only cases mount a tmpfs (root needed) and skip with a message elsewhere.

#[path = "support/common.rs"]
mod common;
#[path = "support/mount.rs"]
mod mount_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{text, BIN};
use mount_support::tmpfs_or_skip;

/// A config file with `root_dir`, `log_dir` and `extra` lines.
fn config(dir: &Path, root: &Path, log: &Path, extra: &str) -> PathBuf {
    let p = dir.join("agent.yml");
    fs::write(
        &p,
        format!(
            "root_dir: {}\nlog_dir: {}\npid_dir: {}\n{extra}",
            root.display(),
            log.display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    p
}

fn bundle(dir: &Path) -> PathBuf {
    let b = dir.join("bundle");
    fs::create_dir_all(&b).unwrap();
    fs::write(b.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    b
}

fn deploy_local(cfg: &Path, bundle: &Path) -> Output {
    Command::new(BIN)
        .arg("deploy-local")
        .arg("-c")
        .arg(cfg)
        .args(["-t", "directory", "-g", "g", "-l"])
        .arg(bundle)
        .output()
        .unwrap()
}

/// `run` with `cfg`, killed if it has not stopped within 20 s (it must stop at once).
fn run_daemon(cfg: &Path) -> Output {
    let mut child = Command::new(BIN)
        .arg("--config-file")
        .arg(cfg)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("run did not stop at the start-up check:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Exit 1, nothing on stdout (no event ran), one line on stderr naming every `part`.
fn assert_one_line(out: &Output, parts: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(out.stdout.is_empty(), "an event ran:\n{all}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{all}");
    for p in parts {
        assert!(lines[0].contains(p), "missing {p:?}:\n{all}");
    }
}

#[test]
fn root_dir_or_log_dir_on_a_read_only_file_system() {
    let Some(ro) = tmpfs_or_skip("root_dir_or_log_dir_on_a_read_only_file_system", "size=1m")
    else {
        return;
    };
    fs::create_dir(ro.path().join("existing")).unwrap();
    ro.remount_ro().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    let log = tmp.path().join("log");
    let missing = ro.path().join("deployment-root");
    let existing = ro.path().join("existing");

    // Cannot be created.
    let cfg = config(tmp.path(), &missing, &log, "");
    let want = [
        "root_dir",
        &missing.display().to_string() as &str,
        "Read-only file system",
    ];
    assert_one_line(&deploy_local(&cfg, &b), &want);
    assert_one_line(&run_daemon(&cfg), &want);

    // Exists, cannot be written.
    let cfg = config(tmp.path(), &existing, &log, "");
    let want = [
        "root_dir",
        &existing.display().to_string() as &str,
        "Read-only file system",
    ];
    assert_one_line(&deploy_local(&cfg, &b), &want);
    assert_one_line(&run_daemon(&cfg), &want);

    // The log directory likewise.
    let cfg = config(tmp.path(), &tmp.path().join("root"), &missing, "");
    let want = [
        "log_dir",
        &missing.display().to_string() as &str,
        "Read-only file system",
    ];
    assert_one_line(&deploy_local(&cfg, &b), &want);
    assert_one_line(&run_daemon(&cfg), &want);
}

#[test]
fn unreadable_ca_file_and_on_premises_file() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    let root = tmp.path().join("root");
    let log = tmp.path().join("log");
    // A directory where a file is expected cannot be read, even by root.
    let not_a_file = tmp.path().join("a-directory");
    fs::create_dir(&not_a_file).unwrap();
    let missing = tmp.path().join("no-such-ca.pem");

    for (key, path) in [
        ("deployment_spec_ca_file", &not_a_file),
        ("deployment_spec_ca_file", &missing),
        ("on_premises_config_file", &not_a_file),
    ] {
        let cfg = config(
            tmp.path(),
            &root,
            &log,
            &format!("{key}: {}\n", path.display()),
        );
        let want = [key, &path.display().to_string() as &str, "cannot read"];
        assert_one_line(&deploy_local(&cfg, &b), &want);
        assert_one_line(&run_daemon(&cfg), &want);
    }

    // A missing on-premises file is an EC2 instance, not an error: deploy-local proceeds.
    let cfg = config(
        tmp.path(),
        &root,
        &log,
        &format!("on_premises_config_file: {}\n", missing.display()),
    );
    let out = deploy_local(&cfg, &b);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_root_dir_that_can_be_created_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b/root");
    let log = tmp.path().join("x/log");
    let cfg = config(tmp.path(), &root, &log, "");
    let out = deploy_local(&cfg, &bundle(tmp.path()));
    assert!(out.status.success(), "{}", text(&out));
    assert!(root.is_dir() && log.is_dir());
    // The check leaves nothing of its own behind.
    let stray: Vec<_> = fs::read_dir(&log)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("write-check"))
        .collect();
    assert!(stray.is_empty());
}
