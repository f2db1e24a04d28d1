//! `install_by_hard_link` (docs/adr/0011-install-by-hard-link.md), black box: real
//! `deploy-local` runs of directory bundles into temp roots. With the key on, a live file is a
//! second name of the kept revision's file (same inode); off, a copy. A later deployment
//! replaces the live files and leaves the earlier revision's bytes as they were; a destination
//! on another file system (a tmpfs, root only) gets copies.

#[path = "support/common.rs"]
mod common;
#[path = "support/mount.rs"]
mod mount_support;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn sandbox(hard_link: bool) -> Sandbox {
    let sb = Sandbox::new();
    fs::write(
        sb.config(),
        format!(
            // No reserve: the tmpfs destination of the last test is small.
            "root_dir: {}\nlog_dir: {}\ninstall_by_hard_link: {hard_link}\nfree_space_reserve: 0\n",
            sb.root().display(),
            sb.path().join("log").display(),
        ),
    )
    .unwrap();
    sb
}

/// A directory bundle installing `site/` (two files) into `dest`.
fn bundle(base: &Path, name: &str, dest: &Path, content: &str) -> PathBuf {
    let dir = base.join(name);
    write(&dir.join("appspec.yml"), &site_appspec(dest), false);
    write(&dir.join("site/index.html"), content, false);
    write(&dir.join("site/sub/app.conf"), "port=8080\n", false);
    dir
}

fn deploy(sb: &Sandbox, bundle: &Path) {
    let out = sb.deploy(&[
        "-g",
        "g1",
        "-e",
        "DownloadBundle,Install",
        "-l",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Every regular file under `dir` whose inode is `ino`.
fn names_of(dir: &Path, ino: u64) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else if m.ino() == ino {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
fn live_files_are_links_of_the_kept_revision_and_outlive_it_apart() {
    let sb = sandbox(true);
    let dest = sb.path().join("live");
    deploy(&sb, &bundle(sb.path(), "v1", &dest, "v1\n"));
    let live = dest.join("index.html");
    let m = fs::metadata(&live).unwrap();
    assert_eq!(m.nlink(), 2, "a second name");
    let kept = names_of(&sb.root(), m.ino());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].ends_with("deployment-archive/site/index.html"),
        "{kept:?}"
    );
    assert_eq!(fs::metadata(dest.join("sub/app.conf")).unwrap().nlink(), 2);

    // The next deployment removes the live names and links its own; the first revision's
    // file keeps its bytes and loses only the name it shared.
    deploy(&sb, &bundle(sb.path(), "v2", &dest, "v2\n"));
    assert_eq!(fs::read_to_string(&live).unwrap(), "v2\n");
    assert_eq!(fs::read_to_string(&kept[0]).unwrap(), "v1\n");
    assert_eq!(fs::metadata(&kept[0]).unwrap().nlink(), 1);
    assert_eq!(fs::metadata(&live).unwrap().nlink(), 2);
}

#[test]
fn without_the_key_live_files_are_copies() {
    let sb = sandbox(false);
    let dest = sb.path().join("live");
    deploy(&sb, &bundle(sb.path(), "v1", &dest, "v1\n"));
    let m = fs::metadata(dest.join("index.html")).unwrap();
    assert_eq!(m.nlink(), 1);
    assert_eq!(fs::read_to_string(dest.join("index.html")).unwrap(), "v1\n");
}

#[test]
fn a_destination_on_another_file_system_gets_copies() {
    let Some(fs_other) = mount_support::tmpfs_or_skip(
        "a_destination_on_another_file_system_gets_copies",
        "size=16m",
    ) else {
        return;
    };
    let sb = sandbox(true);
    let dest = fs_other.path().join("live");
    deploy(&sb, &bundle(sb.path(), "v1", &dest, "v1\n"));
    let m = fs::metadata(dest.join("index.html")).unwrap();
    assert_eq!(m.nlink(), 1, "a copy, not a link across file systems");
    assert_eq!(fs::read_to_string(dest.join("index.html")).unwrap(), "v1\n");
    assert_eq!(
        fs::read_to_string(dest.join("sub/app.conf")).unwrap(),
        "port=8080\n"
    );
}
