//! `appspec.yml` (or the `-A` name) and hook scripts that are links out of the revision, as
//! every bundle kind, against the built binary (`deploy-local` and `validate`): refused
//! without being opened, run or quoted, naming the link and its text; the canary outside
//! never shows up in any message or file. Links that stay inside keep working.

#[path = "support/common.rs"]
mod common;
#[path = "support/hostile.rs"]
mod hostile_support;

use common::*;
use hostile_support::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn validate(path: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("validate")
        .arg(path)
        .args(extra)
        .output()
        .expect("run validate")
}

fn said(out: &Output) -> Vec<u8> {
    let mut all = out.stdout.clone();
    all.extend_from_slice(&out.stderr);
    all
}

/// Everything under the deployment root that is a regular file (scripts.log, install.json,
/// the journal, the archive), checked for the marker.
fn assert_quiet(sb: &Sandbox, c: &Canary, out: &Output) {
    assert!(
        !contains(&said(out), &c.marker),
        "marker in output: {}",
        text(out)
    );
    assert_eq!(files_holding(&sb.root(), &c.marker), Vec::<String>::new());
}

/// The appspec links of the corpus, as (text, what the refusal must name).
fn appspec_links(c: &Canary) -> Vec<(String, String)> {
    let abs = c.file.to_string_lossy().into_owned();
    vec![
        (abs.clone(), format!("appspec.yml -> {abs}")),
        // From the archive (root/<group>/<id>/deployment-archive) this is the canary; from
        // a directory bundle's source it climbs out too.
        (
            "../../../../canary.txt".into(),
            "appspec.yml -> ../../../../canary.txt".into(),
        ),
        (
            "../canary.txt".into(),
            "appspec.yml -> ../canary.txt".into(),
        ),
        // A chain: appspec.yml -> spec.yml -> the canary.
        ("spec.yml".into(), format!("spec.yml -> {abs}")),
    ]
}

#[test]
fn an_appspec_that_links_out_is_refused_unopened_by_deploy_and_validate() {
    for kind in KINDS {
        for i in 0..4 {
            let sb = Sandbox::new();
            let c = Canary::plant(sb.path());
            let (text_of_link, named) = appspec_links(&c).swap_remove(i);
            let dir = sb.path().join("bundle");
            write(&dir.join("site/a.txt"), "a", false);
            symlink(&text_of_link, dir.join("appspec.yml")).unwrap();
            symlink(&c.file, dir.join("spec.yml")).unwrap();
            let bundle = pack(&dir, kind, sb.path());

            let out = sb.deploy(&["-l", bundle.to_str().unwrap(), "-t", kind]);
            assert!(
                !out.status.success(),
                "{kind} {text_of_link}: {}",
                text(&out)
            );
            let t = text(&out);
            assert!(t.contains(&named), "{kind} {text_of_link}: {t}");
            assert!(t.contains("not opened"), "{t}");
            assert_quiet(&sb, &c, &out);

            let out = validate(&bundle, &[]);
            assert!(!out.status.success(), "validate {kind}: {}", text(&out));
            assert!(
                !contains(&said(&out), &c.marker),
                "validate: {}",
                text(&out)
            );
            if kind == "directory" {
                assert!(text(&out).contains(&named), "{}", text(&out));
            }
        }
    }
}

#[test]
fn a_custom_appspec_name_climbing_out_is_refused() {
    let sb = Sandbox::new();
    let c = Canary::plant(sb.path());
    let dir = sb.path().join("bundle");
    write(&dir.join("appspec.yml"), "version: 0.0\nos: linux\n", false);
    let out = validate(&dir, &["-A", "../canary.txt"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("outside the revision"),
        "{}",
        text(&out)
    );
    assert!(!contains(&said(&out), &c.marker));
    let out = sb.deploy(&["-l", dir.to_str().unwrap(), "-A", "../../../../canary.txt"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_quiet(&sb, &c, &out);
}

#[test]
fn an_appspec_linking_to_a_regular_file_inside_works() {
    for kind in KINDS {
        let sb = Sandbox::new();
        let dest = sb.path().join("dest");
        let dir = sb.path().join("bundle");
        write(&dir.join("conf/real.yml"), &site_appspec(&dest), false);
        write(&dir.join("site/a.txt"), "a", false);
        symlink("conf/real.yml", dir.join("appspec.yml")).unwrap();
        let bundle = pack(&dir, kind, sb.path());
        let out = sb.deploy(&["-l", bundle.to_str().unwrap(), "-t", kind]);
        assert!(out.status.success(), "{kind}: {}", text(&out));
        assert_eq!(fs::read_to_string(dest.join("a.txt")).unwrap(), "a");
        if kind == "directory" {
            let out = validate(&bundle, &[]);
            assert!(out.status.success(), "{}", text(&out));
        }
    }
}

/// A bundle whose AfterInstall script is `location`, with `links` added.
fn hook_bundle(sb: &Sandbox, location: &str, links: &[(&str, PathBuf)]) -> PathBuf {
    let dir = sb.path().join("bundle");
    write(
        &dir.join("appspec.yml"),
        &format!("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: {location}\n"),
        false,
    );
    write(&dir.join("inner/ok.sh"), "#!/bin/sh\necho ok\n", true);
    for (name, target) in links {
        fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
        symlink(target, dir.join(name)).unwrap();
    }
    dir
}

/// A script location, the links the bundle holds, and what the refusal must name.
type HookCase = (&'static str, Vec<(&'static str, PathBuf)>, String);

#[test]
fn a_hook_script_that_links_out_is_refused_and_never_run() {
    for kind in KINDS {
        let probe = Sandbox::new();
        let cases = |c: &Canary| -> Vec<HookCase> {
            let script = c.script();
            vec![
                (
                    "run.sh",
                    vec![("run.sh", script.clone())],
                    format!("run.sh -> {}", script.display()),
                ),
                (
                    "run.sh",
                    vec![("run.sh", PathBuf::from("../../../../canary.sh"))],
                    "run.sh -> ../../../../canary.sh".into(),
                ),
                (
                    "bin/canary.sh",
                    vec![("bin", c.dir.parent().unwrap().to_path_buf())],
                    format!("bin -> {}", c.dir.parent().unwrap().display()),
                ),
                (
                    "scripts/canary.sh",
                    vec![
                        ("scripts", PathBuf::from("inner")),
                        ("inner/canary.sh", PathBuf::from("../../../../../canary.sh")),
                    ],
                    "inner/canary.sh -> ../../../../../canary.sh".into(),
                ),
            ]
        };
        let n = cases(&Canary::plant(probe.path())).len();
        for i in 0..n {
            let sb = Sandbox::new();
            let c = Canary::plant(sb.path());
            let (location, links, named) = cases(&c).swap_remove(i);
            let dir = hook_bundle(&sb, location, &links);
            let bundle = pack(&dir, kind, sb.path());
            let out = sb.deploy(&["-l", bundle.to_str().unwrap(), "-t", kind]);
            assert!(!out.status.success(), "{kind} {named}: {}", text(&out));
            let t = text(&out);
            assert!(t.contains(&named), "{kind}: {t}");
            assert!(t.contains("outside the deployment archive"), "{t}");
            assert!(!c.script_ran(), "{kind} {named}: the canary script ran");
            assert_quiet(&sb, &c, &out);
        }
    }
}

#[test]
fn a_hook_script_through_a_link_inside_runs() {
    let sb = Sandbox::new();
    let dir = hook_bundle(&sb, "scripts/ok.sh", &[("scripts", PathBuf::from("inner"))]);
    for kind in KINDS {
        let bundle = pack(&dir, kind, sb.path());
        let out = sb.deploy(&["-l", bundle.to_str().unwrap(), "-t", kind]);
        assert!(out.status.success(), "{kind}: {}", text(&out));
    }
}

#[test]
fn validate_judges_links_as_the_deployment_does() {
    let sb = Sandbox::new();
    let c = Canary::plant(sb.path());
    let dir = sb.path().join("bundle");
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: host/secret\n    destination: /tmp/x\n  - source: logs\n    destination: /tmp/x\nhooks:\n  AfterInstall:\n    - location: run.sh\n      timeout: 60\n    - location: scripts/ok.sh\n      timeout: 60\n",
        false,
    );
    write(&dir.join("inner/ok.sh"), "#!/bin/sh\n", true);
    symlink("inner", dir.join("scripts")).unwrap();
    symlink(c.script(), dir.join("run.sh")).unwrap();
    symlink(&c.dir, dir.join("host")).unwrap();
    symlink("/var/log/app", dir.join("logs")).unwrap();
    let out = validate(&dir, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("\"host/secret\" does not exist in the bundle"),
        "{t}"
    );
    assert!(t.contains("\"run.sh\" is not a regular file"), "{t}");
    assert!(
        !t.contains("scripts/ok.sh"),
        "a script through a link inside is fine: {t}"
    );
    assert!(
        !t.contains("\"logs\""),
        "a link out as a files source is installed as a link: {t}"
    );
    assert!(!contains(&said(&out), &c.marker));
}
