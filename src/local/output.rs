//! Runs a list of events for deploy-local and prints what happens, one line per event, and the
//! details of a failure (docs/behaviour/local-cli.md#local-output, plus the script's status and
//! output tail); the outcome is recorded for `status` (`status::local_results`).

use crate::deployspec::DeploymentSpec;
use crate::executor::{EventOutcome, ExecError, Executor};
use crate::state;
use std::io::Write;
use std::time::Instant;

/// Runs `events` in order, printing each and the details of a failure; true when all
/// succeeded.
pub fn run_events(executor: &Executor, spec: &DeploymentSpec, events: &[String]) -> bool {
    let dir = executor.deployment_dir(spec);
    println!(
        "Starting to execute deployment from within folder {}",
        dir.display()
    );
    let mut succeeded = true;
    let mut outcome = "Succeeded".to_string();
    let started_at = crate::status::unix_now();
    // Progress for `codedeploy-agent status`; None when pid_dir does not exist.
    let status = crate::status::StatusFile::for_local(&executor.config);
    for event in events {
        let started = Instant::now();
        print!("  {event:<20}");
        let _ = std::io::stdout().flush();
        let result = run_one(executor, spec, event, status.as_ref());
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
    succeeded
}

/// Runs one event, reporting its scripts to the status file.
fn run_one(
    executor: &Executor,
    spec: &DeploymentSpec,
    event: &str,
    status: Option<&crate::status::StatusFile>,
) -> Result<EventOutcome, ExecError> {
    let (id, group) = (spec.deployment_id.as_str(), spec.group_id.as_str());
    let Some(status) = status else {
        return executor.execute(event, spec, &mut |_| {});
    };
    status.command_started("local", id, group, event);
    let result = executor.execute(event, spec, &mut |p| {
        if let crate::hooks::HookProgress::ScriptStarted {
            location,
            index,
            count,
            timeout_secs,
        } = &p
        {
            let start = crate::status::ScriptStart {
                script: location,
                index: u32::try_from(*index).unwrap_or(u32::MAX),
                count: u32::try_from(*count).unwrap_or(u32::MAX),
                timeout: *timeout_secs,
            };
            status.script_progress(id, event, &start);
        }
    });
    let outcome = match &result {
        Ok(_) => "Succeeded".to_string(),
        Err(e) => format!("Failed: {} {}", e.code().code(), e.diagnostics().message),
    };
    status.command_finished("local", id, group, event, &outcome);
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
