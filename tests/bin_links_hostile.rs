//! The hostile corpus against the built binary: bundles (directory, tar, tgz, zip) whose
//! links lead outside the revision in every way (absolute, relative with `..`, chains, a link
//! to a directory inside holding links to outside, dangling), names that only differ in bytes
//! that are not UTF-8, then a next revision whose cleanup must remove exactly what was
//! installed. Both directions are checked: nothing outside the destination changes (the
//! canary's modes included), and the canary's marker never shows up in the deployment
//! archive, the destination, install.json, the journal, scripts.log, stdout or stderr.

#[path = "support/common.rs"]
mod common;
#[path = "support/hostile.rs"]
mod hostile_support;

use common::*;
use hostile_support::*;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const GROUP: &str = "default-local-deployment-group";

/// Links of the corpus: name in the bundle root and its text (`{canary}`, `{hostdir}`
/// replaced). Every one leads outside the revision or nowhere.
const LINKS: &[(&str, &str)] = &[
    ("abs_file", "{canary}"),
    ("abs_dir", "{hostdir}"),
    // Relative, climbing out of the source directory of a directory bundle ...
    ("up_src", "../canary.txt"),
    // ... and out of the deployment archive (root/<group>/<id>/deployment-archive).
    ("up_arc", "../../../../canary.txt"),
    ("up_dir", "../../../../hostdir"),
    ("chain1", "chain2"),
    ("chain2", "chain3"),
    ("chain3", "abs_dir"),
    ("dangling", "/nonexistent-codedeploy-test/x"),
    ("inner/leak", "{canary}"),
    ("inner/up", "../.."),
    // A link to a directory inside: followed, but the links in it are not.
    ("conf", "inner"),
];

fn fill(t: &str, c: &Canary) -> String {
    t.replace("{canary}", &c.file.to_string_lossy())
        .replace("{hostdir}", &c.dir.to_string_lossy())
}

/// The corpus tree at `sb/bundle`, installing into `dest`.
fn corpus(sb: &Sandbox, c: &Canary, dest: &Path) -> PathBuf {
    let dir = sb.path().join("bundle");
    let appspec = format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: {d}\npermissions:\n  - object: {d}/abs_dir\n    mode: 777\n  - object: {d}/chain1\n    mode: 777\n  - object: {d}/conf\n    pattern: \"**\"\n    mode: 666\n    type:\n      - file\n  - object: {d}/inner\n    pattern: \"**\"\n    mode: 777\n    owner: nobody\nhooks:\n  AfterInstall:\n    - location: hook.sh\n",
        d = dest.display()
    );
    write(&dir.join("appspec.yml"), &appspec, false);
    write(
        &dir.join("hook.sh"),
        &format!("#!/bin/sh\necho hook ran > {}/hook-ran\n", dest.display()),
        true,
    );
    write(&dir.join("inner/a.txt"), "inside", false);
    for (name, text) in LINKS {
        symlink(fill(text, c), dir.join(name)).unwrap();
    }
    fs::write(byte_path(&dir, b"caf\xe9"), "latin-1 e acute").unwrap();
    fs::write(byte_path(&dir, b"caf\xe8"), "latin-1 e grave").unwrap();
    fs::create_dir_all(byte_path(&dir, b"bytes\xff")).unwrap();
    fs::write(byte_path(&dir, b"bytes\xff/\xfe\xfd"), "deep").unwrap();
    dir
}

fn everything_said(sb: &Sandbox, out: &std::process::Output) -> Vec<u8> {
    let mut all = out.stdout.clone();
    all.extend_from_slice(&out.stderr);
    // scripts.log, install.json and the journal are all under the deployment root.
    for (_, seen) in snapshot(&sb.root(), &[]) {
        if let Seen::File(_, bytes) = seen {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

fn assert_marker_nowhere(sb: &Sandbox, c: &Canary, dest: &Path, out: &std::process::Output) {
    assert!(
        !contains(&everything_said(sb, out), &c.marker),
        "the canary leaked into a message or a file under the deployment root: {}",
        text(out)
    );
    assert_eq!(files_holding(dest, &c.marker), Vec::<String>::new());
    assert_eq!(files_holding(&sb.root(), &c.marker), Vec::<String>::new());
}

fn outside(sb: &Sandbox) -> std::collections::BTreeMap<Vec<u8>, Seen> {
    snapshot(sb.path(), &["deployment-root", "dest", "log"])
}

fn check_installed(dest: &Path, c: &Canary) {
    for (name, text) in LINKS {
        let (parent, leaf) = name.rsplit_once('/').unwrap_or(("", name));
        for dir in [parent, if parent == "inner" { "conf" } else { parent }] {
            let p = dest.join(dir).join(leaf);
            let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            if *name == "conf" {
                assert!(m.is_dir(), "a link to a directory inside is followed");
                continue;
            }
            assert!(m.file_type().is_symlink(), "{} is a link", p.display());
            assert_eq!(fs::read_link(&p).unwrap(), Path::new(&fill(text, c)));
        }
    }
    assert_eq!(
        fs::read_to_string(dest.join("conf/a.txt")).unwrap(),
        "inside"
    );
    let read = |n: &[u8]| fs::read_to_string(byte_path(dest, n)).unwrap();
    assert_eq!(read(b"caf\xe9"), "latin-1 e acute");
    assert_eq!(read(b"caf\xe8"), "latin-1 e grave");
    assert_eq!(read(b"bytes\xff/\xfe\xfd"), "deep");
    assert_eq!(read(b"hook-ran"), "hook ran\n");
    assert!(!dest.join("caf\u{fffd}").exists());
}

fn check_records(sb: &Sandbox, dest: &Path) {
    let instructions = sb.root().join("deployment-instructions");
    let json = fs::read(instructions.join(format!("{GROUP}-install.json"))).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).expect("install.json is JSON");
    let dests: Vec<String> = doc["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["destination"].as_str().map(str::to_string))
        .collect();
    let d = dest.display();
    for want in [
        format!("{d}/caf\\xe9"),
        format!("{d}/caf\\xe8"),
        format!("{d}/bytes\\xff/\\xfe\\xfd"),
    ] {
        assert!(dests.contains(&want), "{want} in {dests:?}");
    }
    // The journal holds the names' bytes, one per line, as the official agent writes it.
    let journal = fs::read(instructions.join(format!("{GROUP}-cleanup"))).unwrap();
    let lines: Vec<&[u8]> = journal.split(|&b| b == b'\n').collect();
    for name in [
        &b"caf\xe9"[..],
        b"caf\xe8",
        b"bytes\xff/\xfe\xfd",
        b"abs_dir",
    ] {
        let want = byte_path(dest, name);
        assert!(lines.contains(&want.as_os_str().as_bytes()), "{want:?}");
    }
}

fn corpus_round(kind: &str) {
    let sb = Sandbox::new();
    let c = Canary::plant(sb.path());
    let dest = sb.path().join("dest");
    let tree = corpus(&sb, &c, &dest);
    let packed = sb.path().join("packed");
    fs::create_dir_all(&packed).unwrap();
    let bundle = pack(&tree, kind, &packed);
    let before = outside(&sb);

    let out = sb.deploy(&["-l", bundle.to_str().unwrap(), "-t", kind]);
    assert!(out.status.success(), "{kind}: {}", text(&out));
    check_installed(&dest, &c);
    check_records(&sb, &dest);
    assert_marker_nowhere(&sb, &c, &dest, &out);
    assert_eq!(
        outside(&sb),
        before,
        "{kind}: something outside the destination changed"
    );

    // The next revision's cleanup removes exactly what was installed, byte names included,
    // and unlinks the links without following them (hostdir and the canary stay whole).
    let r2 = sb.path().join("r2");
    write(
        &r2.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: only.txt\n    destination: {}\n",
            dest.display()
        ),
        false,
    );
    write(&r2.join("only.txt"), "second", false);
    let before = outside(&sb);
    let out = sb.deploy(&["-l", r2.to_str().unwrap()]);
    assert!(out.status.success(), "{kind}: {}", text(&out));
    let mut left: Vec<Vec<u8>> = snapshot(&dest, &[]).into_keys().collect();
    left.sort();
    assert_eq!(left, [b"hook-ran".to_vec(), b"only.txt".to_vec()], "{kind}");
    assert_eq!(
        outside(&sb),
        before,
        "{kind}: cleanup reached outside the destination"
    );
    assert_marker_nowhere(&sb, &c, &dest, &out);
}

#[test]
fn corpus_as_a_directory_bundle() {
    corpus_round("directory");
}

#[test]
fn corpus_as_tar() {
    corpus_round("tar");
}

#[test]
fn corpus_as_tgz() {
    corpus_round("tgz");
}

#[test]
fn corpus_as_zip() {
    corpus_round("zip");
}

/// A bundle with a plain appspec, one file and `extra` links; `files_source` is the files
/// entry's source.
fn small(sb: &Sandbox, c: &Canary, files_source: &str, dest: &Path) -> PathBuf {
    let dir = sb.path().join("small");
    write(
        &dir.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: {files_source}\n    destination: {}\n",
            dest.display()
        ),
        false,
    );
    write(&dir.join("inner/a.txt"), "inside", false);
    symlink(&c.dir, dir.join("abs_dir")).unwrap();
    symlink("inner", dir.join("conf")).unwrap();
    symlink("../../../../hostdir", dir.join("inner/up")).unwrap();
    symlink("abs_dir", dir.join("chain")).unwrap();
    dir
}

#[test]
fn a_files_source_reaching_outside_through_a_link_is_refused_naming_the_link() {
    let cases = [
        ("abs_dir/secret", "abs_dir -> {hostdir}"),
        ("chain/secret", "abs_dir -> {hostdir}"),
        ("conf/up/secret", "inner/up -> ../../../../hostdir"),
    ];
    for kind in KINDS {
        for (source, link) in cases {
            let sb = Sandbox::new();
            let c = Canary::plant(sb.path());
            let dest = sb.path().join("dest");
            let tree = small(&sb, &c, source, &dest);
            let bundle = pack(&tree, kind, sb.path());
            let before = outside(&sb);
            let out = sb.deploy(&["-l", bundle.to_str().unwrap(), "-t", kind]);
            assert!(!out.status.success(), "{kind} {source}: {}", text(&out));
            let said = text(&out);
            assert!(said.contains(&fill(link, &c)), "{kind} {source}: {said}");
            assert!(said.contains("outside the revision"), "{said}");
            assert!(!dest.join("secret").exists());
            assert_marker_nowhere(&sb, &c, &dest, &out);
            assert_eq!(outside(&sb), before);
        }
    }
}
