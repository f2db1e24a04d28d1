//! One copy on disk and retention, black box: real `deploy-local` runs of S3 bundles (moto,
//! SigV4 on) into temp roots with `keep_bundle_archive` off and on, and `status` (text and
//! --json) reporting what the kept revisions take.

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/common.rs"]
mod common;
#[path = "support/moto.rs"]
mod moto;

use common::*;
use moto::Moto;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn sandbox(moto: &Moto, keep: bool, max_revisions: u32) -> Sandbox {
    let sb = Sandbox::new();
    fs::write(
        sb.config(),
        format!(
            "root_dir: {}\nlog_dir: {}\npid_dir: {}\nmax_revisions: {max_revisions}\ns3_endpoint_override: {}\nkeep_bundle_archive: {keep}\n",
            sb.root().display(),
            sb.path().join("log").display(),
            sb.path().join("pid").display(),
            moto.endpoint
        ),
    )
    .unwrap();
    fs::create_dir_all(sb.path().join("pid")).unwrap();
    sb
}

fn deploy_s3(sb: &Sandbox, moto: &Moto, key: &str) -> Output {
    Command::new(BIN)
        .args(["deploy-local", "-c"])
        .arg(sb.config())
        .args([
            "-g",
            "g1",
            "-t",
            "tgz",
            "-e",
            "DownloadBundle,Install",
            "-l",
        ])
        .arg(format!("s3://{}/{key}", moto.bucket))
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_access_key)
        .env("AWS_REGION", moto::REGION)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("run deploy-local")
}

/// A tgz bundle with 1 MiB of noise, installing into `dest`.
fn tgz(dir: &Path, name: &str, dest: &Path) -> std::path::PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    write(&tree.join("appspec.yml"), &site_appspec(dest), false);
    fs::create_dir_all(tree.join("site")).unwrap();
    let noise = bundle_support::noise(1 << 20, name.len() as u64);
    fs::write(tree.join("site/noise.bin"), noise).unwrap();
    fs::write(tree.join("site/name.txt"), name).unwrap();
    let out = dir.join(format!("{name}.tgz"));
    make_tgz(&tree, &out);
    out
}

fn deployments(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(sb.group_dir("g1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn status_json(sb: &Sandbox) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["status", "--json"])
        .env("CODEDEPLOY_AGENT_CONFIG", sb.config())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Three deployments with max_revisions 2: two whole revisions stay; with the archive off
/// neither holds bundle.tar, with it on both do; `status` reports their space.
fn three_deployments(keep: bool) {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let sb = sandbox(&moto, keep, 2);
    let dest = sb.path().join("dest");
    for name in ["r1", "r2", "r3"] {
        let bundle = tgz(sb.path(), name, &dest);
        moto::upload_file(&moto, &format!("{name}.tgz"), &bundle);
        let out = deploy_s3(&sb, &moto, &format!("{name}.tgz"));
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(fs::read_to_string(dest.join("name.txt")).unwrap(), name);
    }
    let kept = deployments(&sb);
    assert_eq!(kept.len(), 2, "retention keeps whole revisions: {kept:?}");
    for d in &kept {
        assert!(d.join("deployment-archive/site/noise.bin").is_file());
        assert_eq!(
            d.join("bundle.tar").is_file(),
            keep,
            "bundle.tar beside {} with keep_bundle_archive: {keep}",
            d.display()
        );
    }
    if keep {
        // bundle.tar is the object itself, byte for byte.
        let newest = kept
            .iter()
            .find(|d| {
                fs::read_to_string(d.join("deployment-archive/site/name.txt")).unwrap() == "r3"
            })
            .unwrap();
        assert_eq!(
            fs::read(newest.join("bundle.tar")).unwrap(),
            fs::read(sb.path().join("r3.tgz")).unwrap()
        );
    }

    let j = status_json(&sb);
    let k = &j["kept_revisions"];
    assert_eq!(k["revisions"], 2, "{j:#}");
    let bytes = k["bytes"].as_u64().unwrap();
    // Two extracted 1 MiB files at least, plus two ~1 MiB archives when kept.
    assert!(bytes >= 2 << 20, "{j:#}");
    let archives: u64 = k["groups"][0]["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bundle_archive_bytes"].as_u64().unwrap())
        .sum();
    if keep {
        assert!(archives >= 2 << 20 && bytes >= 4 << 20, "{j:#}");
    } else {
        assert_eq!(archives, 0, "{j:#}");
        assert!(bytes < 4 << 20, "one copy: {j:#}");
    }
    let out = Command::new(BIN)
        .arg("status")
        .env("CODEDEPLOY_AGENT_CONFIG", sb.config())
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("kept revisions: 2 in 1 group") && t.contains("g1: 2 revisions"),
        "{t}"
    );
}

#[test]
fn archive_off_keeps_one_copy_and_retention_frees_whole_revisions() {
    three_deployments(false);
}

#[test]
fn archive_on_keeps_bundle_tar_and_retention_frees_it_with_its_revision() {
    three_deployments(true);
}

#[test]
fn local_file_bundles_are_linked_not_copied() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest");
    let bundle = tgz(sb.path(), "local", &dest);
    let out = sb.deploy(&[
        "-g",
        "g1",
        "-t",
        "tgz",
        "-e",
        "DownloadBundle,Install",
        "-l",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let d = &deployments(&sb)[0];
    let meta = fs::symlink_metadata(d.join("bundle.tar")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(fs::read_to_string(dest.join("name.txt")).unwrap(), "local");
}
