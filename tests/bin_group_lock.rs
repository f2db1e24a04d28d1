//! The deployment-group lock, black box with real `deploy-local` processes: two runs of one
//! group never interleave (one waits, or is refused naming the holder), a dead holder's lock
//! and its leftover hook are taken over, other groups run in parallel, and two groups whose
//! destinations share a parent directory each clean up only their own files.

#[path = "support/common.rs"]
mod common;
use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GROUP: &str = "g-shared";

/// deploy-local processes started in the background, killed if a test fails first.
struct Runs(Vec<(u32, Option<Child>)>);

impl Runs {
    fn start(&mut self, sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> usize {
        let child = Command::new(BIN)
            .arg("deploy-local")
            .arg("-c")
            .arg(sb.config())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn deploy-local");
        self.0.push((child.id(), Some(child)));
        self.0.len() - 1
    }
    fn pid(&self, i: usize) -> u32 {
        self.0[i].0
    }
    /// SIGKILLs run `i`.
    fn kill(&mut self, i: usize) {
        if let Some(c) = self.0[i].1.as_mut() {
            c.kill().expect("kill");
        }
    }
    /// Waits (bounded) for run `i` and returns its output.
    fn finish(&mut self, i: usize) -> Output {
        let mut child = self.0[i].1.take().expect("not finished yet");
        let until = Instant::now() + Duration::from_secs(120);
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("deploy-local did not finish");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("output")
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        for c in self.0.iter_mut().filter_map(|(_, c)| c.as_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kills every process carrying one of the markers when dropped (a test's hooks).
struct Markers(Vec<String>);
impl Drop for Markers {
    fn drop(&mut self) {
        for m in &self.0 {
            kill_marker(m);
        }
    }
}

/// A directory bundle installing `files` (name, content) into `dest`, whose BeforeInstall
/// hook logs `<tag> start|end <ns>` to `log` around a `secs` sleep.
fn bundle(
    sb: &Sandbox,
    tag: &str,
    dest: &Path,
    files: &[(&str, &str)],
    log: &Path,
    secs: f32,
) -> PathBuf {
    let dir = sb.path().join("bundles").join(tag);
    let files_section = if files.is_empty() {
        String::new()
    } else {
        format!(
            "files:\n  - source: site\n    destination: {}\n",
            dest.display()
        )
    };
    write(
        &dir.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\n{files_section}hooks:\n  BeforeInstall:\n    - location: hook.sh\n      timeout: 120\n"
        ),
        false,
    );
    write(
        &dir.join("hook.sh"),
        &format!(
            "#!/bin/bash\necho \"{tag} start $(date +%s%N)\" >> {l}\nsleep {secs}\necho \"{tag} end $(date +%s%N)\" >> {l}\n",
            l = log.display()
        ),
        true,
    );
    fs::create_dir_all(dir.join("site")).unwrap();
    for (name, content) in files {
        write(&dir.join("site").join(name), content, false);
    }
    dir
}

fn stamp(lines: &str, what: &str) -> u128 {
    lines
        .lines()
        .find(|l| l.starts_with(what))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what:?} in {lines}"))
}

/// Regular files under `dir`, relative, sorted.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The group's cleanup journal: the paths it names that are not directories now.
fn journaled_files(sb: &Sandbox, group: &str, dest: &Path) -> BTreeSet<String> {
    let journal = sb
        .root()
        .join("deployment-instructions")
        .join(format!("{group}-cleanup"));
    let text = fs::read_to_string(&journal).unwrap_or_default();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let p = Path::new(line);
        assert!(
            fs::symlink_metadata(p).is_ok(),
            "the journal names {line}, which is not there"
        );
        if !p.is_dir() {
            out.insert(
                p.strip_prefix(dest)
                    .unwrap_or_else(|_| panic!("{line} is outside {}", dest.display()))
                    .display()
                    .to_string(),
            );
        }
    }
    out
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn two_runs_of_one_group_wait_for_each_other_and_leave_one_revision() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest/app");
    let log = sb.path().join("hooks.log");
    let a = bundle(
        &sb,
        "alpha",
        &dest,
        &[("a1.txt", "a"), ("a2.txt", "a")],
        &log,
        2.0,
    );
    let b = bundle(
        &sb,
        "beta",
        &dest,
        &[("b1.txt", "b"), ("b2.txt", "b")],
        &log,
        2.0,
    );
    let mut runs = Runs(Vec::new());
    let ra = runs.start(&sb, &["-g", GROUP, "-l", a.to_str().unwrap()], &[]);
    let rb = runs.start(&sb, &["-g", GROUP, "-l", b.to_str().unwrap()], &[]);
    let (oa, ob) = (runs.finish(ra), runs.finish(rb));
    assert!(oa.status.success(), "{}", text(&oa));
    assert!(ob.status.success(), "{}", text(&ob));
    let lines = fs::read_to_string(&log).unwrap();
    let (a0, a1) = (stamp(&lines, "alpha start"), stamp(&lines, "alpha end"));
    let (b0, b1) = (stamp(&lines, "beta start"), stamp(&lines, "beta end"));
    assert!(a1 < b0 || b1 < a0, "the two runs overlapped:\n{lines}");
    // The one that came second said whom it waited for.
    let (second, first_pid, last_files) = if a0 < b0 {
        (&ob, runs.pid(ra), set(&["b1.txt", "b2.txt"]))
    } else {
        (&oa, runs.pid(rb), set(&["a1.txt", "a2.txt"]))
    };
    let waited = stderr(second);
    assert!(
        // The holder records its deployment just after it takes the lock; a second run that
        // looks in between is told so (a load-dependent order, seen on a busy machine).
        (waited.contains(&format!(
            "Deployment group {GROUP} is busy: held by pid {first_pid} (deploy-local) for deployment d-"
        )) || waited.contains(&format!(
            "Deployment group {GROUP} is busy: held by pid {first_pid} (it has not recorded its deployment yet)"
        ))) && waited.contains("Waiting up to 60 s"),
        "{waited}"
    );
    assert_eq!(files_under(&dest), last_files);
    assert_eq!(journaled_files(&sb, GROUP, &dest), last_files);
    // The group is healthy: the next deployment (DISALLOW, the default) succeeds.
    let c = bundle(&sb, "gamma", &dest, &[("c.txt", "c")], &log, 0.0);
    let out = sb.deploy(&["-g", GROUP, "-l", c.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_under(&dest), set(&["c.txt"]));
    assert_eq!(journaled_files(&sb, GROUP, &dest), set(&["c.txt"]));
}

#[test]
fn with_lock_wait_0_the_second_run_stops_at_once_naming_the_holder() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest/app");
    let log = sb.path().join("hooks.log");
    let slow = bundle(&sb, "slow", &dest, &[("s.txt", "s")], &log, 3.0);
    let other = bundle(&sb, "other", &dest, &[("o.txt", "o")], &log, 0.0);
    let mut runs = Runs(Vec::new());
    let first = runs.start(&sb, &["-g", GROUP, "-l", slow.to_str().unwrap()], &[]);
    assert!(
        wait_for(Duration::from_secs(60), || fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("slow start"))),
        "the first run's hook never started"
    );
    let started = Instant::now();
    let out = sb.deploy(&[
        "-g",
        GROUP,
        "--lock-wait",
        "0",
        "-l",
        other.to_str().unwrap(),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it did not wait"
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "deployment group {GROUP} is busy: it is held by pid {} (deploy-local) for deployment d-",
            runs.pid(first)
        )) && err.contains(" since ")
            && err.contains(" s ago)"),
        "{err}"
    );
    assert!(!log_has(&log, "other start"), "the refused run ran nothing");
    let done = runs.finish(first);
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(files_under(&dest), set(&["s.txt"]));
    assert_eq!(journaled_files(&sb, GROUP, &dest), set(&["s.txt"]));
    let out = sb.deploy(&["-g", GROUP, "-l", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_under(&dest), set(&["o.txt"]));
}

fn log_has(log: &Path, what: &str) -> bool {
    fs::read_to_string(log).is_ok_and(|l| l.contains(what))
}

fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A deploy-local killed mid-hook: its lock dies with it, and the next run of the group
/// takes it, ends the hook it left running, and deploys.
fn dead_holder_is_taken_over(env: &[(&str, &str)]) {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest/app");
    let log = sb.path().join("hooks.log");
    let marker = format!("cd-lock-leftover-{}-{}", std::process::id(), env.len());
    let _cleanup = Markers(vec![marker.clone()]);
    let hang = sb.path().join("bundles/hang");
    write(
        &hang.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\nhooks:\n  AfterInstall:\n    - location: hang.sh\n      timeout: 300\n",
            dest.display()
        ),
        false,
    );
    write(&hang.join("site/h.txt"), "h", false);
    // The hook's own child leaves the process group, as a daemonising script would.
    write(
        &hang.join("hang.sh"),
        &format!(
            "#!/bin/bash\necho \"hang start\" >> {l}\nsetsid bash -c 'exec -a {marker} sleep 300' &\nsleep 300\necho \"hang end\" >> {l}\n",
            l = log.display()
        ),
        true,
    );
    let mut runs = Runs(Vec::new());
    let r = runs.start(&sb, &["-g", GROUP, "-l", hang.to_str().unwrap()], env);
    assert!(
        wait_for(Duration::from_secs(60), || !pids_with_marker(&marker)
            .is_empty()),
        "the hook never started"
    );
    let dead_pid = runs.pid(r);
    runs.kill(r); // SIGKILL
    let _ = runs.finish(r);
    let lock_file = sb
        .root()
        .join(format!("deployment-instructions/{GROUP}.lock"));
    let stale = fs::read_to_string(&lock_file).unwrap();
    assert!(stale.contains(&format!("pid={dead_pid}\n")), "{stale}");
    assert!(
        !pids_with_marker(&marker).is_empty(),
        "the hook outlives its deploy-local"
    );
    let next = bundle(&sb, "next", &dest, &[("n.txt", "n")], &log, 0.0);
    let out = sb.deploy(&[
        "-g",
        GROUP,
        "--lock-wait",
        "0",
        "-l",
        next.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        pids_with_marker(&marker).is_empty(),
        "the dead run's hook was ended before the next run"
    );
    assert!(
        !log_has(&log, "hang end"),
        "the hook never finished its work"
    );
    assert!(
        stderr(&out).contains("ended a hook whose agent stopped while it ran"),
        "{}",
        text(&out)
    );
    assert!(!sb
        .root()
        .join(format!("deployment-instructions/{GROUP}.running-hook"))
        .exists());
    assert_eq!(files_under(&dest), set(&["n.txt"]));
}

#[test]
fn a_dead_holders_lock_and_hook_are_taken_over_with_cgroups() {
    dead_holder_is_taken_over(&[]);
}

#[test]
fn a_dead_holders_lock_and_hook_are_taken_over_with_the_fallback() {
    dead_holder_is_taken_over(&[("CODEDEPLOY_HOOK_CONTAINMENT", "process-group")]);
}

#[test]
fn holder_text_of_a_dead_process_is_never_trusted() {
    let sb = Sandbox::new();
    let dest = sb.path().join("dest/app");
    let log = sb.path().join("hooks.log");
    // A lock file naming a live process (this test) as holder, without any lock held.
    let lock = sb
        .root()
        .join(format!("deployment-instructions/{GROUP}.lock"));
    write(
        &lock,
        &format!(
            "pid={}\ndeployment=d-OLD\nwhat=deploy-local\nsince=1\n",
            std::process::id()
        ),
        false,
    );
    let b = bundle(&sb, "b", &dest, &[("b.txt", "b")], &log, 0.0);
    let out = sb.deploy(&["-g", GROUP, "--lock-wait", "0", "-l", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let now = fs::read_to_string(&lock).unwrap();
    assert!(!now.contains("d-OLD"), "the new holder rewrote it: {now}");
}

#[test]
fn other_groups_deploy_in_parallel() {
    let sb = Sandbox::new();
    let log = sb.path().join("hooks.log");
    let a = bundle(
        &sb,
        "one",
        &sb.path().join("d1"),
        &[("1.txt", "1")],
        &log,
        2.0,
    );
    let b = bundle(
        &sb,
        "two",
        &sb.path().join("d2"),
        &[("2.txt", "2")],
        &log,
        2.0,
    );
    let mut runs = Runs(Vec::new());
    let ra = runs.start(&sb, &["-g", "g-one", "-l", a.to_str().unwrap()], &[]);
    let rb = runs.start(&sb, &["-g", "g-two", "-l", b.to_str().unwrap()], &[]);
    let (oa, ob) = (runs.finish(ra), runs.finish(rb));
    assert!(oa.status.success(), "{}", text(&oa));
    assert!(ob.status.success(), "{}", text(&ob));
    assert!(!stderr(&oa).contains("busy") && !stderr(&ob).contains("busy"));
    let lines = fs::read_to_string(&log).unwrap();
    let (a0, a1) = (stamp(&lines, "one start"), stamp(&lines, "one end"));
    let (b0, b1) = (stamp(&lines, "two start"), stamp(&lines, "two end"));
    assert!(a0 < b1 && b0 < a1, "the groups did not overlap:\n{lines}");
}

#[test]
fn groups_sharing_a_parent_directory_each_clean_up_only_their_own_files() {
    let sb = Sandbox::new();
    let shared = sb.path().join("X");
    let (da, db) = (shared.join("a"), shared.join("b"));
    let log = sb.path().join("hooks.log");
    let revs = |g: &str, dest: &Path| -> Vec<(PathBuf, BTreeSet<String>)> {
        (1..=3)
            .map(|n| {
                let names = [format!("{g}{n}-x.txt"), format!("{g}-common.txt")];
                let files: Vec<(&str, &str)> = names.iter().map(|f| (f.as_str(), "v")).collect();
                let dir = bundle(&sb, &format!("{g}{n}"), dest, &files, &log, 0.2);
                (dir, names.iter().cloned().collect())
            })
            .collect()
    };
    let (ra, rb) = (revs("a", &da), revs("b", &db));
    let mut runs = Runs(Vec::new());
    for n in 0..3 {
        // Both groups at once: each one's cleanup runs while the other installs.
        let ia = runs.start(&sb, &["-g", "g-a", "-l", ra[n].0.to_str().unwrap()], &[]);
        let ib = runs.start(&sb, &["-g", "g-b", "-l", rb[n].0.to_str().unwrap()], &[]);
        let (oa, ob) = (runs.finish(ia), runs.finish(ib));
        assert!(oa.status.success(), "revision {n}: {}", text(&oa));
        assert!(ob.status.success(), "revision {n}: {}", text(&ob));
        assert_eq!(files_under(&da), ra[n].1, "revision {n}");
        assert_eq!(files_under(&db), rb[n].1, "revision {n}");
        assert_eq!(journaled_files(&sb, "g-a", &da), ra[n].1);
        assert_eq!(journaled_files(&sb, "g-b", &db), rb[n].1);
    }
    // Group a moves away (a revision without files): its cleanup removes its files and
    // directory, never the shared parent while group b's files are in it.
    let empty = bundle(&sb, "a-empty", &da, &[], &log, 0.0);
    let out = sb.deploy(&["-g", "g-a", "-l", empty.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!da.exists(), "group a's directory went with its files");
    assert_eq!(files_under(&db), rb[2].1, "group b's files are untouched");
    let out = sb.deploy(&["-g", "g-b", "-l", empty.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!db.exists());
    assert_eq!(files_under(&shared), BTreeSet::new());
}
