//! Kill -9 at every phase of a command (docs/crash-recovery.md has the same table): for each
//! row the agent is frozen at the phase (a failpoint, `codedeploy_agent::failpoint`, or an
//! injected completion fault), SIGKILLed, and restarted; then
//! * every command of the deployment got exactly one completion, the interrupted one with
//!   the row's code (7 when it had not finished, its own result when it had);
//! * the hook that was running is gone and never finished its work, and no hook that had
//!   finished ran again;
//! * the next deployment of the group (DISALLOW, into the same destination) succeeds and
//!   leaves exactly its revision's files, all named by the cleanup journal.
//!
//! One emulator, one moto and one deployment group serve the whole table; each row's next
//! deployment is the following row's previous revision (so ApplicationStop has scripts).
//! `PHASE_ROWS=download,unpack` runs only the rows whose failpoint or phase contains one of
//! those words.

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

// Incompressible bytes, so the bundle arrives in many pieces and unpacks in several steps.
use bundle_support::noise;
use codedeploy_agent::failpoint;
use codedeploy_emulator::{CommandState, DeploymentStatus, FaultKind, FaultRule};
use common::*;
use daemon_support::*;
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(120);
/// The emulator's idle long poll. After the agent is killed the test waits a little longer
/// than this, until the dead agent's poll has been answered (into the void): a command
/// handed to it would be lost, as with the real service.
const POLL_IDLE: Duration = Duration::from_millis(800);
/// Completion failures injected for the retry row: more than the agent can use up before
/// the test kills it.
const FAULTS: u32 = 1000;

/// How a row reaches its phase.
#[derive(Clone, Copy)]
enum Reach {
    /// `CODEDEPLOY_FAILPOINT` value.
    Failpoint(&'static str),
    /// PutHostCommandComplete fails until the agent is killed in its retry loop.
    CompletionFaults,
}

struct Row {
    phase: &'static str,
    reach: Reach,
    /// The command the agent is killed in.
    command: &'static str,
    /// The code that command's single completion must carry.
    code: u8,
    /// The event whose hook sleeps (and must be ended by the recovery).
    slow_hook: Option<&'static str>,
    /// The deployment has traffic events (a load balancer).
    traffic: bool,
}

const fn row(phase: &'static str, fp: &'static str, command: &'static str) -> Row {
    Row {
        phase,
        reach: Reach::Failpoint(fp),
        command,
        code: 7,
        slow_hook: None,
        traffic: false,
    }
}

const fn hook_row(phase: &'static str, fp: &'static str, event: &'static str) -> Row {
    Row {
        slow_hook: Some(event),
        ..row(phase, fp, event)
    }
}

const TABLE: &[Row] = &[
    row(
        "after the poll, before the acknowledgement",
        "before-ack:DownloadBundle",
        "DownloadBundle",
    ),
    row(
        "after the acknowledgement, before execution",
        "after-ack:DownloadBundle",
        "DownloadBundle",
    ),
    row("during the download", "download", "DownloadBundle"),
    row("during the unpack", "unpack", "DownloadBundle"),
    row("during the install copy", "install-copy", "Install"),
    hook_row(
        "during an ApplicationStop hook",
        "hook:ApplicationStop",
        "ApplicationStop",
    ),
    hook_row(
        "during a BeforeInstall hook",
        "hook:BeforeInstall",
        "BeforeInstall",
    ),
    hook_row(
        "during an AfterInstall hook",
        "hook:AfterInstall",
        "AfterInstall",
    ),
    hook_row(
        "during an ApplicationStart hook",
        "hook:ApplicationStart",
        "ApplicationStart",
    ),
    hook_row(
        "during a ValidateService hook",
        "hook:ValidateService",
        "ValidateService",
    ),
    Row {
        traffic: true,
        ..hook_row(
            "during a traffic hook (BeforeAllowTraffic)",
            "hook:BeforeAllowTraffic",
            "BeforeAllowTraffic",
        )
    },
    Row {
        code: 0,
        ..row(
            "after a hook, before its completion",
            "after-execute:AfterInstall",
            "AfterInstall",
        )
    },
    Row {
        phase: "while a completion is being retried",
        reach: Reach::CompletionFaults,
        command: "ApplicationStop",
        code: 0,
        slow_hook: None,
        traffic: false,
    },
];

const EVENTS: &[&str] = &[
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
];

/// The world of the table: two revisions that install different files into one place.
struct Bench {
    w: World,
    dest: PathBuf,
    hooks_log: PathBuf,
    flags: PathBuf,
    marker: String,
    /// (key, version, etag, files) of revisions "a" and "b".
    revs: Vec<(String, String, String, BTreeSet<String>)>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        kill_marker(&self.marker);
    }
}

impl Bench {
    /// `None` (after the skip line) where moto is missing.
    fn new() -> Option<Bench> {
        let w = World::with_poll_idle("arn:aws:iam::111122223333:user/host-1", POLL_IDLE)?;
        let dest = w.path().join("app");
        let hooks_log = w.path().join("hooks.log");
        let flags = w.path().join("flags");
        fs::create_dir_all(&flags).unwrap();
        let marker = format!("cd-phase-slow-{}", std::process::id());
        let mut revs = Vec::new();
        for tag in ["a", "b"] {
            let dir = w.path().join(format!("rev-{tag}"));
            let mut appspec = format!(
                "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\nhooks:\n",
                dest.display()
            );
            for e in EVENTS {
                appspec.push_str(&format!(
                    "  {e}:\n    - location: hook.sh\n      timeout: 300\n"
                ));
            }
            write(&dir.join("appspec.yml"), &appspec, false);
            write(
                &dir.join("hook.sh"),
                &format!(
                    "#!/bin/bash\necho \"$LIFECYCLE_EVENT start $DEPLOYMENT_ID\" >> {log}\n\
                     if [ -e {flags}/slow-$LIFECYCLE_EVENT ]; then bash -c 'exec -a {marker} sleep 120'; fi\n\
                     echo \"$LIFECYCLE_EVENT end $DEPLOYMENT_ID\" >> {log}\n",
                    log = hooks_log.display(),
                    flags = flags.display(),
                ),
                true,
            );
            let mut files = BTreeSet::new();
            for n in 1..=3 {
                let name = format!("{tag}-{n}.txt");
                write(&dir.join("site").join(&name), tag, false);
                files.insert(name);
            }
            let big = format!("{tag}-big.bin");
            fs::write(
                dir.join("site").join(&big),
                noise(2 << 20, tag.len() as u64 + 7),
            )
            .unwrap();
            files.insert(big);
            let tgz = w.path().join(format!("rev-{tag}.tgz"));
            make_tgz(&dir, &tgz);
            let (v, e) = w.upload(&format!("rev-{tag}.tgz"), fs::read(&tgz).unwrap());
            revs.push((format!("rev-{tag}.tgz"), v, e, files));
        }
        Some(Bench {
            w,
            dest,
            hooks_log,
            flags,
            marker,
            revs,
        })
    }

    fn deploy(&self, rev: usize, traffic: bool) -> String {
        let (k, v, e, _) = &self.revs[rev];
        let mut req = self.w.s3_request(k, "tgz", v, e);
        req.load_balancer = traffic;
        self.w.deploy(req)
    }

    fn hooks_log(&self) -> String {
        fs::read_to_string(&self.hooks_log).unwrap_or_default()
    }

    /// Files under the destination, and the ones the group's cleanup journal names.
    fn installed(&self, group: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let on_disk = fs::read_dir(&self.dest)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let journal = fs::read_to_string(
            self.w
                .root()
                .join("deployment-instructions")
                .join(format!("{group}-cleanup")),
        )
        .unwrap_or_default();
        let named = journal
            .lines()
            .filter_map(|l| Path::new(l).strip_prefix(&self.dest).ok())
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        (on_disk, named)
    }
}

/// How many completions (accepted or repeated) the emulator received for a command.
fn completions(w: &World, command_id: &str) -> usize {
    w.emu
        .host_history(&w.host_id)
        .iter()
        .filter(|e| e.command.as_deref() == Some(command_id))
        .filter(|e| e.kind.starts_with("Completed") || e.kind.starts_with("DuplicateComplete"))
        .count()
}

fn stopped(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|st| st == "T")
        })
        .unwrap_or(false)
}

/// Waits for a deployment to end; one that does not is stopped, so the next row can run.
fn settle(w: &World, id: &str) -> codedeploy_emulator::Deployment {
    let d = w.wait_done(id, LONG);
    if d.status == DeploymentStatus::InProgress {
        let _ = w.emu.stop_deployment(id);
    }
    d
}

/// Runs one row; returns the problems found (empty: the row passed).
fn run_row(b: &Bench, r: &Row, rev: usize) -> Vec<String> {
    let w = &b.w;
    let mut problems = Vec::new();
    let marker_file = w.path().join("failpoint-reached");
    let _ = fs::remove_file(&marker_file);
    if let Some(e) = r.slow_hook {
        fs::write(b.flags.join(format!("slow-{e}")), "").unwrap();
    }
    let agent = match r.reach {
        Reach::Failpoint(fp) => w.agent_with(&[
            (failpoint::ENV, fp),
            (failpoint::FILE_ENV, marker_file.to_str().unwrap()),
        ]),
        Reach::CompletionFaults => {
            w.emu.inject_fault(FaultRule::new(
                "PutHostCommandComplete",
                FaultKind::ServerError,
                FAULTS,
            ));
            w.agent()
        }
    };
    let id = b.deploy(rev, r.traffic);
    let reached = match r.reach {
        Reach::Failpoint(_) => {
            if !eventually(LONG, || marker_file.exists()) {
                Err("the failpoint was not reached")
            } else if !eventually(LONG, || stopped(agent.pid())) {
                Err("the agent did not stop at the failpoint")
            } else {
                Ok(())
            }
        }
        Reach::CompletionFaults => eventually(LONG, || {
            w.emu.faults().first().is_some_and(|f| f.count < FAULTS)
        })
        .then_some(())
        .ok_or("no completion was refused"),
    };
    // A slow hook must be in its sleep before the kill, or it might see its flag gone.
    let reached = reached.and_then(|()| {
        (r.slow_hook.is_none() || eventually(LONG, || !pids_with_marker(&b.marker).is_empty()))
            .then_some(())
            .ok_or("the slow hook never started sleeping")
    });
    if let Err(why) = reached {
        let cmds: Vec<_> = w
            .commands(&id)
            .iter()
            .map(|c| format!("{}:{:?}", c.name, c.state))
            .collect();
        bury(agent);
        let _ = w.emu.stop_deployment(&id);
        return vec![format!("{why}; commands {cmds:?}\n{}", w.agent_log())];
    }
    let tracked = fs::read_dir(w.root().join("ongoing-deployment"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    if tracked != 1 {
        problems.push(format!("{tracked} tracking files at the kill, not 1"));
    }
    bury(agent);
    w.emu.clear_faults();
    if let Some(e) = r.slow_hook {
        fs::remove_file(b.flags.join(format!("slow-{e}"))).unwrap();
    }
    let agent = w.agent();
    let d = settle(w, &id);
    let want = if r.code == 0 {
        DeploymentStatus::Succeeded
    } else {
        DeploymentStatus::Failed
    };
    if d.status != want {
        problems.push(format!("deployment ended {:?}, not {want:?}", d.status));
    }
    let cmds = w.commands(&id);
    match cmds.iter().find(|c| c.name == r.command) {
        None => problems.push(format!("{} was never issued", r.command)),
        Some(c) => {
            let code = diagnostics(c)["error_code"].as_u64();
            if code != Some(u64::from(r.code)) {
                problems.push(format!(
                    "{} reported code {code:?}, not {}: {:?}",
                    r.command,
                    r.code,
                    diagnostics(c)
                ));
            }
        }
    }
    for c in &cmds {
        let n = completions(w, &c.id);
        let finished = matches!(c.state, CommandState::Succeeded | CommandState::Failed);
        if n != 1 || !finished {
            problems.push(format!("{} ({:?}) got {n} completions", c.name, c.state));
        }
    }
    if !pids_with_marker(&b.marker).is_empty() {
        problems.push("the interrupted hook still runs".into());
    }
    let log = b.hooks_log();
    for e in EVENTS {
        let starts = log.matches(&format!("{e} start {id}\n")).count();
        if starts > 1 {
            problems.push(format!("{e} ran {starts} times"));
        }
    }
    if let Some(e) = r.slow_hook {
        if log.contains(&format!("{e} end {id}\n")) {
            problems.push(format!("the interrupted {e} hook finished its work"));
        }
    }
    let group = d.group_id.clone();
    if w.root()
        .join(format!("deployment-instructions/{group}.running-hook"))
        .exists()
    {
        problems.push("a running-hook record was left".into());
    }
    // The last completion is accepted a moment before its tracking file goes.
    let tracking_empty = || {
        fs::read_dir(w.root().join("ongoing-deployment"))
            .map(|mut rd| rd.next().is_none())
            .unwrap_or(true)
    };
    if !eventually(Duration::from_secs(10), tracking_empty) {
        problems.push("tracking files were left".into());
    }
    // The group goes on: the other revision deploys into the same place (DISALLOW).
    let next_rev = 1 - rev;
    let next = b.deploy(next_rev, false);
    let nd = settle(w, &next);
    if nd.status != DeploymentStatus::Succeeded {
        problems.push(format!(
            "the next deployment ended {:?}: {:?}",
            nd.status,
            w.commands(&next)
                .iter()
                .map(|c| (c.name.clone(), diagnostics(c)))
                .collect::<Vec<_>>()
        ));
    } else {
        let (on_disk, named) = b.installed(&group);
        let want = &b.revs[next_rev].3;
        if &on_disk != want || &named != want {
            problems.push(format!(
                "after the next deployment: files {on_disk:?}, journal {named:?}, want {want:?}"
            ));
        }
    }
    bury(agent);
    if !problems.is_empty() {
        problems.push(w.agent_log());
    }
    problems
}

/// SIGKILLs the agent and waits until its last long poll has been answered.
fn bury(agent: Agent) {
    agent.signal(Signal::SIGKILL);
    drop(agent);
    std::thread::sleep(POLL_IDLE + Duration::from_millis(400));
}

#[test]
fn kill_9_at_every_phase() {
    let only: Option<Vec<String>> = std::env::var("PHASE_ROWS")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let Some(b) = Bench::new() else { return };
    // A first revision, so that ApplicationStop has scripts from the first row on.
    let agent = b.w.agent();
    let first = b.deploy(1, false);
    assert_eq!(
        b.w.wait_done(&first, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        b.w.agent_log()
    );
    bury(agent);
    let mut failures = Vec::new();
    let mut timings = Vec::new();
    for r in TABLE {
        let fp = match r.reach {
            Reach::Failpoint(f) => f,
            Reach::CompletionFaults => "completion-faults",
        };
        if let Some(words) = &only {
            if !words
                .iter()
                .any(|w| fp.contains(w.as_str()) || r.phase.contains(w.as_str()))
            {
                continue;
            }
        }
        let started = Instant::now();
        // Each row deploys revision "a"; its follow-up deploys "b", the next row's previous.
        let problems = run_row(&b, r, 0);
        timings.push(format!(
            "{:>5.1} s  {}",
            started.elapsed().as_secs_f64(),
            r.phase
        ));
        eprintln!(
            "row done: {} ({} problems)",
            timings[timings.len() - 1],
            problems.len()
        );
        if !problems.is_empty() {
            eprintln!("[{}] {}", r.phase, problems.join("\n    "));
            failures.push(format!("[{}] {}", r.phase, problems.join("\n    ")));
        }
    }
    eprintln!("kill -9 table, time per row:\n{}", timings.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
