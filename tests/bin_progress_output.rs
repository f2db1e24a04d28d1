//! Progress of long steps as deploy-local shows it, black box: plain lines on stderr when it is
//! not a terminal (an S3 download through moto, and the install), nothing for small jobs by
//! default, and a bar on a terminal (a pty made by util-linux `script`). The report period
//! and size floor are lowered with `CODEDEPLOY_PROGRESS=<ms>,<bytes>` so small bundles report.

#[path = "support/common.rs"]
mod common;
#[path = "support/moto.rs"]
mod moto;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory bundle of `files` small files installing into `dest`.
fn dir_bundle(base: &Path, files: usize, dest: &Path) -> PathBuf {
    let b = base.join("bundle");
    write(&b.join("appspec.yml"), &site_appspec(dest), false);
    for i in 0..files {
        write(
            &b.join(format!("site/d{}/f{i}.txt", i % 7)),
            "content",
            false,
        );
    }
    b
}

fn deploy_dir(sb: &Sandbox, bundle: &Path, progress: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["deploy-local", "-c"])
        .arg(sb.config())
        .args(["-g", "g1", "-e", "DownloadBundle,Install", "-l"])
        .arg(bundle);
    match progress {
        Some(p) => cmd.env("CODEDEPLOY_PROGRESS", p),
        None => cmd.env_remove("CODEDEPLOY_PROGRESS"),
    };
    cmd.output().expect("run deploy-local")
}

#[test]
fn plain_lines_off_a_terminal_and_quiet_for_small_jobs() {
    let sb = Sandbox::new();
    let bundle = dir_bundle(sb.path(), 40, &sb.path().join("dest"));
    let out = deploy_dir(&sb, &bundle, Some("0,1"));
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // Files and bytes of the install, its end, and no terminal control sequences.
    assert!(
        err.contains("  Install: installing: ") && err.contains("of 40 files"),
        "{}",
        text(&out)
    );
    assert!(err.contains("(done)"), "{}", text(&out));
    assert!(!err.contains('\x1b'), "{}", text(&out));
    // stdout keeps its one line per event.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  Install              done"), "{stdout}");

    // With the default rule a bundle this small says nothing.
    let sb = Sandbox::new();
    let bundle = dir_bundle(sb.path(), 40, &sb.path().join("dest"));
    let out = deploy_dir(&sb, &bundle, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("installing"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_download_is_counted_where_it_enters_the_unpacker() {
    let Some(moto) = moto::Moto::start_or_skip() else {
        return;
    };
    let sb = Sandbox::new();
    fs::write(
        sb.config(),
        format!(
            "root_dir: {}\nlog_dir: {}\ns3_endpoint_override: {}\n",
            sb.root().display(),
            sb.path().join("log").display(),
            moto.endpoint
        ),
    )
    .unwrap();
    let bundle = dir_bundle(sb.path(), 20, &sb.path().join("dest"));
    let tgz = sb.path().join("b.tgz");
    make_tgz(&bundle, &tgz);
    moto::upload_file(&moto, "b.tgz", &tgz);
    let len = fs::metadata(&tgz).unwrap().len();
    let out = Command::new(BIN)
        .args(["deploy-local", "-c"])
        .arg(sb.config())
        .args(["-g", "g1", "-t", "tgz", "-e", "DownloadBundle,Install"])
        .arg("-l")
        .arg(format!("s3://{}/b.tgz", moto.bucket))
        .env("CODEDEPLOY_PROGRESS", "0,1")
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_access_key)
        .env("AWS_REGION", moto::REGION)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("DownloadBundle: downloading s3://") && l.contains("(done)"))
        .unwrap_or_else(|| panic!("no final download line: {}", text(&out)));
    // The whole object passed the counter, out of the length S3 announced.
    let size = codedeploy_agent::progress::size(len);
    assert!(
        line.contains(&format!("{size} of {size} (100 %)")),
        "{line}"
    );
}

#[test]
fn a_bar_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIP a_bar_on_a_terminal: util-linux `script` is not installed");
        return;
    }
    let sb = Sandbox::new();
    let bundle = dir_bundle(sb.path(), 40, &sb.path().join("dest"));
    let cmd = format!(
        "CODEDEPLOY_PROGRESS=0,1 {BIN} deploy-local -c {} -g g1 -e DownloadBundle,Install -l {}",
        sb.config().display(),
        bundle.display()
    );
    // stdin, stdout and stderr of the command are the pty; its output arrives on our stdout.
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    // The bar: its frame, our text in it, and the control sequences that redraw and clear
    // it; not the plain lines.
    assert!(shown.contains("installing: "), "{shown:?}");
    assert!(shown.contains('[') && shown.contains("] "), "{shown:?}");
    assert!(shown.contains("\x1b["), "{shown:?}");
    assert!(!shown.contains("(done)"), "{shown:?}");
    // The event's line is whole again after the bar is cleared.
    assert!(shown.contains("  Install              done"), "{shown:?}");
}

#[test]
fn a_local_archive_is_counted_as_it_unpacks() {
    let sb = Sandbox::new();
    let bundle = dir_bundle(sb.path(), 20, &sb.path().join("dest"));
    let tgz = sb.path().join("b.tgz");
    make_tgz(&bundle, &tgz);
    let out = Command::new(BIN)
        .args(["deploy-local", "-c"])
        .arg(sb.config())
        .args(["-g", "g1", "-t", "tgz", "-e", "DownloadBundle", "-l"])
        .arg(&tgz)
        .env("CODEDEPLOY_PROGRESS", "0,1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let size = codedeploy_agent::progress::size(fs::metadata(&tgz).unwrap().len());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l.contains("DownloadBundle: unpacking ")
            && l.contains(&format!("{size} of {size} (100 %)"))
            && l.ends_with("(done)")),
        "{}",
        text(&out)
    );
}
