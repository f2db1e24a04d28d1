//! Logging: `tracing` to standard error for the command-line tools; for the daemon, journald
//! when systemd runs it, else `<log_dir>/<program_name>.log` rotated by size.
//!
//! Invariants: set up once, at the binary edge; library code only emits events. Deployment
//! context travels as span/event fields named [`FIELDS`]; journald receives them upper-cased
//! and unprefixed (`DEPLOYMENT_ID=d-ABC123`, so `journalctl -u codedeploy-agent
//! DEPLOYMENT_ID=d-ABC123` shows one deployment), and the text log appends them as
//! `deployment_id=d-ABC123 ...` to each line. Hook output is logged under the target
//! [`HOOK_OUTPUT_TARGET`]: it goes to the journal (at priority info, within a per-script
//! budget, see `hook_journal`), but not to the text log, where the deployment's scripts.log
//! and the deployments log already hold it. The journal writer is `journal`.

mod hook_journal;
pub mod journal;
mod rotate;

pub use hook_journal::{HookJournal, WINDOW, WINDOW_LINES};
pub use rotate::RotatingFile;

use crate::config::Config;
use std::path::PathBuf;
use tracing::Subscriber;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Field names carried by spans and events, and the journal fields they become.
pub const FIELDS: [(&str, &str); 5] = [
    ("deployment_id", "DEPLOYMENT_ID"),
    ("deployment_group_id", "DEPLOYMENT_GROUP_ID"),
    ("lifecycle_event", "LIFECYCLE_EVENT"),
    ("script", "SCRIPT"),
    ("host_command_id", "HOST_COMMAND_ID"),
];

/// Target of hook output events.
pub const HOOK_OUTPUT_TARGET: &str = "codedeploy_agent::hook_output";
/// Target of the record saying how many lines of a script were left out of the journal
/// (under [`HOOK_OUTPUT_TARGET`], so the text log leaves it out as it leaves out the lines).
pub const HOOK_OUTPUT_SUMMARY_TARGET: &str = "codedeploy_agent::hook_output::summary";
/// systemd's journal socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Human-facing commands log warnings and errors to standard error; RUST_LOG overrides.
pub fn init_cli(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("create log directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("open log file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a logger was already set up in this process")]
    AlreadySet,
}

/// Where the daemon's log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Journald,
    File(PathBuf),
}

/// Keeps the logging set-up alive and says where it writes.
#[derive(Debug)]
pub struct LogGuard {
    pub target: LogTarget,
    /// Why journald was wanted but not used, to log once logging works.
    pub fallback_reason: Option<String>,
}

/// PURE: whether the daemon should log to journald. `journal_stream`: `$JOURNAL_STREAM`
/// (`<dev>:<inode>` of the journal stream systemd connected stderr to); `stderr`: the device
/// and inode of our stderr; `invocation_id`: `$INVOCATION_ID` is set (we run as a unit).
pub fn wants_journald(
    journal_stream: Option<&str>,
    stderr: Option<(u64, u64)>,
    invocation_id: bool,
    socket_exists: bool,
) -> bool {
    let stream_matches = journal_stream
        .and_then(|s| s.split_once(':'))
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        .is_some_and(|pair| Some(pair) == stderr);
    socket_exists && (stream_matches || invocation_id)
}

fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    let st = nix::sys::stat::fstat(std::io::stderr().as_fd()).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// The daemon's target from the environment and the configuration.
pub fn choose_target(cfg: &Config) -> LogTarget {
    let journald = wants_journald(
        std::env::var("JOURNAL_STREAM").ok().as_deref(),
        stderr_identity(),
        std::env::var_os("INVOCATION_ID").is_some(),
        journal::socket_path().exists(),
    );
    if journald {
        LogTarget::Journald
    } else {
        LogTarget::File(cfg.log_dir.join(format!("{}.log", cfg.program_name)))
    }
}

fn filter(cfg: &Config, file: bool) -> EnvFilter {
    let level = if cfg.verbose { "debug" } else { "info" };
    let mut directives = level.to_string();
    if file {
        directives.push_str(&format!(",{HOOK_OUTPUT_TARGET}=off"));
    }
    EnvFilter::new(directives)
}

/// The official agent's line: `2024-09-10T22:33:10 INFO  [codedeploy-agent(50192)]: message`,
/// followed by the fields of the event and its spans.
struct AgentFormat {
    program: String,
}

impl<S, N> FormatEvent<S, N> for AgentFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(
            writer,
            "{} {:<5} [{}({})]: ",
            local_timestamp(),
            event.metadata().level().as_str(),
            self.program,
            std::process::id()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, " {fields}")?;
                    }
                }
            }
        }
        writeln!(writer)
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in local time.
fn local_timestamp() -> String {
    crate::hooks::LocalTime::at(std::time::SystemTime::now()).iso()
}

/// A subscriber for `target` (not installed; see [`init_daemon`]). Journald that cannot be
/// reached falls back to the file, and the guard says why.
pub fn daemon_subscriber(
    cfg: &Config,
    target: LogTarget,
) -> Result<(Box<dyn Subscriber + Send + Sync>, LogGuard), LoggingError> {
    let mut fallback_reason = None;
    if target == LogTarget::Journald {
        match journal::JournalLayer::connect(&journal::socket_path(), &cfg.program_name) {
            Ok(layer) => {
                let sub = tracing_subscriber::registry()
                    .with(filter(cfg, false))
                    .with(layer);
                let guard = LogGuard {
                    target,
                    fallback_reason,
                };
                return Ok((Box::new(sub), guard));
            }
            Err(e) => fallback_reason = Some(format!("journald is not reachable ({e})")),
        }
    }
    let path = match target {
        LogTarget::File(p) => p,
        LogTarget::Journald => cfg.log_dir.join(format!("{}.log", cfg.program_name)),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| LoggingError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let file =
        RotatingFile::open(&path, cfg.log_max_bytes, cfg.log_keep_files).map_err(|source| {
            LoggingError::Open {
                path: path.clone(),
                source,
            }
        })?;
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(AgentFormat {
            program: cfg.program_name.clone(),
        })
        .with_writer(file);
    let sub = tracing_subscriber::registry()
        .with(filter(cfg, true))
        .with(layer);
    let guard = LogGuard {
        target: LogTarget::File(path),
        fallback_reason,
    };
    Ok((Box::new(sub), guard))
}

/// Sets up the daemon's logging for the whole process.
pub fn init_daemon(cfg: &Config) -> Result<LogGuard, LoggingError> {
    let (sub, guard) = daemon_subscriber(cfg, choose_target(cfg))?;
    tracing::subscriber::set_global_default(sub).map_err(|_| LoggingError::AlreadySet)?;
    if let Some(why) = &guard.fallback_reason {
        tracing::warn!("{why}; logging to {:?} instead", guard.target);
    }
    Ok(guard)
}

/// The span to enter around one host command; every event inside carries its ids.
pub fn command_span(
    host_command_id: &str,
    deployment_id: &str,
    deployment_group_id: &str,
    lifecycle_event: &str,
) -> tracing::Span {
    tracing::info_span!(
        "command",
        host_command_id = %host_command_id,
        deployment_id = %deployment_id,
        deployment_group_id = %deployment_group_id,
        lifecycle_event = %lifecycle_event,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_only_under_systemd_with_a_journal() {
        assert!(wants_journald(Some("8:12"), Some((8, 12)), false, true));
        assert!(!wants_journald(Some("8:12"), Some((8, 13)), false, true));
        assert!(wants_journald(None, None, true, true));
        assert!(!wants_journald(Some("8:12"), Some((8, 12)), true, false));
        assert!(!wants_journald(Some("junk"), Some((8, 12)), false, true));
        assert!(!wants_journald(None, None, false, true));
    }
}
