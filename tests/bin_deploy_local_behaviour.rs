//! deploy-local, black box: revisions replacing each other, every script failure kind, hook
//! containment, runas, rollback and argument errors.

#[path = "support/common.rs"]
mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A directory bundle with an appspec and executable scripts.
fn bundle(sb: &Sandbox, name: &str, appspec: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = sb.path().join(name);
    write(&dir.join("appspec.yml"), appspec, false);
    for (path, content) in files {
        write(&dir.join(path), content, path.ends_with(".sh"));
    }
    dir
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn second_revision_replaces_the_first_and_runs_its_application_stop() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest");
    let marks = sb.path().join("marks");
    let spec = |rev: &str| {
        format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n  AfterInstall:\n    - location: after.sh\n",
            dest.display()
        ) + &format!("# {rev}\n")
    };
    let stop = format!(
        "#!/bin/sh\necho \"stop $DEPLOYMENT_ID from {{REV}}\" >> {}\n",
        marks.display()
    );
    let after = format!(
        "#!/bin/sh\necho created-by-script > {}/from-script.txt\n",
        dest.display()
    );
    let r1 = bundle(
        &sb,
        "r1",
        &spec("r1"),
        &[
            ("site/common.txt", "one"),
            ("site/only-r1.txt", "x"),
            ("site/sub/deep.txt", "d"),
            ("stop.sh", &stop.replace("{REV}", "r1")),
            ("after.sh", &after),
        ],
    );
    let r2 = bundle(
        &sb,
        "r2",
        &spec("r2"),
        &[
            ("site/common.txt", "two"),
            ("site/only-r2.txt", "y"),
            ("stop.sh", &stop.replace("{REV}", "r2")),
            ("after.sh", &after),
        ],
    );
    let out = sb.deploy(&["-l", r1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !marks.exists(),
        "the first deployment has no earlier revision to stop"
    );
    assert!(stdout(&out).contains("ApplicationStop"), "{}", stdout(&out));
    let out = sb.deploy(&["-l", r2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(dest.join("common.txt")).unwrap(),
        "two",
        "replaced"
    );
    assert!(
        !dest.join("only-r1.txt").exists(),
        "removed: r2 no longer ships it"
    );
    assert!(!dest.join("sub").exists(), "empty directory of r1 removed");
    assert!(dest.join("only-r2.txt").is_file());
    assert!(
        dest.join("from-script.txt").is_file(),
        "files scripts created are kept"
    );
    let marks = fs::read_to_string(&marks).unwrap();
    assert!(
        marks.contains("from r1"),
        "r1's ApplicationStop ran: {marks}"
    );
    assert_eq!(
        fs::read_dir(sb.group_dir("default-local-deployment-group"))
            .unwrap()
            .count(),
        2
    );
}

fn one_hook(sb: &Sandbox, event: &str, script: &str, extra: &str) -> PathBuf {
    let appspec =
        format!("version: 0.0\nos: linux\nhooks:\n  {event}:\n    - location: hook.sh\n{extra}");
    bundle(sb, "b", &appspec, &[("hook.sh", script)])
}

#[test]
fn failing_script_reports_code_4_with_status_and_output_tail() {
    let sb = Sandbox::new();
    let b = one_hook(
        &sb,
        "AfterInstall",
        "#!/bin/sh\necho about to fail\necho oops >&2\nexit 3\n",
        "",
    );
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    assert!(!out.status.success());
    let s = stdout(&out);
    assert!(s.contains("AfterInstall"), "{s}");
    assert!(s.contains("error code: 4"), "{s}");
    assert!(s.contains("failed with exit code 3"), "{s}");
    assert!(s.contains("[stdout]about to fail"), "{s}");
    assert!(s.contains("[stderr]oops"), "{s}");
    assert!(s.contains("scripts.log"), "{s}");
    assert!(
        s.contains("Your local deployment failed while trying to execute your script at"),
        "{s}"
    );
}

#[test]
fn missing_script_is_code_1() {
    let sb = Sandbox::new();
    let b = bundle(
        &sb,
        "b",
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: nope.sh\n",
        &[],
    );
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    assert!(!out.status.success());
    let s = stdout(&out);
    assert!(s.contains("error code: 1"), "{s}");
    assert!(
        s.contains("Script does not exist at specified location"),
        "{s}"
    );
}

#[test]
fn non_executable_script_is_made_executable_and_runs() {
    let sb = Sandbox::new();
    let b = bundle(
        &sb,
        "b",
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: plain.txt\n",
        &[("plain.txt", "#!/bin/sh\necho ran-anyway\n")],
    );
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn timed_out_script_is_code_3_and_its_setsid_daemon_is_gone() {
    let sb = Sandbox::new();
    let marker = format!("cdtest-timeout-{}", std::process::id());
    let script = format!(
        "#!/bin/bash\nsetsid bash -c 'exec -a {marker} sleep 1000' </dev/null >/dev/null 2>&1 &\necho started\nsleep 1000\n"
    );
    let b = one_hook(&sb, "ApplicationStart", &script, "      timeout: 2\n");
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    let left = kill_marker(&marker);
    assert!(!out.status.success());
    let s = stdout(&out);
    assert!(s.contains("error code: 3"), "{s}");
    assert!(s.contains("failed to complete in 2 seconds"), "{s}");
    assert_eq!(left, 0, "a process started by the timed-out hook survived");
}

#[test]
fn outputs_left_open_is_code_6() {
    let sb = Sandbox::new();
    let marker = format!("cdtest-open-{}", std::process::id());
    let script = format!("#!/bin/bash\n(exec -a {marker} sleep 1000) &\necho done\nexit 0\n");
    let b = one_hook(&sb, "ApplicationStart", &script, "      timeout: 2\n");
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    kill_marker(&marker);
    assert!(!out.status.success(), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("error code: 6"), "{s}");
    assert!(s.contains("failed to close STDOUT"), "{s}");
}

#[test]
fn successful_hook_keeps_its_daemon_running() {
    let sb = Sandbox::new();
    let marker = format!("cdtest-daemon-{}", std::process::id());
    let script = format!("#!/bin/bash\nsetsid bash -c 'exec -a {marker} sleep 1000' </dev/null >/dev/null 2>&1 &\nexit 0\n");
    let b = one_hook(&sb, "ApplicationStart", &script, "");
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    // The hook's background job may not have exec'd `setsid` (whose command line carries the
    // marker) by the time deploy-local exits, on a busy machine: look for it a while.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids_with_marker(&marker).is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let alive = kill_marker(&marker);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        alive, 1,
        "the daemon a successful hook started must survive"
    );
}

#[test]
fn runas_nobody_runs_as_nobody() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: runas needs root");
        return;
    }
    let sb = Sandbox::new();
    let out_file = sb.path().join("who");
    fs::set_permissions(
        sb.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let script = format!(
        "#!/bin/sh\nid -un > {}\necho \"$HOME $USER $LOGNAME\" >> {}\n",
        out_file.display(),
        out_file.display()
    );
    let b = one_hook(&sb, "ApplicationStart", &script, "      runas: nobody\n");
    let out = sb.deploy(&["-l", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let who = fs::read_to_string(&out_file).unwrap();
    assert!(who.starts_with("nobody\n"), "{who}");
    assert!(who.contains("nobody nobody"), "{who}");
}

#[test]
fn rollback_on_failure_restores_the_previous_revision() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest");
    let marks = sb.path().join("marks");
    let spec = |validate: &str| {
        format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\nhooks:\n  ApplicationStart:\n    - location: start.sh\n  ValidateService:\n    - location: {validate}\n",
            dest.display()
        )
    };
    let start = |rev: &str| format!("#!/bin/sh\necho start-{rev} >> {}\n", marks.display());
    let good = bundle(
        &sb,
        "good",
        &spec("ok.sh"),
        &[
            ("site/v.txt", "good"),
            ("site/good-only.txt", "g"),
            ("start.sh", &start("good")),
            ("ok.sh", "#!/bin/sh\nexit 0\n"),
        ],
    );
    let bad = bundle(
        &sb,
        "bad",
        &spec("fail.sh"),
        &[
            ("site/v.txt", "bad"),
            ("site/bad-only.txt", "b"),
            ("start.sh", &start("bad")),
            ("fail.sh", "#!/bin/sh\necho unhealthy\nexit 1\n"),
        ],
    );
    assert!(sb.deploy(&["-l", good.to_str().unwrap()]).status.success());
    let out = sb.deploy(&["-l", bad.to_str().unwrap(), "--rollback-on-failure"]);
    assert!(
        !out.status.success(),
        "the deployment itself failed: {}",
        text(&out)
    );
    let s = stdout(&out);
    assert!(s.contains("Rolling back"), "{s}");
    assert!(s.contains("succeeded"), "{s}");
    assert_eq!(fs::read_to_string(dest.join("v.txt")).unwrap(), "good");
    assert!(dest.join("good-only.txt").is_file());
    assert!(!dest.join("bad-only.txt").exists());
    assert_eq!(
        fs::read_to_string(&marks).unwrap(),
        "start-good\nstart-bad\nstart-good\n"
    );
}

#[test]
fn argument_errors_are_clear() {
    let sb = Sandbox::new();
    let dir = sb.path().join("emptydir");
    fs::create_dir_all(&dir).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "-t".into(),
                "rar".into(),
                "-l".into(),
                dir.display().to_string(),
            ],
            "type rar is not a valid type",
        ),
        (
            vec!["-l".into(), "/does/not/exist".into()],
            "does not exist",
        ),
        (
            vec![
                "-l".into(),
                dir.display().to_string(),
                "-t".into(),
                "tgz".into(),
            ],
            "is a directory",
        ),
        (
            vec!["-l".into(), dir.display().to_string()],
            "Expecting appspec file",
        ),
        (
            vec!["-l".into(), "http://example.com/b.zip".into()],
            "cannot be http",
        ),
        (
            vec![
                "-l".into(),
                dir.display().to_string(),
                "-e".into(),
                "ApplicationStart,DownloadBundle".into(),
            ],
            "before DownloadBundle",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.deploy(&args);
        assert!(!out.status.success());
        let all = text(&out);
        assert!(all.contains(want), "{args:?}: {all}");
    }
}

#[test]
fn help_and_version_exit_zero() {
    for args in [&["--help"][..], &["--version"], &["deploy-local", "--help"]] {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
    }
    let v = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn codedeploy_local_link_behaves_as_deploy_local() {
    let sb = Sandbox::new();
    let link = sb.path().join("codedeploy-local");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let b = bundle(&sb, "b", "version: 0.0\nos: linux\n", &[]);
    let out = std::process::Command::new(&link)
        .args([
            "-c",
            sb.config().to_str().unwrap(),
            "-l",
            b.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("Local deployment successful"));
    let _ = Path::new("");
}
