//! One host command from delivery to completion
//! (docs/behaviour/protocol.md#acknowledge-and-complete): fetch and check the deployment spec,
//! acknowledge (noop or not), track, execute on a blocking thread, complete once.
//!
//! Invariants: exactly one PutHostCommandComplete per executed command (retried until the
//! service takes it); a command is tracked from its poll until the service accepted its
//! completion, with its result recorded before it is reported (see `tracking`); commands of
//! one deployment group run one at a time, in this process (a mutex per group) and across
//! processes (the group lock, held for the whole execution, see `crate::group`).

use super::tracking::Entry;
use super::Shared;
use crate::control::{self, AckPayload, CommandStatus, ControlError, Envelope, HostCommand};
use crate::deployspec::{self, DeploymentSpec};
use crate::diagnostics::Diagnostics;
use crate::executor::{EventOutcome, ExecError, ReadAppSpec};
use crate::failpoint;
use crate::hooks::HookProgress;
use crate::state::lock::Holder;
use crate::state::StateError;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn, Instrument};

/// How long a command waits for its deployment group while another process (a
/// `deploy-local`) holds it: the longest a hook script may run (the official maximum
/// timeout), so an operator's local run is waited out rather than failing the service's
/// deployment; a shutdown stops the wait at once.
const GROUP_LOCK_WAIT: Duration = Duration::from_secs(3600);

/// Why a command failed before execution; its text is the diagnostics message the service
/// receives (code 5, unknown error).
#[derive(Debug, thiserror::Error)]
enum PrepareError {
    #[error("cannot track the command: {0}")]
    Track(StateError),
    #[error(transparent)]
    Service(#[from] ControlError),
    #[error("Deployment System mismatch: CodeDeploy != {0}")]
    NotCodeDeploy(String),
    #[error("Deployment Specification missing")]
    NoSpecification,
    #[error(transparent)]
    Envelope(#[from] control::SpecEnvelopeError),
    #[error(transparent)]
    Spec(#[from] deployspec::SpecError),
    #[error("noop check did not finish: {0}")]
    NoopCheck(tokio::task::JoinError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// What the steps before execution decided.
enum Prepared {
    /// The service needs nothing more (ack said Succeeded, or Failed and handled).
    Done,
    /// Execute, with the appspec the noop check read (so it is not read again).
    Execute(Box<DeploymentSpec>, Option<ReadAppSpec>),
}

/// Handles one delivered command to the end. Never panics the poller: every failure is
/// reported to the service as the command's result.
pub(crate) async fn handle(shared: Arc<Shared>, cmd: HostCommand) {
    let id = cmd.host_command_identifier.clone();
    let span = crate::logging::command_span(&id, "", "", &cmd.command_name);
    // Durable before anything else: a crash from here on is reported after the restart. A
    // command that cannot be tracked is not run (as the official agent, whose tracking
    // write failing fails the command).
    let (entry, prepared) = match shared.tracker.received(&id) {
        Ok(mut e) => {
            let p = prepare(&shared, &cmd, &mut e)
                .instrument(span.clone())
                .await;
            (Some(e), p)
        }
        Err(e) => (None, Err(PrepareError::Track(e))),
    };
    match prepared {
        Err(err) => {
            let message = err.to_string();
            span.in_scope(|| {
                warn!(
                    "command {} failed before execution: {message}",
                    cmd.command_name
                )
            });
            let d = Diagnostics::unknown(message);
            report(
                &shared,
                &cmd,
                entry.as_ref(),
                CommandStatus::Failed,
                d,
                span,
            )
            .await;
        }
        Ok(Prepared::Done) => {
            if let Some(e) = &entry {
                shared.tracker.done(e);
            }
        }
        Ok(Prepared::Execute(spec, read)) => run_prepared(shared, cmd, *spec, read, entry, 0).await,
    }
}

/// Executes a command whose spec is known and acknowledged (from script `start_at` of its
/// event: a resume after a reboot), then reports it, or hands the reboot a script asked for
/// to the agent (docs/reboot.md).
pub(crate) async fn run_prepared(
    shared: Arc<Shared>,
    cmd: HostCommand,
    spec: DeploymentSpec,
    read: Option<ReadAppSpec>,
    entry: Option<Entry>,
    start_at: usize,
) {
    let id = cmd.host_command_identifier.clone();
    let span =
        crate::logging::command_span(&id, &spec.deployment_id, &spec.group_id, &cmd.command_name);
    match execute(&shared, &cmd, spec, read, start_at)
        .instrument(span.clone())
        .await
    {
        Executed::Done(status, diagnostics) => {
            report(&shared, &cmd, entry.as_ref(), status, diagnostics, span).await
        }
        Executed::Reboot(pending) => {
            // The reboot record now stands for the command: a start-up resumes it instead
            // of reporting it interrupted.
            if let Some(e) = &entry {
                shared.tracker.done(e);
            }
            let note = Envelope {
                format: "JSON".into(),
                payload: serde_json::json!({
                    "message": format!("{} asked for a reboot; the event goes on after it", pending.requested_by),
                })
                .to_string(),
            };
            if let Err(e) = shared
                .client
                .post_host_command_update(&id, Some(&note))
                .await
            {
                span.in_scope(|| warn!("could not tell the service about the reboot: {e}"));
            }
            shared.request_reboot(pending);
        }
    }
}

/// Records the result, reports it, and stops tracking once the service took it.
async fn report(
    shared: &Shared,
    cmd: &HostCommand,
    entry: Option<&Entry>,
    status: CommandStatus,
    diagnostics: Diagnostics,
    span: tracing::Span,
) {
    let id = &cmd.host_command_identifier;
    if let Some(e) = entry {
        if let Err(err) = shared.tracker.finished(e, &status, &diagnostics) {
            span.in_scope(|| warn!("cannot record the result of command {id}: {err}"));
        }
    }
    failpoint::hit_for("after-execute", &cmd.command_name);
    let accepted = shared
        .complete(id, status, &diagnostics)
        .instrument(span)
        .await;
    // A result the service never took stays recorded, for the next start to report.
    if let (true, Some(e)) = (accepted, entry) {
        shared.tracker.done(e);
    }
}

fn json_envelope(payload: String) -> Envelope {
    Envelope {
        format: "JSON".into(),
        payload,
    }
}

async fn fetch_spec(shared: &Shared, cmd: &HostCommand) -> Result<DeploymentSpec, PrepareError> {
    let resp = shared
        .client
        .get_deployment_specification(&cmd.deployment_execution_id, &shared.host_id)
        .await?;
    match resp.deployment_system.as_deref() {
        Some("CodeDeploy") => {}
        other => return Err(PrepareError::NotCodeDeploy(other.unwrap_or("").to_string())),
    }
    let envelope = resp.generic_envelope.ok_or(PrepareError::NoSpecification)?;
    let json = control::open_envelope(&envelope, shared.spec_policy, shared.trust.as_ref())?;
    Ok(deployspec::decode(&json)?)
}

async fn prepare(
    shared: &Arc<Shared>,
    cmd: &HostCommand,
    entry: &mut Entry,
) -> Result<Prepared, PrepareError> {
    let spec = fetch_spec(shared, cmd).await?;
    shared
        .tracker
        .identify(entry, &spec.deployment_id)
        .map_err(PrepareError::Track)?;
    let (noop, read) = {
        let executor = shared.executor.clone();
        let name = cmd.command_name.clone();
        let s = spec.clone();
        tokio::task::spawn_blocking(move || executor.is_noop(&name, &s))
            .await
            .map_err(PrepareError::NoopCheck)??
    };
    failpoint::hit_for("before-ack", &cmd.command_name);
    let ack = shared
        .client
        .put_host_command_acknowledgement(
            &cmd.host_command_identifier,
            Some(&json_envelope(
                AckPayload {
                    is_command_noop: noop,
                }
                .to_json(),
            )),
        )
        .await?;
    match ack {
        Some(CommandStatus::Succeeded) => {
            info!(
                "the service reports {} already succeeded; nothing to do",
                cmd.command_name
            );
            Ok(Prepared::Done)
        }
        Some(CommandStatus::Failed) => {
            info!(
                "Received Failed for command {}, checking whether command is a noop...",
                cmd.command_name
            );
            if noop {
                shared
                    .complete(
                        &cmd.host_command_identifier,
                        CommandStatus::Succeeded,
                        &Diagnostics::noop_after_failed_ack(),
                    )
                    .await;
            }
            Ok(Prepared::Done)
        }
        _ => {
            failpoint::hit_for("after-ack", &cmd.command_name);
            Ok(Prepared::Execute(Box::new(spec), read))
        }
    }
}

/// How one execution ended.
enum Executed {
    Done(CommandStatus, Diagnostics),
    /// A script asked for a reboot; its record is written.
    Reboot(super::PendingReboot),
}

async fn execute(
    shared: &Arc<Shared>,
    cmd: &HostCommand,
    spec: DeploymentSpec,
    read: Option<ReadAppSpec>,
    start_at: usize,
) -> Executed {
    let lock = shared.group_lock(&spec.group_id);
    let _serial = lock.lock().await;
    shared.status.command_started(
        &cmd.host_command_identifier,
        &spec.deployment_id,
        &spec.group_id,
        &cmd.command_name,
    );
    info!("executing {} of {}", cmd.command_name, spec.deployment_id);
    let executor = shared.executor.clone();
    let name = cmd.command_name.clone();
    let span = tracing::Span::current();
    let status = shared.status.clone();
    let spec_for_task = spec.clone();
    let service = crate::reboot::ServiceCommand {
        host_command_identifier: cmd.host_command_identifier.clone(),
        host_identifier: cmd.host_identifier.clone(),
        deployment_execution_id: cmd.deployment_execution_id.clone(),
    };
    // Set once the group is ours: the duration metric is the event's own run, not the wait.
    let began = Arc::new(std::sync::OnceLock::new());
    let began_in_task = began.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let group = &spec_for_task.group_id;
        let holder = Holder::me(&spec_for_task.deployment_id, &format!("agent: {name}"));
        let mut on_busy = |h: &str| {
            warn!("deployment group {group} is busy: held by {h}; waiting for it");
        };
        let _group =
            match crate::group::take(&executor, group, &holder, GROUP_LOCK_WAIT, &mut on_busy) {
                Ok(l) => l,
                Err(e) => return Err(Diagnostics::unknown(e.to_string())),
            };
        let scripts_log = crate::state::scripts_log(&executor.deployment_dir(&spec_for_task));
        let mut journal = crate::logging::HookJournal::new(
            executor.config.hook_output_journal_lines,
            &scripts_log,
        );
        let mut observer =
            |p: HookProgress| observe(&status, &spec_for_task, &name, &mut journal, p);
        let _ = began_in_task.set(std::time::Instant::now());
        let outcome = executor
            .execute_from(&name, &spec_for_task, start_at, read, &mut observer)
            .map_err(|e| {
                warn!("{name} failed: {e}");
                e.diagnostics()
            })?;
        match outcome {
            // Written while the group is still held: no other deployment of it can start
            // between the script and the record.
            EventOutcome::Reboot { ask, .. } => {
                record_reboot(&executor, &spec_for_task, &name, &ask, service)
                    .map(|p| (Some(p), None))
            }
            EventOutcome::Builtin { bundle_bytes, .. } => Ok((None, bundle_bytes)),
            _ => Ok((None, None)),
        }
    })
    .await;
    let took = began
        .get()
        .map(std::time::Instant::elapsed)
        .unwrap_or_default();
    let bundle_bytes = match &joined {
        Ok(Ok((_, bytes))) => *bytes,
        _ => None,
    };
    let result = match joined {
        Ok(Ok((None, _))) => (CommandStatus::Succeeded, Diagnostics::success()),
        Ok(Ok((Some(pending), _))) => {
            shared.status.command_finished(
                &cmd.host_command_identifier,
                &spec.deployment_id,
                &spec.group_id,
                &cmd.command_name,
                &format!("Rebooting: {} asked for a reboot", pending.requested_by),
            );
            return Executed::Reboot(pending);
        }
        Ok(Err(d)) => (CommandStatus::Failed, d),
        Err(e) => (
            CommandStatus::Failed,
            Diagnostics::unknown(format!("the command stopped unexpectedly: {e}")),
        ),
    };
    let failure = match result.0 {
        CommandStatus::Succeeded => None,
        _ => Some(&result.1),
    };
    shared.status.event_finished(
        &cmd.host_command_identifier,
        &spec.deployment_id,
        &spec.group_id,
        &cmd.command_name,
        failure,
    );
    if let Some(m) = &shared.metrics {
        m.command_finished(
            &spec,
            &cmd.command_name,
            result.0 == CommandStatus::Succeeded,
            took,
            bundle_bytes,
            std::time::SystemTime::now(),
        );
        let m = m.clone();
        let _ = tokio::task::spawn_blocking(move || m.write_or_warn()).await;
    }
    Executed::Done(result.0, result.1)
}

/// Writes the durable record of a reboot `ask` (docs/reboot.md); a record that cannot be
/// written fails the command, since a reboot without it would lose the deployment.
fn record_reboot(
    executor: &crate::executor::Executor,
    spec: &DeploymentSpec,
    event: &str,
    ask: &crate::hooks::RebootAsk,
    service: crate::reboot::ServiceCommand,
) -> Result<super::PendingReboot, Diagnostics> {
    let write = || {
        let mut record = crate::resume::new_record(&executor.layout, spec, event, ask)?;
        record.service = Some(service.clone());
        crate::resume::write(&executor.layout, &record)
    };
    match write() {
        Ok(path) => {
            info!(
                "{} asked for a reboot; recorded in {} (the event goes on at script {} after it)",
                ask.location,
                path.display(),
                ask.next_script + 1
            );
            Ok(super::PendingReboot {
                record: path,
                command_id: service.host_command_identifier,
                requested_by: ask.location.clone(),
            })
        }
        Err(e) => Err(Diagnostics {
            script_name: ask.location.clone(),
            ..Diagnostics::unknown(format!(
                "{} asked for a reboot, but where the deployment stands cannot be recorded: {e}",
                ask.location
            ))
        }),
    }
}

/// Hook progress: into the agent's log (journald fields come from the span) and the status file.
fn observe(
    status: &crate::status::StatusFile,
    spec: &DeploymentSpec,
    event: &str,
    journal: &mut crate::logging::HookJournal,
    p: HookProgress,
) {
    journal.log(&p);
    if status.hook_progress(&spec.deployment_id, event, &p) {
        crate::notify::status(&status.line());
    }
}
