//! `validate` and `deploy-local` judge the same crafted bundles alike, through the built
//! binary: both accept or both refuse, for the same reason (the same words in both outputs).
//! Covers a 10 MB appspec, one over the limit, unsafe members, a nested single top-level
//! directory, an appspec too deep to be found, and the configured limits.

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/common.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bundle_support::{gzip, tar_bytes, zip_bytes, Raw, Z};
use common::{text, BIN};
use tar::EntryType;

struct Case {
    name: &'static str,
    /// The bundle's bytes, or None for a directory bundle built by `dir`.
    bytes: Vec<u8>,
    kind: &'static str,
    /// None: both accept. Some: words both outputs must contain.
    reason: Option<&'static str>,
    /// Extra configuration lines.
    config: &'static str,
}

fn appspec(dest: &Path) -> String {
    format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\n",
        dest.display()
    )
}

/// An appspec of about `size` bytes: valid YAML padded with comment lines.
fn padded(dest: &Path, size: usize) -> Vec<u8> {
    let mut s = appspec(dest);
    let line = format!("# {}\n", "x".repeat(76));
    while s.len() + line.len() <= size {
        s.push_str(&line);
    }
    s.into_bytes()
}

fn validate(cfg: &Path, bundle: &Path) -> Output {
    Command::new(BIN)
        .arg("--config-file")
        .arg(cfg)
        .arg("validate")
        .arg(bundle)
        .output()
        .unwrap()
}

fn deploy_local(cfg: &Path, kind: &str, bundle: &Path) -> Output {
    Command::new(BIN)
        .arg("deploy-local")
        .arg("-c")
        .arg(cfg)
        .args(["-g", "g", "-t", kind, "-l"])
        .arg(bundle)
        .output()
        .unwrap()
}

fn check(case: &Case, work: &Path) {
    let dir = work.join(case.name);
    fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("agent.yml");
    fs::write(
        &cfg,
        format!(
            "root_dir: {}\nlog_dir: {}\nfree_space_reserve: 1MiB\n{}",
            dir.join("root").display(),
            dir.join("log").display(),
            case.config
        ),
    )
    .unwrap();
    let bundle = dir.join(format!("bundle.{}", case.kind));
    fs::write(&bundle, &case.bytes).unwrap();

    let v = validate(&cfg, &bundle);
    let d = deploy_local(&cfg, case.kind, &bundle);
    let both = format!(
        "case {}\n=== validate\n{}\n=== deploy-local\n{}",
        case.name,
        text(&v),
        text(&d)
    );
    match case.reason {
        None => {
            assert!(v.status.success() && d.status.success(), "{both}");
        }
        Some(reason) => {
            assert!(!v.status.success() && !d.status.success(), "{both}");
            assert!(
                text(&v).contains(reason) && text(&d).contains(reason),
                "{reason:?} not in both:\n{both}"
            );
        }
    }
}

fn dest(work: &Path, case: &str) -> PathBuf {
    work.join(case).join("dest")
}

#[test]
fn validate_and_deploy_local_agree_on_crafted_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let small = |case: &str| appspec(&dest(work, case)).into_bytes();
    let big = padded(&dest(work, "ten_mb_appspec"), 10_000_000);
    let over = padded(&dest(work, "appspec_over_limit"), 17 * 1024 * 1024);
    let nested = small("nested_top_level_dir");
    let deep = small("appspec_too_deep");
    let dots = small("dot_dot_member");
    let abs = small("absolute_member");
    let through = small("through_a_symlink");
    let fifo = small("fifo_member");
    let setuid = small("setuid_refused_by_config");
    let cap = small("over_the_configured_size");
    let zip_link = small("zip_through_a_symlink");
    let fifo_raw = Raw {
        kind: EntryType::Fifo,
        ..Raw::file("app/pipe", b"")
    };
    let setuid_raw = Raw {
        mode: 0o4755,
        ..Raw::file("app/tool", b"#!/bin/sh\n")
    };
    let five_k = vec![b'x'; 5000];
    let linked = small("appspec_links_inside");
    let cases = [
        Case {
            name: "ten_mb_appspec",
            bytes: gzip(&tar_bytes(&[
                Raw::file("appspec.yml", &big),
                Raw::file("app/x", b"x"),
            ])),
            kind: "tgz",
            reason: None,
            config: "",
        },
        Case {
            name: "appspec_over_limit",
            bytes: tar_bytes(&[Raw::file("appspec.yml", &over), Raw::file("app/x", b"x")]),
            kind: "tar",
            reason: Some("an appspec may be at most 16777216 bytes"),
            config: "",
        },
        Case {
            name: "nested_top_level_dir",
            bytes: gzip(&tar_bytes(&[
                Raw::dir("owner-repo-abc/"),
                Raw::file("owner-repo-abc/appspec.yml", &nested),
                Raw::file("owner-repo-abc/app/x", b"x"),
            ])),
            kind: "tgz",
            reason: None,
            config: "",
        },
        Case {
            name: "appspec_too_deep",
            bytes: gzip(&tar_bytes(&[
                Raw::file("a/b/appspec.yml", &deep),
                Raw::file("a/b/app/x", b"x"),
            ])),
            kind: "tgz",
            reason: Some("AppSpec file"),
            config: "",
        },
        Case {
            name: "dot_dot_member",
            bytes: tar_bytes(&[
                Raw::file("appspec.yml", &dots),
                Raw::file("app/../../escape", b"x"),
            ]),
            kind: "tar",
            reason: Some("entry \"app/../../escape\" refused: path escapes the archive dir"),
            config: "",
        },
        Case {
            name: "absolute_member",
            bytes: gzip(&tar_bytes(&[
                Raw::file("appspec.yml", &abs),
                Raw::file("/tmp/codedeploy-abs-member", b"x"),
            ])),
            kind: "tgz",
            reason: Some("entry \"/tmp/codedeploy-abs-member\" refused: absolute path"),
            config: "",
        },
        Case {
            name: "through_a_symlink",
            bytes: tar_bytes(&[
                Raw::file("appspec.yml", &through),
                Raw::symlink("app", "/tmp"),
                Raw::file("app/x", b"x"),
            ]),
            kind: "tar",
            reason: Some("entry \"app/x\" refused: path goes through the symlink \"app\""),
            config: "",
        },
        Case {
            name: "fifo_member",
            bytes: tar_bytes(&[Raw::file("appspec.yml", &fifo), fifo_raw]),
            kind: "tar",
            reason: Some("entry \"app/pipe\" refused: fifo entries are not allowed"),
            config: "",
        },
        Case {
            name: "setuid_refused_by_config",
            bytes: tar_bytes(&[Raw::file("appspec.yml", &setuid), setuid_raw]),
            kind: "tar",
            reason: Some("entry \"app/tool\" refused: setuid/setgid file (mode 4755)"),
            config: "reject_unsafe_permissions_in_bundle: true\n",
        },
        Case {
            name: "over_the_configured_size",
            bytes: tar_bytes(&[
                Raw::file("appspec.yml", &cap),
                Raw::file("app/big", &five_k),
            ]),
            kind: "tar",
            reason: Some("entry \"app/big\" takes the unpacked size past the limit of 2000 bytes"),
            config: "archive_max_extraction_size: 2000\n",
        },
        Case {
            name: "zip_through_a_symlink",
            bytes: zip_bytes(&[
                Z::File("appspec.yml", 0o644, &zip_link),
                Z::Symlink("app", "/etc"),
                Z::File("app/x", 0o644, b"x"),
            ]),
            kind: "zip",
            reason: Some("entry \"app/x\" refused: path goes through the symlink \"app\""),
            config: "",
        },
        Case {
            name: "appspec_links_inside",
            bytes: gzip(&tar_bytes(&[
                Raw::file("conf/real.yml", &linked),
                Raw::symlink("appspec.yml", "conf/real.yml"),
                Raw::file("app/x", b"x"),
            ])),
            kind: "tgz",
            reason: None,
            config: "",
        },
        Case {
            name: "appspec_links_out",
            bytes: tar_bytes(&[
                Raw::symlink("appspec.yml", "/etc/hostname"),
                Raw::file("app/x", b"x"),
            ]),
            kind: "tar",
            reason: Some(
                "leads outside the revision through the symbolic link appspec.yml -> /etc/hostname",
            ),
            config: "",
        },
    ];
    for case in &cases {
        check(case, work);
    }
    // The accepted ones really installed.
    assert!(dest(work, "ten_mb_appspec").join("x").is_file());
    assert!(dest(work, "nested_top_level_dir").join("x").is_file());
    assert!(dest(work, "appspec_links_inside").join("x").is_file());
    assert!(!Path::new("/tmp/codedeploy-abs-member").exists());
}
