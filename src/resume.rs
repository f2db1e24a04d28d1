//! Reboot and resume at the edges (docs/reboot.md): the record file of a deployment paused for
//! a reboot (`<root>/deployment-instructions/<group>.reboot`), `reboot_command`, and the facts
//! a found record is judged by (`crate::reboot::decide` makes the decision).
//!
//! Invariants: a record is written durably (temp file, fsync, rename, fsync of the
//! directory) before the reboot is started, and removed durably before a resumed event runs
//! (the daemon's tracking file or deploy-local's own run then covers a crash); at most one
//! record per group (a group runs one deployment at a time).

use crate::deployspec::DeploymentSpec;
use crate::executor::Executor;
use crate::reboot::{self, Facts, RebootRecord, ServiceView};
use crate::state::{self, Layout, StateError};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `reboot_command` may run before the agent stops waiting for it (a reboot in
/// progress may never let it return).
const REBOOT_COMMAND_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{path}: {source}")]
    Record {
        path: PathBuf,
        source: reboot::RecordError,
    },
    #[error(
        "the reboot record {path} holds a deployment specification that cannot be read: {source}"
    )]
    Spec {
        path: PathBuf,
        source: crate::deployspec::SpecError,
    },
}

/// Why `reboot_command` did not start a reboot.
#[derive(Debug, thiserror::Error)]
pub enum RebootCommandError {
    #[error("reboot_command {command:?} could not be started: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("reboot_command {command:?} failed with {status}")]
    Failed { command: String, status: String },
}

/// One record found at start-up.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub record: Result<RebootRecord, ResumeError>,
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The group's most-recent-install pointer, as text.
pub fn most_recent(layout: &Layout, group: &str) -> Result<Option<String>, StateError> {
    Ok(state::read_pointer(&layout.most_recent_install(group))?.map(|p| p.display().to_string()))
}

/// The record of `spec`'s `event` paused after `ask`, as it stands now.
pub fn new_record(
    layout: &Layout,
    spec: &DeploymentSpec,
    event: &str,
    ask: &crate::hooks::RebootAsk,
) -> Result<RebootRecord, StateError> {
    // The token opened the revision's download; nothing after it needs it, so it is not
    // written to the disk.
    let spec_on_disk = DeploymentSpec {
        github_token: None,
        ..spec.clone()
    };
    Ok(RebootRecord {
        version: reboot::RECORD_VERSION,
        deployment_id: spec.deployment_id.clone(),
        group_id: spec.group_id.clone(),
        event: event.to_string(),
        next_script: ask.next_script,
        requested_by: ask.location.clone(),
        requested_at: now_secs(),
        most_recent_install: most_recent(layout, &spec.group_id)?,
        spec: crate::deployspec::encode(&spec_on_disk),
        service: None,
        local: None,
    })
}

/// Writes the record durably.
pub fn write(layout: &Layout, record: &RebootRecord) -> Result<PathBuf, StateError> {
    let path = layout.reboot_record(&record.group_id);
    state::write_atomic(&path, reboot::render(record).as_bytes())?;
    Ok(path)
}

/// Removes a record, durably (the directory is synced), so a crash after this never
/// resumes it a second time.
pub fn remove(path: &Path) -> Result<(), StateError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StateError::new("remove", path, e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StateError::new("sync", dir, e))?;
    }
    Ok(())
}

/// Every record under the deployment root, in name order.
pub fn find_all(layout: &Layout) -> Vec<Found> {
    let dir = layout.instructions_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "reboot")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let record = std::fs::read_to_string(&path)
                .map_err(|e| ResumeError::State(StateError::new("read", &path, e)))
                .and_then(|text| {
                    reboot::parse(&text).map_err(|source| ResumeError::Record {
                        path: path.clone(),
                        source,
                    })
                });
            Found { path, record }
        })
        .collect()
}

/// The deployment specification kept in a record.
pub fn spec_of(path: &Path, record: &RebootRecord) -> Result<DeploymentSpec, ResumeError> {
    crate::deployspec::decode(&record.spec).map_err(|source| ResumeError::Spec {
        path: path.to_path_buf(),
        source,
    })
}

/// Decides what to do with `record`: the group's pointer and the event's script count are
/// read here, the service's view comes from the caller (`None` for local records).
pub fn decide(
    executor: &Executor,
    record: &RebootRecord,
    spec: &DeploymentSpec,
    service: Option<ServiceView>,
) -> reboot::Resume {
    let now_recent = most_recent(&executor.layout, &record.group_id).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        None
    });
    let scripts = match executor.scripts_in_event(&record.event, spec) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!("cannot count the scripts of {}: {e}", record.event);
            None
        }
    };
    reboot::decide(
        record,
        &Facts {
            now: now_secs(),
            most_recent_install: now_recent.as_deref(),
            service,
            scripts_in_event: scripts,
        },
    )
}

/// Runs `reboot_command` (no shell). Success means it exited 0, or is still running after
/// [`REBOOT_COMMAND_WAIT`] (the reboot is under way).
pub fn run_reboot_command(argv: &[String]) -> Result<(), RebootCommandError> {
    let command = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Err(RebootCommandError::Failed {
            command,
            status: "an empty command".into(),
        });
    };
    tracing::info!("running reboot_command: {command}");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| RebootCommandError::Spawn {
            command: command.clone(),
            source,
        })?;
    let until = Instant::now() + REBOOT_COMMAND_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(RebootCommandError::Failed {
                    command,
                    status: status.to_string(),
                })
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                tracing::warn!("reboot_command {command:?} still runs after {REBOOT_COMMAND_WAIT:?}; taking the reboot as under way");
                return Ok(());
            }
            Err(e) => {
                return Err(RebootCommandError::Failed {
                    command,
                    status: e.to_string(),
                })
            }
        }
    }
}
