//! The daemon's side of reboot and resume (docs/reboot.md): the reboot itself once a hook
//! asked for it, and at start-up the commands a reboot paused, resumed from the next script
//! of their event and completed as if nothing had happened.
//!
//! Invariants: a paused command is never reported as interrupted (code 7) and never run
//! twice: its record is removed (durably) only after it is tracked again, and before any
//! of its scripts runs; a record whose command the service has ended, or whose group another
//! deployment took, runs nothing.

use super::{process, PendingReboot, Shared};
use crate::config::Config;
use crate::control::{CommandStatus, Envelope, HostCommand};
use crate::deployspec::DeploymentSpec;
use crate::diagnostics::Diagnostics;
use crate::reboot::{DropReason, RebootRecord, Resume, ServiceView};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// Attempts at asking the service about a paused command before resuming without its answer
/// (the network may come up a little after the agent).
const ASK_ATTEMPTS: u32 = 5;
const ASK_PAUSE: Duration = Duration::from_secs(2);

/// A command found paused for a reboot.
pub(super) struct Paused {
    path: PathBuf,
    record: RebootRecord,
    spec: DeploymentSpec,
}

/// The daemon's records (deploy-local's are left for `deploy-local --resume`); a record that
/// cannot be read is removed: nothing can be resumed from it, and the service ends the
/// command by its time-out.
pub(super) fn find(shared: &Shared) -> Vec<Paused> {
    let mut out = Vec::new();
    for found in crate::resume::find_all(&shared.executor.layout) {
        let read = found.record.and_then(|r| {
            let spec = crate::resume::spec_of(&found.path, &r)?;
            Ok((r, spec))
        });
        match read {
            Ok((record, _)) if record.service.is_none() => {}
            Ok((record, spec)) => out.push(Paused {
                path: found.path,
                record,
                spec,
            }),
            Err(e) => {
                warn!("cannot resume from a reboot record: {e}; removing it");
                if let Err(e) = crate::resume::remove(&found.path) {
                    warn!("{e}");
                }
            }
        }
    }
    out
}

/// The host commands of `paused`, which crash recovery must not report.
pub(super) fn command_ids(paused: &[Paused]) -> HashSet<String> {
    paused
        .iter()
        .filter_map(|p| p.record.service.as_ref())
        .map(|s| s.host_command_identifier.clone())
        .collect()
}

/// Asks the service how it sees the command (PostHostCommandUpdate), a few times.
async fn ask_service(shared: &Shared, command_id: &str) -> ServiceView {
    let note = Envelope {
        format: "JSON".into(),
        payload: serde_json::json!({"message": "resuming after the reboot"}).to_string(),
    };
    for attempt in 1..=ASK_ATTEMPTS {
        match shared
            .client
            .post_host_command_update(command_id, Some(&note))
            .await
        {
            Ok(Some(CommandStatus::InProgress | CommandStatus::Pending)) => {
                return ServiceView::InProgress
            }
            Ok(Some(other)) => return ServiceView::Ended(other.to_string()),
            Ok(None) => return ServiceView::Unknown,
            Err(e) => {
                warn!("cannot ask the service about command {command_id} (attempt {attempt} of {ASK_ATTEMPTS}): {e}");
                if attempt < ASK_ATTEMPTS {
                    tokio::time::sleep(ASK_PAUSE).await;
                }
            }
        }
    }
    ServiceView::Unknown
}

/// Decides each paused command and starts the ones to resume as tasks (claimed, so a
/// delivery of the same command meanwhile is not run twice).
pub(super) async fn start(
    shared: &Arc<Shared>,
    paused: Vec<Paused>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    for p in paused {
        let Some(service) = p.record.service.clone() else {
            continue;
        };
        let id = service.host_command_identifier.clone();
        let view = ask_service(shared, &id).await;
        let decision = {
            let executor = shared.executor.clone();
            let (record, spec) = (p.record.clone(), p.spec.clone());
            let v = view.clone();
            tokio::task::spawn_blocking(move || {
                crate::resume::decide(&executor, &record, &spec, Some(v))
            })
            .await
            .unwrap_or(Resume::RunFrom(p.record.next_script))
        };
        let what = format!(
            "{} of deployment {} (group {})",
            p.record.event, p.record.deployment_id, p.record.group_id
        );
        let start_at = match decision {
            Resume::Drop(reason) => {
                info!("not resuming {what} after the reboot: {reason}");
                if let Err(e) = crate::resume::remove(&p.path) {
                    warn!("{e}");
                }
                // A command the service still waits for is ended now rather than by its
                // time-out.
                if view == ServiceView::InProgress && !matches!(reason, DropReason::Ended(_)) {
                    let d = Diagnostics::unknown(format!("not resumed after the reboot: {reason}"));
                    shared.complete(&id, CommandStatus::Failed, &d).await;
                }
                continue;
            }
            Resume::FinishEvent => {
                info!(
                    "resuming {what} after the reboot: {} was its last script; completing it",
                    p.record.requested_by
                );
                p.record.next_script
            }
            Resume::RunFrom(k) => {
                info!(
                    "resuming {what} after the reboot, at script {} (after {})",
                    k + 1,
                    p.record.requested_by
                );
                k
            }
        };
        // Tracked again before the record goes: a crash from here on is an interrupted
        // command (code 7), never a second resume.
        let entry = match shared
            .tracker
            .resumed(&p.record.deployment_id, &id)
            .and_then(|e| crate::resume::remove(&p.path).map(|()| e))
        {
            Ok(e) => e,
            Err(e) => {
                error!("cannot resume {what}: {e}");
                let d = Diagnostics::unknown(format!("cannot resume after the reboot: {e}"));
                shared.complete(&id, CommandStatus::Failed, &d).await;
                continue;
            }
        };
        if !shared.claim(&id) {
            continue;
        }
        let cmd = HostCommand {
            host_command_identifier: id.clone(),
            host_identifier: service.host_identifier.clone(),
            deployment_execution_id: service.deployment_execution_id.clone(),
            command_name: p.record.event.clone(),
            nonce: None,
        };
        let shared = shared.clone();
        let spec = p.spec;
        tasks.spawn(async move {
            process::run_prepared(shared.clone(), cmd, spec, None, Some(entry), start_at).await;
            shared.release(&id);
        });
    }
}

/// Lets the other running commands end (within kill_agent_max_wait_time_seconds), then runs
/// `reboot_command`. True when the reboot is under way; false when it could not be started
/// (the record is removed and the command reported failed, naming the hook; the agent goes
/// back to work).
pub(super) async fn reboot(
    shared: &Shared,
    cfg: &Config,
    tasks: &mut tokio::task::JoinSet<()>,
    pending: PendingReboot,
) -> bool {
    if !tasks.is_empty() {
        info!(
            "waiting up to {} s for the other running commands before the reboot",
            cfg.kill_agent_max_wait_time_seconds
        );
        let grace = Duration::from_secs(cfg.kill_agent_max_wait_time_seconds);
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    }
    crate::notify::status(&format!(
        "Rebooting: {} asked for a reboot",
        pending.requested_by
    ));
    let argv = cfg.reboot_command.clone();
    let ran = tokio::task::spawn_blocking(move || crate::resume::run_reboot_command(&argv)).await;
    let why = match ran {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("reboot_command stopped unexpectedly: {e}"),
    };
    error!("{why}; the deployment does not go on");
    if let Err(e) = crate::resume::remove(&pending.record) {
        warn!("{e}");
    }
    let d = Diagnostics {
        script_name: pending.requested_by.clone(),
        ..Diagnostics::unknown(format!(
            "{} asked for a reboot, but {why}",
            pending.requested_by
        ))
    };
    shared
        .complete(&pending.command_id, CommandStatus::Failed, &d)
        .await;
    false
}
