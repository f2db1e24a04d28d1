//! PURE: what the status file holds, how each agent step changes it, and the one-line
//! summary systemd shows (`STATUS=`).
//!
//! Invariants: every change takes the time as an argument (no clock here); a deployment is
//! in progress from `command_started` to `command_finished` of the same host command, and a
//! finished command replaces its group's last result.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the agent is doing as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Started, identity or crash recovery not done yet.
    #[default]
    Starting,
    /// Polling for commands (possibly while commands run).
    Polling,
    /// SIGTERM received: waiting for running commands, then exiting.
    Stopping,
    /// Exited cleanly.
    Stopped,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Polling => "polling",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }
}

/// One host command (lifecycle event) that is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub host_command_id: String,
    pub deployment_id: String,
    pub group_id: String,
    pub event: String,
    /// Unix seconds.
    pub event_started_at: u64,
    /// The script running now (its appspec location), if the event runs scripts.
    pub script: Option<String>,
    /// 1-based position of `script` in the event's list.
    pub script_index: Option<u32>,
    /// Scripts in the event's list; `None` when the caller did not know.
    pub script_count: Option<u32>,
    pub script_started_at: Option<u64>,
    /// The running script's timeout in seconds (absent in files of older agents).
    #[serde(default)]
    pub script_timeout: Option<u32>,
    /// A long download's or install's progress (`crate::progress::line`), while it runs.
    #[serde(default)]
    pub progress: Option<String>,
}

/// How the last command of a deployment group ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    pub host_command_id: String,
    pub deployment_id: String,
    pub event: String,
    /// `Succeeded`, or `Failed: <code> <message>`.
    pub result: String,
    pub finished_at: u64,
}

/// A script that starts: `index` is 1-based; `count` and `timeout` (seconds) 0 mean unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptStart<'a> {
    pub script: &'a str,
    pub index: u32,
    pub count: u32,
    pub timeout: u32,
}

/// The status file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatusData {
    /// Writer's process id and its start time in clock ticks since boot (field 22 of
    /// /proc/<pid>/stat), so a reused pid is not taken for the agent.
    pub pid: u32,
    pub process_start: Option<u64>,
    /// `agent` for the daemon, `deploy-local` for a local deployment.
    pub kind: String,
    pub version: String,
    pub credential_source: String,
    pub endpoint: String,
    pub state: AgentState,
    pub started_at: u64,
    pub updated_at: u64,
    pub in_progress: Vec<Progress>,
    /// Deployment group id -> its last finished command.
    pub last_results: BTreeMap<String, LastResult>,
}

impl StatusData {
    pub fn agent_started(
        &mut self,
        pid: u32,
        process_start: Option<u64>,
        version: &str,
        credential_source: &str,
        endpoint: &str,
        now: u64,
    ) {
        self.pid = pid;
        self.process_start = process_start;
        self.version = version.to_string();
        self.credential_source = credential_source.to_string();
        self.endpoint = endpoint.to_string();
        self.state = AgentState::Starting;
        self.started_at = now;
        self.updated_at = now;
        self.in_progress.clear();
    }

    pub fn polling(&mut self, now: u64) {
        self.state = AgentState::Polling;
        self.updated_at = now;
    }

    pub fn command_started(
        &mut self,
        host_command_id: &str,
        deployment_id: &str,
        group_id: &str,
        event: &str,
        now: u64,
    ) {
        self.in_progress
            .retain(|p| p.host_command_id != host_command_id && p.deployment_id != deployment_id);
        self.in_progress.push(Progress {
            host_command_id: host_command_id.to_string(),
            deployment_id: deployment_id.to_string(),
            group_id: group_id.to_string(),
            event: event.to_string(),
            event_started_at: now,
            script: None,
            script_index: None,
            script_count: None,
            script_started_at: None,
            script_timeout: None,
            progress: None,
        });
        self.updated_at = now;
    }

    /// A script of a running event started.
    pub fn script_progress(
        &mut self,
        deployment_id: &str,
        event: &str,
        start: &ScriptStart<'_>,
        now: u64,
    ) {
        let ScriptStart {
            script,
            index,
            count,
            timeout,
        } = *start;
        let found = self
            .in_progress
            .iter_mut()
            .find(|p| p.deployment_id == deployment_id && p.event == event);
        let p = match found {
            Some(p) => p,
            None => {
                // A caller that skipped command_started still gets a truthful entry.
                self.in_progress.push(Progress {
                    host_command_id: String::new(),
                    deployment_id: deployment_id.to_string(),
                    group_id: String::new(),
                    event: event.to_string(),
                    event_started_at: now,
                    script: None,
                    script_index: None,
                    script_count: None,
                    script_started_at: None,
                    script_timeout: None,
                    progress: None,
                });
                let last = self.in_progress.len() - 1;
                &mut self.in_progress[last]
            }
        };
        p.script = Some(script.to_string());
        p.script_index = Some(index);
        p.script_count = (count > 0).then_some(count);
        p.script_started_at = Some(now);
        p.script_timeout = (timeout > 0).then_some(timeout);
        self.updated_at = now;
    }

    /// A long step of a running event reports its progress (`text`: what, how far).
    pub fn step_progress(&mut self, deployment_id: &str, event: &str, text: &str, now: u64) {
        if let Some(p) = self
            .in_progress
            .iter_mut()
            .find(|p| p.deployment_id == deployment_id && p.event == event)
        {
            p.progress = Some(text.to_string());
            self.updated_at = now;
        }
    }

    pub fn command_finished(
        &mut self,
        host_command_id: &str,
        deployment_id: &str,
        group_id: &str,
        event: &str,
        result: &str,
        now: u64,
    ) {
        self.in_progress.retain(|p| {
            p.deployment_id != deployment_id
                || (p.host_command_id != host_command_id && p.event != event)
        });
        self.last_results.insert(
            group_id.to_string(),
            LastResult {
                host_command_id: host_command_id.to_string(),
                deployment_id: deployment_id.to_string(),
                event: event.to_string(),
                result: result.to_string(),
                finished_at: now,
            },
        );
        self.updated_at = now;
    }

    pub fn agent_stopping(&mut self, now: u64) {
        self.state = AgentState::Stopping;
        self.updated_at = now;
    }

    pub fn agent_stopped(&mut self, now: u64) {
        self.state = AgentState::Stopped;
        self.in_progress.clear();
        self.updated_at = now;
    }
}

/// `d-ABC123 AfterInstall: scripts/migrate.sh (2 of 3), 41 s of 300 s` (the script's
/// elapsed time and its timeout).
pub fn progress_line(p: &Progress, now: u64) -> String {
    match (&p.script, p.script_index) {
        (Some(script), Some(index)) => {
            let position = match p.script_count {
                Some(count) => format!("{index} of {count}"),
                None => format!("script {index}"),
            };
            let since = p.script_started_at.unwrap_or(p.event_started_at);
            let limit = p
                .script_timeout
                .map(|t| format!(" of {t} s"))
                .unwrap_or_default();
            format!(
                "{} {}: {script} ({position}), {} s{limit}",
                p.deployment_id,
                p.event,
                now.saturating_sub(since)
            )
        }
        _ => match &p.progress {
            Some(progress) => format!(
                "{} {}: {progress}, {} s",
                p.deployment_id,
                p.event,
                now.saturating_sub(p.event_started_at)
            ),
            None => format!(
                "{} {}, {} s",
                p.deployment_id,
                p.event,
                now.saturating_sub(p.event_started_at)
            ),
        },
    }
}

/// Whether the STATUS= line must be sent again although nothing happened: it shows a
/// running time (a script or event runs) or the agent is stopping (the wait is news).
pub fn needs_refresh(data: &StatusData) -> bool {
    data.state == AgentState::Stopping || !data.in_progress.is_empty()
}

/// The systemd STATUS= text: `idle, polling`, or what is running.
pub fn status_line(data: &StatusData, now: u64) -> String {
    let running: Vec<String> = data
        .in_progress
        .iter()
        .map(|p| progress_line(p, now))
        .collect();
    match data.state {
        AgentState::Starting => "starting".into(),
        AgentState::Stopped => "stopped".into(),
        AgentState::Stopping if running.is_empty() => "stopping".into(),
        AgentState::Stopping => format!("stopping: waiting for {}", running.join("; ")),
        AgentState::Polling if running.is_empty() => "idle, polling".into(),
        AgentState::Polling => running.join("; "),
    }
}

/// PURE: the result an event's entry records: `Succeeded`, or `Failed: <code> <message>`
/// with the diagnostics the service (or deploy-local's output) gets.
pub fn event_outcome(failure: Option<&crate::diagnostics::Diagnostics>) -> String {
    match failure {
        None => "Succeeded".to_string(),
        Some(d) => format!("Failed: {} {}", d.code.code(), d.message),
    }
}

/// PURE: the status fields of a script that starts, from the hook runner's progress; `None`
/// for other progress.
pub fn script_start(p: &crate::hooks::HookProgress) -> Option<ScriptStart<'_>> {
    match p {
        crate::hooks::HookProgress::ScriptStarted {
            location,
            index,
            count,
            timeout_secs,
        } => Some(ScriptStart {
            script: location,
            index: u32::try_from(*index).unwrap_or(u32::MAX),
            count: u32::try_from(*count).unwrap_or(u32::MAX),
            timeout: *timeout_secs,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_outcomes() {
        assert_eq!(event_outcome(None), "Succeeded");
        let d = crate::diagnostics::Diagnostics::unknown("disk full");
        assert_eq!(event_outcome(Some(&d)), "Failed: 5 disk full");
    }

    #[test]
    fn script_starts_from_progress() {
        let started = crate::hooks::HookProgress::ScriptStarted {
            location: "s.sh".into(),
            index: 2,
            count: usize::MAX,
            timeout_secs: 30,
        };
        let s = script_start(&started).unwrap();
        assert_eq!(
            (s.script, s.index, s.count, s.timeout),
            ("s.sh", 2, u32::MAX, 30)
        );
        let output = crate::hooks::HookProgress::Output {
            location: "s.sh".into(),
            stream: crate::hooks::Stream::Stdout,
            line: "x\n".into(),
        };
        assert!(script_start(&output).is_none());
    }

    fn started() -> StatusData {
        let mut d = StatusData::default();
        d.agent_started(42, Some(7), "0.1.0", "instance profile", "https://x", 1000);
        d
    }

    #[test]
    fn lifecycle_of_one_event() {
        let mut d = started();
        assert_eq!(status_line(&d, 1000), "starting");
        d.polling(1001);
        assert_eq!(status_line(&d, 1001), "idle, polling");
        d.command_started("hc-1", "d-ABC123", "g-1", "AfterInstall", 1010);
        assert_eq!(status_line(&d, 1015), "d-ABC123 AfterInstall, 5 s");
        let migrate = ScriptStart {
            script: "scripts/migrate.sh",
            index: 2,
            count: 3,
            timeout: 300,
        };
        d.script_progress("d-ABC123", "AfterInstall", &migrate, 1020);
        assert_eq!(
            status_line(&d, 1061),
            "d-ABC123 AfterInstall: scripts/migrate.sh (2 of 3), 41 s of 300 s"
        );
        assert!(needs_refresh(&d));
        d.command_finished("hc-1", "d-ABC123", "g-1", "AfterInstall", "Succeeded", 1070);
        assert_eq!(status_line(&d, 1070), "idle, polling");
        assert!(!needs_refresh(&d));
        let last = &d.last_results["g-1"];
        assert_eq!(last.event, "AfterInstall");
        assert_eq!(last.result, "Succeeded");
        assert_eq!(last.finished_at, 1070);
    }

    #[test]
    fn unknown_count_and_missing_start() {
        let mut d = started();
        d.polling(1000);
        let a = ScriptStart {
            script: "a.sh",
            index: 1,
            count: 0,
            timeout: 0,
        };
        d.script_progress("d-1", "BeforeInstall", &a, 1000);
        assert_eq!(
            status_line(&d, 1003),
            "d-1 BeforeInstall: a.sh (script 1), 3 s"
        );
        d.agent_stopping(1004);
        assert_eq!(
            status_line(&d, 1004),
            "stopping: waiting for d-1 BeforeInstall: a.sh (script 1), 4 s"
        );
        d.command_finished("", "d-1", "g", "BeforeInstall", "Failed: 5 stopped", 1005);
        assert_eq!(status_line(&d, 1005), "stopping");
        assert!(
            needs_refresh(&d),
            "the stop itself is shown until the agent exits"
        );
        d.agent_stopped(1006);
        assert_eq!(status_line(&d, 1006), "stopped");
        assert!(!needs_refresh(&d));
    }

    #[test]
    fn a_new_command_of_a_deployment_replaces_its_previous_one() {
        let mut d = started();
        d.polling(1);
        d.command_started("hc-1", "d-1", "g", "BeforeInstall", 1);
        d.command_started("hc-2", "d-1", "g", "AfterInstall", 2);
        d.command_started("hc-3", "d-2", "h", "Install", 2);
        assert_eq!(d.in_progress.len(), 2);
        assert_eq!(
            status_line(&d, 4),
            "d-1 AfterInstall, 2 s; d-2 Install, 2 s"
        );
    }

    #[test]
    fn a_long_step_shows_its_progress() {
        let mut d = started();
        d.polling(1000);
        d.command_started("hc", "d-1", "g", "DownloadBundle", 1000);
        d.step_progress(
            "d-1",
            "DownloadBundle",
            "downloading s3://b/k: 1.0 GiB of 2.0 GiB (50 %), 80.0 MiB/s, about 12 s left",
            1012,
        );
        assert_eq!(
            status_line(&d, 1013),
            "d-1 DownloadBundle: downloading s3://b/k: 1.0 GiB of 2.0 GiB (50 %), 80.0 MiB/s, about 12 s left, 13 s"
        );
        // Another deployment's event is not touched.
        d.step_progress("d-2", "Install", "x", 1014);
        assert_eq!(d.in_progress.len(), 1);
        d.command_finished("hc", "d-1", "g", "DownloadBundle", "Succeeded", 1020);
        assert_eq!(status_line(&d, 1020), "idle, polling");
    }

    #[test]
    fn clock_going_back_does_not_underflow() {
        let mut d = started();
        d.polling(10);
        d.command_started("hc", "d-1", "g", "Install", 100);
        assert_eq!(status_line(&d, 50), "d-1 Install, 0 s");
    }

    #[test]
    fn json_round_trip() {
        let mut d = started();
        d.command_started("hc", "d-1", "g", "Install", 100);
        let text = serde_json::to_string(&d).unwrap();
        let back: StatusData = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
        assert!(text.contains("\"state\":\"starting\""));
    }
}
