//! deploy-local, black box: a hook asks for a reboot (docs/reboot.md); `reboot_command` is a
//! script that records that it ran and kills deploy-local as a reboot would; `deploy-local
//! --resume` then goes on from the next script, and every script runs exactly once.
#[path = "support/common.rs"]
mod common;
use common::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

/// A sandbox whose `reboot_command` appends to `reboots` and SIGKILLs its parent
/// (deploy-local), the way a reboot ends it.
fn sandbox_with_reboot() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    let reboots = sb.path().join("reboots");
    let script = sb.path().join("fake-reboot.sh");
    write(
        &script,
        &format!(
            "#!/bin/sh\necho reboot >> {}\nkill -KILL $PPID\n",
            reboots.display()
        ),
        true,
    );
    let mut cfg = fs::read_to_string(sb.config()).unwrap();
    cfg.push_str(&format!("reboot_command: {}\n", script.display()));
    fs::write(sb.config(), cfg).unwrap();
    (sb, reboots)
}

/// A script that logs `<event> <name>` and, with `reboot`, asks for a reboot.
fn script(log: &Path, name: &str, reboot: bool) -> String {
    format!(
        "#!/bin/sh\necho \"$LIFECYCLE_EVENT {name}\" >> {}\n{}",
        log.display(),
        if reboot {
            "touch \"$CODEDEPLOY_REBOOT_REQUEST\"\n"
        } else {
            ""
        }
    )
}

fn bundle(sb: &Sandbox, name: &str, log: &Path) -> PathBuf {
    let dir = sb.path().join(name);
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n  AfterInstall:\n    - location: b1.sh\n      timeout: 60\n    - location: b2.sh\n      timeout: 60\n  ApplicationStart:\n    - location: s1.sh\n  ValidateService:\n    - location: v.sh\n",
        false,
    );
    write(&dir.join("a.sh"), &script(log, "a", false), true);
    write(&dir.join("b1.sh"), &script(log, "b1", true), true);
    write(&dir.join("b2.sh"), &script(log, "b2", false), true);
    write(&dir.join("s1.sh"), &script(log, "s1", true), true);
    write(&dir.join("v.sh"), &script(log, "v", false), true);
    dir
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn killed(out: &std::process::Output) -> bool {
    out.status.signal() == Some(9)
}

#[test]
fn resume_goes_on_after_a_middle_script_and_after_application_start() {
    let (sb, reboots) = sandbox_with_reboot();
    let log = sb.path().join("hooks.log");
    let b = bundle(&sb, "app", &log);
    let out = sb.deploy(&["-l", b.to_str().unwrap(), "-g", "g1"]);
    assert!(killed(&out), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("b1.sh asked for a reboot"),
        "{}",
        text(&out)
    );
    assert_eq!(lines(&reboots), ["reboot"]);
    assert_eq!(lines(&log), ["BeforeInstall a", "AfterInstall b1"]);
    let record = sb.root().join("deployment-instructions/g1.reboot");
    assert!(record.is_file(), "the record is written before the reboot");

    // First boot: the rest of AfterInstall, then ApplicationStart's only script asks again.
    let out = sb.deploy(&["--resume"]);
    assert!(killed(&out), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("at script 2 (after b1.sh)"),
        "{}",
        text(&out)
    );
    assert_eq!(lines(&reboots), ["reboot", "reboot"]);
    assert_eq!(
        lines(&log),
        [
            "BeforeInstall a",
            "AfterInstall b1",
            "AfterInstall b2",
            "ApplicationStart s1"
        ]
    );

    // Second boot: ApplicationStart is complete (its last script asked), ValidateService runs.
    let out = sb.deploy(&["--resume"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Local deployment successful"),
        "{}",
        text(&out)
    );
    assert_eq!(
        lines(&log),
        [
            "BeforeInstall a",
            "AfterInstall b1",
            "AfterInstall b2",
            "ApplicationStart s1",
            "ValidateService v"
        ]
    );
    assert_eq!(
        lines(&reboots).len(),
        2,
        "no second reboot from a request left behind"
    );
    assert!(!record.exists(), "the record is gone once resumed");
    let last = fs::read_to_string(
        sb.root()
            .join("deployment-instructions/g1_last_successful_install"),
    )
    .unwrap();
    assert!(last.contains("-local"), "{last}");

    // Nothing left to resume.
    let out = sb.deploy(&["--resume"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No local deployment is paused"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_deployment_that_took_the_group_meanwhile_supersedes_the_paused_one() {
    let (sb, reboots) = sandbox_with_reboot();
    let log = sb.path().join("hooks.log");
    let b = bundle(&sb, "app", &log);
    let out = sb.deploy(&["-l", b.to_str().unwrap(), "-g", "g1"]);
    assert!(killed(&out), "{}", text(&out));
    // Another revision of the group, with no reboot in it, deployed before the resume.
    let other = sb.path().join("other");
    write(
        &other.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: o.sh\n",
        false,
    );
    write(&other.join("o.sh"), &script(&log, "o", false), true);
    let out = sb.deploy(&["-l", other.to_str().unwrap(), "-g", "g1"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sb.deploy(&["--resume"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("another deployment took the group"),
        "{}",
        text(&out)
    );
    assert_eq!(
        lines(&log),
        ["BeforeInstall a", "AfterInstall b1", "AfterInstall o"],
        "nothing of the paused deployment ran again"
    );
    assert_eq!(lines(&reboots), ["reboot"]);
    assert!(!sb.root().join("deployment-instructions/g1.reboot").exists());
}

#[test]
fn a_reboot_command_that_fails_fails_the_deployment_and_leaves_no_record() {
    let sb = Sandbox::new();
    let mut cfg = fs::read_to_string(sb.config()).unwrap();
    cfg.push_str("reboot_command: /bin/false\n");
    fs::write(sb.config(), cfg).unwrap();
    let log = sb.path().join("hooks.log");
    let b = bundle(&sb, "app", &log);
    let out = sb.deploy(&["-l", b.to_str().unwrap(), "-g", "g1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("The reboot could not be started"),
        "{}",
        text(&out)
    );
    assert_eq!(lines(&log), ["BeforeInstall a", "AfterInstall b1"]);
    assert!(!sb.root().join("deployment-instructions/g1.reboot").exists());
}

#[test]
fn a_bad_reboot_command_is_refused_at_start_up_naming_the_key() {
    let sb = Sandbox::new();
    let mut cfg = fs::read_to_string(sb.config()).unwrap();
    cfg.push_str("reboot_command: ./reboot.sh\n");
    fs::write(sb.config(), cfg).unwrap();
    let out = sb.deploy(&["--resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reboot_command"),
        "{}",
        text(&out)
    );
}
