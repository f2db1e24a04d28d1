//! Runs a list of events for deploy-local and prints what happens, one line per event, and the
//! details of a failure (docs/behaviour/local-cli.md#local-output, plus the script's status and
//! output tail); the outcome is recorded for `status` (`status::local_results`).

use crate::deployspec::DeploymentSpec;
use crate::executor::{EventOutcome, ExecError, Executor};
use crate::state;
use std::io::Write;
use std::time::Instant;

/// How a run of events ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
    /// A script of `events[event]` asked for a reboot (docs/reboot.md).
    Reboot {
        event: usize,
        ask: crate::hooks::RebootAsk,
    },
}

/// Runs `events` in order (the first from its script `start_at`: a resume), printing each
/// and the details of a failure.
pub fn run_events(
    executor: &Executor,
    spec: &DeploymentSpec,
    events: &[String],
    start_at: usize,
) -> RunOutcome {
    let dir = executor.deployment_dir(spec);
    println!(
        "Starting to execute deployment from within folder {}",
        dir.display()
    );
    let mut succeeded = true;
    let mut paused = None;
    let mut outcome = "Succeeded".to_string();
    let started_at = crate::status::unix_now();
    // Progress for `codedeploy-agent status`; None when pid_dir does not exist.
    let status = crate::status::StatusFile::for_local(&executor.config);
    for (i, event) in events.iter().enumerate() {
        let started = Instant::now();
        print!("  {event:<20}");
        let _ = std::io::stdout().flush();
        let from = if i == 0 { start_at } else { 0 };
        let result = run_one(executor, spec, event, from, status.as_ref());
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(EventOutcome::Noop { reason }) => println!(" skipped  {secs:>6.2}s  {reason}"),
            Ok(EventOutcome::Builtin { detail, .. }) => {
                println!(" done     {secs:>6.2}s  {detail}")
            }
            Ok(EventOutcome::Scripts(scripts)) => {
                let names: Vec<String> = scripts
                    .iter()
                    .map(|s| {
                        format!(
                            "{} ({}, {:.2}s)",
                            s.location,
                            s.exit,
                            s.duration.as_secs_f64()
                        )
                    })
                    .collect();
                println!(" done     {secs:>6.2}s  {}", names.join(", "));
            }
            Ok(EventOutcome::Reboot { ask, .. }) => {
                println!(
                    " reboot   {secs:>6.2}s  {} asked for a reboot; the event goes on after it",
                    ask.location
                );
                outcome = format!("Rebooting: {} asked for a reboot in {event}", ask.location);
                paused = Some(RunOutcome::Reboot { event: i, ask });
                break;
            }
            Err(e) => {
                println!(" FAILED   {secs:>6.2}s");
                report_failure(event, &e, &dir);
                let d = e.diagnostics();
                outcome = format!("Failed in {event}: {} {}", d.code.code(), d.message);
                succeeded = false;
                break;
            }
        }
    }
    drop(status);
    crate::status::local_results::record(
        &executor.config.pid_dir,
        &crate::status::local_results::LocalResult {
            deployment_id: spec.deployment_id.clone(),
            group_id: spec.group_id.clone(),
            application: spec.application_name.clone(),
            result: outcome,
            started_at,
            finished_at: crate::status::unix_now(),
            finished_at_ms: crate::status::local_results::unix_now_ms(),
            pid: std::process::id(),
        },
    );
    println!(
        "See the deployment log at {} for more details",
        state::scripts_log(&dir).display()
    );
    match paused {
        Some(p) => p,
        None if succeeded => RunOutcome::Succeeded,
        None => RunOutcome::Failed,
    }
}

/// Runs one event, reporting its scripts to the status file.
fn run_one(
    executor: &Executor,
    spec: &DeploymentSpec,
    event: &str,
    start_at: usize,
    status: Option<&crate::status::StatusFile>,
) -> Result<EventOutcome, ExecError> {
    let (id, group) = (spec.deployment_id.as_str(), spec.group_id.as_str());
    let Some(status) = status else {
        return executor.execute_from(event, spec, start_at, None, &mut |_| {});
    };
    status.command_started("local", id, group, event);
    let result = executor.execute_from(event, spec, start_at, None, &mut |p| {
        status.hook_progress(id, event, &p);
    });
    let failure = result.as_ref().err().map(ExecError::diagnostics);
    status.event_finished("local", id, group, event, failure.as_ref());
    result
}

fn report_failure(event: &str, e: &ExecError, dir: &std::path::Path) {
    let d = e.diagnostics();
    println!("Deployment failed in event {event}: {}", d.message);
    println!("  error code: {} ({})", d.code.code(), d.code.name());
    if !d.script_name.is_empty() {
        println!("  script: {}", d.script_name);
        if !d.log.is_empty() {
            println!("  last output:");
            for line in d.log.lines() {
                println!("    {line}");
            }
        }
        println!(
            "Your local deployment failed while trying to execute your script at {}",
            state::archive_dir(dir).join(&d.script_name).display()
        );
    }
}
