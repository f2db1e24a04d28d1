//! Running the scripts of one lifecycle event (docs/behaviour/hooks.md#hook-execution): finding
//! each script inside the selected revision's archive, running it with its timeout and identity,
//! logging its output, and ending everything it started when it overruns.
//!
//! Invariants: scripts run in appspec order and the first failure stops the event; every failure
//! carries the official error code and message (docs/behaviour/protocol.md#diagnostics-payload,
//! docs/behaviour/hooks.md#running-an-event, docs/behaviour/hooks.md#hook-process) and the log tail
//! for the service; a hook that times out, or leaves its outputs open past its deadline, leaves no
//! process behind (see docs/adr/0004-hook-containment.md); a hook that succeeds keeps the daemons
//! it started.

mod contain;
mod env;
mod leftover;
mod log;
mod run;
mod spawn;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use contain::{own_cgroup_dir, Containment, CONTAINMENT_ENV, HOOKS_CGROUP_DIR};
pub use env::{
    hook_env, resolve_runas, HookVars, RunAs, BUNDLE_VARS, HOOK_TOKEN_VAR, REBOOT_REQUEST_VAR,
    STRIPPED_VARS,
};
pub use leftover::{end_leftover, fallback_targets, Leftover, Proc, RunningHook};
pub use log::{
    strip_ansi, LocalTime, DEPLOYMENTS_LOG_KEEP, DEPLOYMENTS_LOG_MAX_BYTES, SCRIPTS_LOG_KEEP,
};

use crate::appspec::model::Script;
use crate::diagnostics::{Diagnostics, ErrorCode};

/// SIGTERM-to-SIGKILL grace for hooks that overrun.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// Everything one event's scripts need besides the scripts themselves.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub event: String,
    pub deployment_id: String,
    pub application_name: String,
    pub deployment_group_name: String,
    pub deployment_group_id: String,
    /// `BUNDLE_*` variables of the revision (only those that apply; absent ones are unset).
    pub revision_env: Vec<(String, String)>,
    /// The archive of the revision selected for this event
    /// (docs/behaviour/hooks.md#revision-selection); also the scripts' working directory.
    pub archive_dir: PathBuf,
    /// The *current* deployment's `logs/scripts.log`.
    pub scripts_log: PathBuf,
    /// The host-wide deployments log; `None` when `enable_deployments_log` is off.
    pub deployments_log: Option<PathBuf>,
    /// scripts.log is rotated past this size (0: never).
    pub scripts_log_max_bytes: u64,
    pub containment: Containment,
    pub kill_grace: Duration,
    /// Set by the agent when it shuts down: the running script is ended like a timed-out
    /// one (SIGTERM, grace, SIGKILL) and the event fails with code 5.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Where the running script is recorded (cgroup, token, process group) from before it
    /// starts until it has ended, for crash recovery; `None`: not recorded.
    pub running_record: Option<PathBuf>,
    /// The directory under which each script gets its own reboot-request path
    /// (`<dir>/<event>.<n>/reboot`, docs/reboot.md); `None`: hooks cannot ask for a reboot.
    pub reboot_requests: Option<PathBuf>,
    /// Index (from 0) of the first script to run: a resume after a reboot starts after the
    /// script that asked for it.
    pub start_at: usize,
}

impl HookContext {
    /// A context with the defaults: no revision variables, no deployments log, 64 MiB
    /// scripts.log rotation, automatic containment, 5 s grace.
    pub fn new(
        event: impl Into<String>,
        deployment_id: impl Into<String>,
        archive_dir: impl Into<PathBuf>,
        scripts_log: impl Into<PathBuf>,
    ) -> Self {
        Self {
            event: event.into(),
            deployment_id: deployment_id.into(),
            application_name: String::new(),
            deployment_group_name: String::new(),
            deployment_group_id: String::new(),
            revision_env: Vec::new(),
            archive_dir: archive_dir.into(),
            scripts_log: scripts_log.into(),
            deployments_log: None,
            scripts_log_max_bytes: 64 * 1024 * 1024,
            containment: Containment::Auto,
            kill_grace: DEFAULT_KILL_GRACE,
            cancel: None,
            running_record: None,
            reboot_requests: None,
            start_at: 0,
        }
    }
}

/// How a script's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatusDescr {
    Code(i32),
    Signal(i32),
}

impl ExitStatusDescr {
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

impl std::fmt::Display for ExitStatusDescr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit code {c}"),
            Self::Signal(s) => match nix::sys::signal::Signal::try_from(*s) {
                Ok(sig) => write!(f, "signal {s} ({})", sig.as_str()),
                Err(_) => write!(f, "signal {s}"),
            },
        }
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Live progress, for printing or status updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookProgress {
    /// Script `index` (from 1) of the event's `count`, ended after `timeout_secs`.
    ScriptStarted {
        location: String,
        index: usize,
        count: usize,
        timeout_secs: u32,
    },
    /// One output line, escape sequences removed, newline kept when there was one.
    Output {
        location: String,
        stream: Stream,
        line: String,
    },
    ScriptFinished {
        location: String,
        duration: Duration,
        /// `None` when the script never ran or was still running at its deadline.
        exit: Option<ExitStatusDescr>,
        code: ErrorCode,
    },
}

/// One script that ran to success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptReport {
    pub location: String,
    pub duration: Duration,
    pub exit: ExitStatusDescr,
    /// Processes of the hook still running when it finished (daemons it started).
    pub survivors: usize,
    /// The hook's cgroup, kept while survivors live in it (removed by a later sweep once
    /// they are gone); `None` without survivors or without cgroup containment.
    pub cgroup: Option<PathBuf>,
    /// The script created its reboot-request file and exited 0.
    pub reboot_requested: bool,
}

/// A whole event that succeeded, or that stopped after a script asked for a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventReport {
    pub scripts: Vec<ScriptReport>,
    /// The script-log tail (docs/behaviour/hooks.md#log-tail); empty for a noop event.
    pub log_tail: String,
    /// Set when a script asked for a reboot: the event's remaining scripts did not run.
    pub reboot: Option<RebootAsk>,
}

/// A script's request for a reboot after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootAsk {
    /// The appspec location of the script that asked.
    pub location: String,
    /// Index (from 0) of the event's next script (the count when it was the last).
    pub next_script: usize,
}

/// PURE: the reboot-request path of script `index` (from 0) of `event` under `dir`: unique
/// per deployment (the directory is the deployment's), event and script.
pub fn reboot_request_path(dir: &std::path::Path, event: &str, index: usize) -> PathBuf {
    dir.join(format!("{event}.{}", index + 1)).join("reboot")
}

/// Why an event failed, as the service will be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HookFailure {
    pub code: ErrorCode,
    /// The script's appspec location; empty for failures that are not a script's.
    pub script_name: String,
    pub message: String,
    pub log_tail: String,
    pub exit: Option<ExitStatusDescr>,
}

impl HookFailure {
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            code: self.code,
            script_name: self.script_name.clone(),
            message: self.message.clone(),
            log: self.log_tail.clone(),
        }
    }
}

/// Runs the scripts of `ctx.event` in order, stopping at the first failure. An empty list
/// is a noop that writes nothing. A set `ctx.cancel` stops the event before its next script
/// and ends the running one.
pub fn run_event(
    ctx: &HookContext,
    scripts: &[Script],
    observer: &mut dyn FnMut(HookProgress),
) -> Result<EventReport, HookFailure> {
    if scripts.len() <= ctx.start_at {
        return Ok(EventReport::default());
    }
    let mut log = log::HookLog::open(
        &ctx.scripts_log,
        ctx.scripts_log_max_bytes,
        ctx.deployments_log.as_deref(),
        &ctx.deployment_id,
    )
    .map_err(|e| HookFailure {
        code: ErrorCode::UnknownError,
        script_name: String::new(),
        message: format!("cannot open {}: {e}", ctx.scripts_log.display()),
        log_tail: String::new(),
        exit: None,
    })?;
    log.entry(format!("LifecycleEvent - {}\n", ctx.event).as_bytes());
    let mut report = EventReport::default();
    for (index, script) in scripts.iter().enumerate().skip(ctx.start_at) {
        if ctx
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(HookFailure {
                code: ErrorCode::UnknownError,
                script_name: script.location.clone(),
                message: format!(
                    "Script at specified location: {} was not run because the agent is shutting down",
                    script.location
                ),
                log_tail: log.tail(),
                exit: None,
            });
        }
        let done = run::run_script(ctx, script, index, scripts.len(), &mut log, observer)?;
        let reboot = done.reboot_requested;
        report.scripts.push(done);
        if reboot {
            log.entry(
                format!(
                    "[reboot] {} asked for a reboot; the event goes on after it\n",
                    script.location
                )
                .as_bytes(),
            );
            report.reboot = Some(RebootAsk {
                location: script.location.clone(),
                next_script: index + 1,
            });
            break;
        }
    }
    report.log_tail = log.tail();
    Ok(report)
}
