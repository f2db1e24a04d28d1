//! The `status` command: reads the status files in pid_dir, decides whether the agent runs
//! (LSB exit codes), and prints text or JSON.
//!
//! Invariants: files only, never the network; a pid counts as the agent only while the
//! process with that pid has the start time the status file recorded, so a reused pid never
//! reads as "running"; exit codes follow the LSB `status` action (0 running, 1 dead but a
//! status/pid file remains, 3 not running, 4 unknown).

use super::{progress_line, status_line, AgentState, StatusData, LOCAL_PREFIX, LOCAL_SUFFIX};
use crate::config::Config;
use serde_json::{json, Value};
use std::io;
use std::path::{Path, PathBuf};

/// Finished deploy-local runs `status` lists.
pub const RECENT_LOCAL_SHOWN: usize = 5;

/// LSB `status` exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lsb {
    Running = 0,
    DeadFileRemains = 1,
    NotRunning = 3,
    Unknown = 4,
}

impl Lsb {
    pub fn code(self) -> u8 {
        self as u8
    }
    fn describe(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::DeadFileRemains => "not running (it ended without stopping cleanly)",
            Self::NotRunning => "not running",
            Self::Unknown => "in an unknown state",
        }
    }
}

/// What `status` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub lsb: Lsb,
    /// The daemon's status file, when it could be read.
    pub agent: Option<StatusData>,
    /// Where the daemon's status is kept.
    pub status_file: PathBuf,
    /// Why the state is unknown or partial (unreadable or corrupt file).
    pub problem: Option<String>,
    /// deploy-local runs whose process is alive.
    pub local: Vec<StatusData>,
    /// The latest finished deploy-local runs, newest first.
    pub recent_local: Vec<super::local_results::LocalResult>,
    /// The revisions kept under root_dir and the space they take (None: not measurable,
    /// see `kept_problem`).
    pub kept: Option<crate::revisions::Usage>,
    pub kept_problem: Option<String>,
    pub now: u64,
}

/// Start time of `pid` in clock ticks after boot (field 22 of /proc/<pid>/stat).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// PURE: field 22 of a /proc/<pid>/stat line. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that wrote a status file still runs.
pub fn writer_alive(data: &StatusData) -> bool {
    if data.pid == 0 {
        return false;
    }
    match (data.process_start, process_start_time(data.pid)) {
        (Some(recorded), Some(now)) => recorded == now,
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

/// PURE: the LSB code from what was found. `pid_file_pid_alive`: the pid file's state
/// (`None` when there is no pid file).
pub fn decide(
    agent: Option<&StatusData>,
    agent_alive: bool,
    pid_file_pid_alive: Option<bool>,
) -> Lsb {
    match agent {
        Some(d) if d.state == AgentState::Stopped => Lsb::NotRunning,
        Some(_) if agent_alive => Lsb::Running,
        Some(_) => Lsb::DeadFileRemains,
        None => match pid_file_pid_alive {
            Some(true) => Lsb::Running,
            Some(false) => Lsb::DeadFileRemains,
            None => Lsb::NotRunning,
        },
    }
}

fn pid_file_state(cfg: &Config) -> Option<bool> {
    let path = cfg.pid_dir.join(format!("{}.pid", cfg.program_name));
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 0 {
        return Some(false);
    }
    let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    };
    Some(alive)
}

/// Reads everything `status` reports.
pub fn gather(cfg: &Config) -> Report {
    let status_file = cfg.pid_dir.join(super::STATUS_FILE_NAME);
    let now = super::unix_now();
    let (agent, problem) = match std::fs::read(&status_file) {
        Ok(bytes) => match serde_json::from_slice::<StatusData>(&bytes) {
            Ok(d) => (Some(d), None),
            Err(e) => (
                None,
                Some(format!(
                    "{} is not a status file: {e}",
                    status_file.display()
                )),
            ),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
        Err(e) => (
            None,
            Some(format!("cannot read {}: {e}", status_file.display())),
        ),
    };
    let lsb = if problem.is_some() {
        Lsb::Unknown
    } else {
        let alive = agent.as_ref().is_some_and(writer_alive);
        decide(agent.as_ref(), alive, pid_file_state(cfg))
    };
    let layout = crate::state::Layout::new(cfg.root_dir.clone());
    let (kept, kept_problem) =
        match crate::revisions::kept_revisions(&layout, &cfg.ongoing_deployment_tracking) {
            Ok(u) => (Some(u), None),
            Err(e) => (
                None,
                Some(format!("cannot measure {}: {e}", cfg.root_dir.display())),
            ),
        };
    Report {
        lsb,
        agent,
        status_file,
        problem,
        local: local_runs(&cfg.pid_dir),
        recent_local: super::local_results::latest(&cfg.pid_dir, RECENT_LOCAL_SHOWN),
        kept,
        kept_problem,
        now,
    }
}

fn local_runs(pid_dir: &Path) -> Vec<StatusData> {
    let Ok(entries) = std::fs::read_dir(pid_dir) else {
        return Vec::new();
    };
    let mut runs: Vec<StatusData> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(LOCAL_PREFIX) && name.ends_with(LOCAL_SUFFIX)
        })
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .filter(writer_alive)
        .collect();
    runs.sort_by_key(|d| d.pid);
    runs
}

fn progress_json(d: &StatusData, now: u64) -> Value {
    Value::Array(
        d.in_progress
            .iter()
            .map(|p| {
                json!({
                    "host_command_id": p.host_command_id,
                    "deployment_id": p.deployment_id,
                    "deployment_group_id": p.group_id,
                    "event": p.event,
                    "event_elapsed_seconds": now.saturating_sub(p.event_started_at),
                    "script": p.script,
                    "script_index": p.script_index,
                    "script_count": p.script_count,
                    "script_elapsed_seconds": p.script_started_at.map(|s| now.saturating_sub(s)),
                    "progress": p.progress,
                    "summary": progress_line(p, now),
                })
            })
            .collect(),
    )
}

/// `status --json`.
pub fn render_json(r: &Report) -> Value {
    let agent = r.agent.as_ref();
    json!({
        "running": r.lsb == Lsb::Running,
        "exit_code": r.lsb.code(),
        "status": r.lsb.describe(),
        "status_file": r.status_file,
        "problem": r.problem,
        "pid": agent.filter(|_| r.lsb == Lsb::Running).map(|d| d.pid),
        "state": agent.map(|d| d.state.as_str()),
        "version": agent.map(|d| d.version.clone()),
        "credential_source": agent.map(|d| d.credential_source.clone()),
        "endpoint": agent.map(|d| d.endpoint.clone()),
        "started_at": agent.map(|d| d.started_at),
        "status_line": agent.map(|d| status_line(d, r.now)),
        "in_progress": agent.filter(|_| r.lsb == Lsb::Running).map(|d| progress_json(d, r.now)).unwrap_or(json!([])),
        "last_results": agent.map(|d| json!(d.last_results)).unwrap_or(json!({})),
        "local_deployments": r.local.iter().map(|d| json!({
            "pid": d.pid,
            "in_progress": progress_json(d, r.now),
            "last_results": d.last_results,
        })).collect::<Vec<_>>(),
        "recent_local_deployments": r.recent_local,
        "kept_revisions": r.kept,
        "kept_revisions_problem": r.kept_problem,
    })
}

fn ago(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// `status` as text.
pub fn render_text(r: &Report, program: &str) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    match (&r.agent, r.lsb) {
        (Some(d), Lsb::Running) => line(format!(
            "{program} is running (pid {}, started {})",
            d.pid,
            ago(r.now, d.started_at)
        )),
        _ => line(format!("{program} is {}", r.lsb.describe())),
    }
    if let Some(p) = &r.problem {
        line(format!("  problem: {p}"));
    }
    if let Some(d) = &r.agent {
        line(format!("  version: {}", d.version));
        line(format!("  credentials: {}", d.credential_source));
        line(format!("  endpoint: {}", d.endpoint));
        if r.lsb == Lsb::Running {
            line(format!("  now: {}", status_line(d, r.now)));
            for p in &d.in_progress {
                line(format!(
                    "  in progress: {} (group {})",
                    progress_line(p, r.now),
                    p.group_id
                ));
            }
        }
        if !d.last_results.is_empty() {
            line("  last results:".into());
            for (group, l) in &d.last_results {
                line(format!(
                    "    {group}: {} {} {} ({})",
                    l.deployment_id,
                    l.event,
                    l.result,
                    ago(r.now, l.finished_at)
                ));
            }
        }
    } else if r.problem.is_none() {
        line(format!("  no status file at {}", r.status_file.display()));
    }
    for d in &r.local {
        for p in &d.in_progress {
            line(format!(
                "  deploy-local (pid {}): {} (group {})",
                d.pid,
                progress_line(p, r.now),
                p.group_id
            ));
        }
    }
    if !r.recent_local.is_empty() {
        line("  latest local deployments:".into());
        for l in &r.recent_local {
            line(format!(
                "    {} (group {}, {}): {} ({})",
                l.deployment_id,
                l.group_id,
                l.application,
                l.result,
                ago(r.now, l.finished_at)
            ));
        }
    }
    for l in kept_lines(r) {
        line(l);
    }
    out
}

/// `kept revisions: 3 in 1 group, <bytes> under <root>`, then one line a group.
fn kept_lines(r: &Report) -> Vec<String> {
    use crate::space::human;
    let Some(u) = &r.kept else {
        return r
            .kept_problem
            .iter()
            .map(|p| format!("  kept revisions: {p}"))
            .collect();
    };
    let groups = match u.groups.len() {
        1 => "1 group".to_string(),
        n => format!("{n} groups"),
    };
    let mut out = vec![format!(
        "  kept revisions: {} in {groups}, {} under {}",
        u.revisions,
        human(u.bytes),
        u.root.display()
    )];
    for g in &u.groups {
        let archives: u64 = g.revisions.iter().map(|r| r.bundle_archive_bytes).sum();
        out.push(format!(
            "    {}: {} revisions, {} (bundle.tar: {})",
            g.group,
            g.revisions.len(),
            human(g.bytes),
            human(archives)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_field() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
        assert!(process_start_time(std::process::id()).is_some());
    }

    #[test]
    fn lsb_decisions() {
        let mut d = StatusData::default();
        d.polling(1);
        assert_eq!(decide(Some(&d), true, None), Lsb::Running);
        assert_eq!(decide(Some(&d), false, None), Lsb::DeadFileRemains);
        d.agent_stopped(2);
        assert_eq!(decide(Some(&d), true, None), Lsb::NotRunning);
        assert_eq!(decide(None, false, None), Lsb::NotRunning);
        assert_eq!(decide(None, false, Some(true)), Lsb::Running);
        assert_eq!(decide(None, false, Some(false)), Lsb::DeadFileRemains);
    }

    #[test]
    fn own_process_is_alive_and_a_changed_start_is_not() {
        let mut d = StatusData {
            pid: std::process::id(),
            process_start: process_start_time(std::process::id()),
            ..StatusData::default()
        };
        assert!(writer_alive(&d));
        d.process_start = d.process_start.map(|s| s + 1);
        assert!(!writer_alive(&d));
    }

    fn cfg(dir: &Path) -> Config {
        Config {
            pid_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn gather_reads_files() {
        let t = tempfile::tempdir().unwrap();
        let c = cfg(t.path());
        assert_eq!(gather(&c).lsb, Lsb::NotRunning);
        let f = super::super::StatusFile::new(&c);
        f.agent_started(std::process::id(), "0.1.0", "on-premises file", "https://e");
        f.polling();
        f.command_started("hc", "d-1", "g", "AfterInstall");
        let r = gather(&c);
        assert_eq!(r.lsb, Lsb::Running);
        let j = render_json(&r);
        assert_eq!(j["in_progress"][0]["event"], "AfterInstall");
        assert_eq!(j["running"], true);
        let text = render_text(&r, "codedeploy-agent");
        assert!(text.contains("is running"), "{text}");
        assert!(text.contains("d-1 AfterInstall"), "{text}");
        assert!(!text.contains("latest local"), "{text}");
        let done = super::super::local_results::LocalResult {
            deployment_id: "d-L1-local".into(),
            group_id: "web".into(),
            application: "/srv/app".into(),
            result: "Failed in Install: 5 disk full".into(),
            started_at: 1,
            finished_at: super::super::unix_now(),
            finished_at_ms: 0,
            pid: 9,
        };
        super::super::local_results::record(t.path(), &done).unwrap();
        let r = gather(&c);
        let j = render_json(&r);
        assert_eq!(j["recent_local_deployments"][0]["result"], done.result);
        let text = render_text(&r, "codedeploy-agent");
        assert!(
            text.contains(
                "d-L1-local (group web, /srv/app): Failed in Install: 5 disk full (0 s ago)"
            ),
            "{text}"
        );
        std::fs::write(f.path(), "{not json").unwrap();
        let r = gather(&c);
        assert_eq!(r.lsb, Lsb::Unknown);
        assert!(r.problem.unwrap().contains("status.json"));
    }
}
