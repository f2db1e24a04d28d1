//! A large install plan waits on disk, not in memory (core's `plan::tape`, the adapter's
//! `install::spill`), black box: a real `deploy-local` of a directory bundle whose plan
//! outgrows the planner's buffer. The agent is frozen right after it opened the spill file
//! (failpoint `plan-spill`): the file is open, has no name, and lives in the instructions
//! directory. Killed there, the agent leaves nothing behind, and the next deployment installs
//! every file; the one after it reads the first one's large journal through a spilled index.

#[path = "support/common.rs"]
mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 6_000;

fn name(i: usize) -> String {
    format!(
        "d{:02}/a-long-enough-name-to-fill-the-plan-{i:05}.txt",
        i / 100
    )
}

/// A directory bundle installing `site/` (FILES files in 60 directories) into `dest`.
fn bundle(base: &Path, dest: &Path) -> PathBuf {
    let dir = base.join("bundle");
    write(&dir.join("appspec.yml"), &site_appspec(dest), false);
    for i in 0..FILES {
        let p = dir.join("site").join(name(i));
        if i % 100 == 0 {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        fs::write(&p, format!("{i}\n")).unwrap();
    }
    dir
}

fn args(bundle: &Path) -> Vec<String> {
    ["-g", "g1", "-e", "DownloadBundle,Install", "-l"]
        .iter()
        .map(|s| s.to_string())
        .chain([bundle.display().to_string()])
        .collect()
}

#[test]
fn a_large_plan_spills_to_an_unnamed_file_that_a_crash_leaves_nowhere() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest");
    let b = bundle(sb.path(), &dest);
    let marker = sb.path().join("frozen.pid");
    let mut child = Command::new(BIN)
        .arg("deploy-local")
        .arg("-c")
        .arg(sb.config())
        .args(args(&b))
        .env("CODEDEPLOY_FAILPOINT", "plan-spill")
        .env("CODEDEPLOY_FAILPOINT_FILE", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    while !marker.exists() && started.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("deploy-local ended before its plan spilled: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let frozen = marker.exists();
    // What the frozen agent holds open in the instructions directory.
    let instructions = sb.root().join("deployment-instructions");
    let open: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| fs::read_link(e.path()).ok())
                .filter(|t| t.starts_with(&instructions))
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
    assert!(frozen, "the plan of {FILES} files never reached the spill");
    // Besides the group's lock, one file: the spill, which has no name.
    let spills: Vec<&String> = open.iter().filter(|t| !t.ends_with("/g1.lock")).collect();
    assert_eq!(spills.len(), 1, "one spill file open: {open:?}");
    assert!(
        spills[0].ends_with(" (deleted)"),
        "the spill has no name: {open:?}"
    );

    // The crash left nothing in the instructions directory but the group's own state files
    // (its lock, its most recent install), and nothing was installed yet.
    let left: Vec<String> = fs::read_dir(&instructions)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| n.starts_with("g1")), "{left:?}");
    assert!(
        !dest.exists(),
        "the crash came before the install changed anything"
    );

    // The next deployment plans (through a spill again) and installs every file.
    let out = sb.deploy(&args(&b).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));
    for i in (0..FILES).step_by(101).chain([FILES - 1]) {
        assert_eq!(
            fs::read_to_string(dest.join(name(i))).unwrap(),
            format!("{i}\n")
        );
    }
    let journal = fs::read_to_string(instructions.join("g1-cleanup")).unwrap();
    assert_eq!(
        journal.lines().count(),
        FILES + 60 + 1,
        "every file and directory"
    );
    assert!(
        journal.len() > 256 * 1024,
        "large enough for its index to spill too"
    );

    // Deployed again: the previous journal is read where it lies, its index spilled; the
    // files it names are removed and installed anew.
    fs::write(dest.join(name(5)), "changed by hand\n").unwrap();
    let out = sb.deploy(&args(&b).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read_to_string(dest.join(name(5))).unwrap(), "5\n");
    let again = fs::read_to_string(instructions.join("g1-cleanup")).unwrap();
    assert_eq!(again, journal, "the same paths, journaled again");
}
