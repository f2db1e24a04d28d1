//! The local deployment driver (`deploy-local`, the official `codedeploy-local`): checks the
//! arguments (docs/behaviour/local-cli.md#local-argument-checks), builds a deployment spec
//! (docs/behaviour/local-cli.md#local-deployment), and runs each event through the same executor
//! the daemon uses, printing one line per event.
//!
//! Invariants: no service calls and no tracking files; the on-disk state under root_dir is
//! exactly what a service deployment of the same group would leave; the deployment group is
//! held (its cross-process lock, see `crate::group`) from before the previous revision is
//! read until the run, rollback included, is over.

pub mod location;
mod output;
mod progress;
mod remote;

use crate::appspec::FileExistsBehavior;
use crate::cli::DeployLocalArgs;
use crate::config::{self, Config};
use crate::deployspec::{BundleType, DeploymentSpec, Revision};
use crate::executor::Executor;
use crate::lifecycle::{self, Creator, DeploymentType};
use crate::reboot::{LocalRun, Resume};
use crate::state;
use location::Location;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Location(#[from] location::LocationError),
    #[error(transparent)]
    Events(#[from] lifecycle::EventListError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Lock(#[from] state::lock::LockError),
    /// The S3/GitHub downloader could not be built.
    #[error(transparent)]
    Transfer(Box<crate::transfer::TransferError>),
}

impl From<crate::transfer::TransferError> for LocalError {
    fn from(e: crate::transfer::TransferError) -> Self {
        Self::Transfer(Box::new(e))
    }
}

fn usage<T>(m: String) -> Result<T, LocalError> {
    Err(LocalError::Usage(m))
}

/// `d-` + 9 characters from A-Z0-9 + `-local`, as the official tool names local deployments.
fn new_deployment_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // The agent's one random source (`crate::random`), seeded from the kernel.
    let id: String = (0..9)
        .map(|_| ALPHABET[crate::random::index(ALPHABET.len())] as char)
        .collect();
    format!("d-{id}-local")
}

/// Checks the arguments against the file system and builds the revision
/// (docs/behaviour/local-cli.md#local-argument-checks).
fn revision_for(
    args: &DeployLocalArgs,
    kind: BundleType,
) -> Result<(Revision, String), LocalError> {
    let raw = match &args.bundle_location {
        Some(l) => l.clone(),
        None => std::env::current_dir()
            .map_err(|e| LocalError::Usage(format!("cannot read the current directory: {e}")))?
            .display()
            .to_string(),
    };
    match location::parse(&raw)? {
        Location::S3 {
            bucket,
            key,
            version,
            etag,
        } => {
            if kind == BundleType::Directory {
                return usage(format!("location {raw} is an S3 object: give its bundle type with --type tar, tgz or zip"));
            }
            Ok((
                Revision::S3 {
                    bucket,
                    key,
                    bundle_type: kind,
                    version,
                    etag,
                },
                raw,
            ))
        }
        Location::GitHub {
            account,
            repository,
            commit,
        } => Ok((
            Revision::GitHub {
                account,
                repository,
                commit,
                bundle_type: if kind == BundleType::Tar {
                    BundleType::Tar
                } else {
                    BundleType::Zip
                },
            },
            raw,
        )),
        Location::Local(path) => {
            let abs = std::path::absolute(&path).map_err(|e| {
                LocalError::Usage(format!("location {raw} cannot be resolved: {e}"))
            })?;
            let meta = std::fs::metadata(&abs).map_err(|_| {
                LocalError::Usage(format!(
                    "location {raw} is specified as a file or directory which does not exist"
                ))
            })?;
            if kind == BundleType::Directory && !meta.is_dir() {
                return usage(format!(
                    "location {raw} is specified with type directory but it is a file"
                ));
            }
            if kind != BundleType::Directory && meta.is_dir() {
                return usage(format!(
                    "location {raw} is specified as a compressed local file but it is a directory"
                ));
            }
            let location = abs.display().to_string();
            if kind == BundleType::Directory {
                check_local_appspec(&raw, &abs, args.appspec_filename.as_deref())?;
                return Ok((Revision::LocalDirectory { location }, raw));
            }
            Ok((
                Revision::LocalFile {
                    location,
                    bundle_type: kind,
                },
                raw,
            ))
        }
    }
}

/// The directory bundle must hold its appspec, found as every step finds it (a link leading
/// out of the revision is refused here already, naming the link, without opening it).
fn check_local_appspec(raw: &str, dir: &Path, custom: Option<&str>) -> Result<(), LocalError> {
    let missing = match crate::appspec::find_appspec(dir, custom) {
        Ok(_) => false,
        Err(crate::appspec::AppSpecLocateError::NotFound { .. }) => true,
        Err(refused) => return usage(refused.to_string()),
    };
    match custom {
        _ if !missing => Ok(()),
        Some(name) => usage(format!(
            "Expecting appspec file at location {raw}/{name} but it is not found there. Please either run the CLI from within a directory containing the {name} file or specify a bundle location containing an {name} file in its root directory"
        )),
        None => usage(format!(
            "Expecting appspec file at location {raw}/appspec.yml or {raw}/appspec.yaml but it is not found there. Please either run the CLI from within a directory containing the appspec.yml or appspec.yaml file or specify a bundle location containing an appspec.yml or appspec.yaml file in its root directory"
        )),
    }
}

/// What the arguments ask for, checked against the file system before the configuration is
/// read (so a wrong argument is reported first, whatever the configuration).
#[derive(Debug, Clone)]
pub struct Request {
    behavior: FileExistsBehavior,
    /// The events named by --events, as given (None: all).
    given: Option<Vec<String>>,
    /// The events to run, in order.
    events: Vec<String>,
    revision: Revision,
    /// The bundle location as given (or the current directory).
    raw_location: String,
}

/// Checks the arguments (docs/behaviour/local-cli.md#local-argument-checks).
pub fn check_args(args: &DeployLocalArgs) -> Result<Request, LocalError> {
    let kind = location::parse_type(&args.bundle_type)?;
    let behavior = FileExistsBehavior::parse(&args.file_exists_behavior.to_uppercase())
        .ok_or_else(|| {
            LocalError::Usage(format!(
                "file-exists-behavior {} is not one of DISALLOW, OVERWRITE, RETAIN",
                args.file_exists_behavior
            ))
        })?;
    let given: Option<Vec<String>> = args.events.as_ref().map(|e| {
        e.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let events = lifecycle::local_events(given.as_deref(), args.events.as_deref().unwrap_or(""))?;
    let (revision, raw_location) = revision_for(args, kind)?;
    Ok(Request {
        behavior,
        given,
        events,
        revision,
        raw_location,
    })
}

/// Runs a local deployment of `request` with configuration `cfg`. `Ok(true)` on success,
/// `Ok(false)` when an event failed (the details are already printed), `Err` for arguments
/// or configuration that are wrong.
pub fn deploy(args: &DeployLocalArgs, request: Request, cfg: Config) -> Result<bool, LocalError> {
    let Request {
        behavior,
        given,
        events,
        revision,
        raw_location,
    } = request;
    let mut executor = Executor::new(cfg, nix::unistd::geteuid().is_root());
    // Progress of long steps goes to the user's terminal (or plain lines), besides the log.
    executor
        .progress
        .push(std::sync::Arc::from(progress::for_stderr()));
    if matches!(revision, Revision::S3 { .. } | Revision::GitHub { .. }) {
        executor.remote = Some(std::sync::Arc::new(remote::fetcher(
            &executor.config,
            &revision,
        )?));
    }
    let spec = DeploymentSpec {
        deployment_id: new_deployment_id(),
        group_id: args.deployment_group.clone(),
        group_name: args.deployment_group_name.clone(),
        application_name: args.application_name.clone().unwrap_or(raw_location),
        creator: Creator::User,
        deployment_type: DeploymentType::InPlace,
        appspec_filename: args.appspec_filename.clone(),
        file_exists_behavior: Some(behavior),
        all_possible_events: Some(lifecycle::all_possible_events(
            given.as_deref().unwrap_or(&[]),
        )),
        github_token: None,
        revision,
    };
    if !crate::names::usable_as_dir_name(&spec.group_id) {
        return usage(format!(
            "deployment group {:?} cannot be used as a directory name",
            spec.group_id
        ));
    }
    let _group = take_group(&executor, &spec, args.lock_wait)?;
    let previous = state::read_pointer(&executor.layout.last_successful_install(&spec.group_id))?;
    // Argument and configuration handling is done; its code need not stay resident.
    crate::memory::release_startup_pages();
    let rest = LocalRun {
        events_after: Vec::new(),
        rollback_on_failure: args.rollback_on_failure,
        previous_revision: previous.map(|p| p.display().to_string()),
    };
    Ok(run_and_conclude(&executor, &spec, &events, 0, rest))
}

/// Runs `events` (the first from script `start_at`) and concludes: success, rollback after
/// a failure when asked, or the reboot a script asked for. True on success.
fn run_and_conclude(
    executor: &Executor,
    spec: &DeploymentSpec,
    events: &[String],
    start_at: usize,
    mut rest: LocalRun,
) -> bool {
    match output::run_events(executor, spec, events, start_at) {
        output::RunOutcome::Succeeded => {
            println!("AppSpec file valid. Local deployment successful");
            true
        }
        output::RunOutcome::Failed => {
            if rest.rollback_on_failure {
                let previous = rest.previous_revision.as_deref().map(Path::new);
                rollback(executor, spec, previous);
            }
            false
        }
        output::RunOutcome::Reboot { event, ask } => {
            rest.events_after = events[event + 1..].to_vec();
            reboot(executor, spec, &events[event], &ask, rest)
        }
    }
}

/// How long `deploy-local` waits for the reboot it started before it gives up waiting (the
/// deployment stays paused; `--resume` continues it).
const REBOOT_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Records where the run stands (durably), runs `reboot_command` and waits for the reboot
/// (docs/reboot.md). False when the reboot could not be started (the record is removed: the
/// deployment failed) or did not come.
fn reboot(
    executor: &Executor,
    spec: &DeploymentSpec,
    event: &str,
    ask: &crate::hooks::RebootAsk,
    rest: LocalRun,
) -> bool {
    let written =
        crate::resume::new_record(&executor.layout, spec, event, ask).and_then(|mut r| {
            r.local = Some(rest);
            crate::resume::write(&executor.layout, &r)
        });
    let record = match written {
        Ok(p) => p,
        Err(e) => {
            println!(
                "{} asked for a reboot, but where the deployment stands cannot be recorded: {e}",
                ask.location
            );
            return false;
        }
    };
    println!(
        "{} asked for a reboot: recorded in {}; after the reboot, `codedeploy-agent deploy-local --resume` continues the deployment at script {} of {event}",
        ask.location,
        record.display(),
        ask.next_script + 1
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if let Err(e) = crate::resume::run_reboot_command(&executor.config.reboot_command) {
        println!("The reboot could not be started: {e}; the deployment failed");
        if let Err(e) = crate::resume::remove(&record) {
            println!("{e}");
        }
        return false;
    }
    println!(
        "Rebooting; waiting up to {} s for it",
        REBOOT_WAIT.as_secs()
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::thread::sleep(REBOOT_WAIT);
    println!(
        "The host did not reboot within {} s; the deployment stays paused (`deploy-local --resume` continues it)",
        REBOOT_WAIT.as_secs()
    );
    false
}

/// `deploy-local --resume`: continues every local deployment a reboot paused under the
/// deployment root (docs/reboot.md). True when each resumed deployment succeeded, or there
/// was none, or a record was dropped (stale or superseded: nothing to do).
pub fn resume(args: &DeployLocalArgs, cfg: Config) -> Result<bool, LocalError> {
    let mut executor = Executor::new(cfg, nix::unistd::geteuid().is_root());
    let mut all_ok = true;
    let mut any = false;
    for found in crate::resume::find_all(&executor.layout) {
        let record = match found.record {
            Ok(r) if r.local.is_none() => continue,
            Ok(r) => r,
            Err(e) => {
                println!(
                    "Cannot resume from {}: {e}; removing it",
                    found.path.display()
                );
                crate::resume::remove(&found.path)?;
                continue;
            }
        };
        any = true;
        let spec = match crate::resume::spec_of(&found.path, &record) {
            Ok(s) => s,
            Err(e) => {
                println!("Cannot resume: {e}; removing it");
                crate::resume::remove(&found.path)?;
                continue;
            }
        };
        if matches!(spec.revision, Revision::S3 { .. } | Revision::GitHub { .. }) {
            executor.remote = Some(std::sync::Arc::new(remote::fetcher(
                &executor.config,
                &spec.revision,
            )?));
        }
        let _group = take_group(&executor, &spec, args.lock_wait)?;
        let start_at = match crate::resume::decide(&executor, &record, &spec, None) {
            Resume::Drop(reason) => {
                println!(
                    "Not resuming deployment {} of group {}: {reason}",
                    record.deployment_id, record.group_id
                );
                crate::resume::remove(&found.path)?;
                continue;
            }
            Resume::FinishEvent | Resume::RunFrom(_) => record.next_script,
        };
        println!(
            "Resuming deployment {} of group {} after the reboot: {} at script {} (after {})",
            record.deployment_id,
            record.group_id,
            record.event,
            start_at + 1,
            record.requested_by
        );
        // Removed before anything runs: a request is never resumed twice.
        crate::resume::remove(&found.path)?;
        let rest = record.local.clone().unwrap_or(LocalRun {
            events_after: Vec::new(),
            rollback_on_failure: false,
            previous_revision: None,
        });
        let mut events = vec![record.event.clone()];
        events.extend(rest.events_after.iter().cloned());
        all_ok &= run_and_conclude(&executor, &spec, &events, start_at, rest);
    }
    if !any {
        println!(
            "No local deployment is paused for a reboot under {}",
            executor.layout.root().display()
        );
    }
    Ok(all_ok)
}

/// Takes the deployment group for this whole run, waiting (and saying so) while another
/// deployment holds it.
fn take_group(
    executor: &Executor,
    spec: &DeploymentSpec,
    flag: Option<u64>,
) -> Result<state::lock::GroupLock, LocalError> {
    let wait = std::time::Duration::from_secs(
        flag.unwrap_or(executor.config.deploy_local_lock_wait_seconds),
    );
    let holder = state::lock::Holder::me(&spec.deployment_id, "deploy-local");
    let started = std::time::Instant::now();
    let mut waited = false;
    let mut on_busy = |h: &str| {
        if !wait.is_zero() {
            eprintln!(
                "Deployment group {} is busy: held by {h}. Waiting up to {} s for it (--lock-wait).",
                spec.group_id,
                wait.as_secs()
            );
            waited = true;
        }
    };
    let lock = crate::group::take(executor, &spec.group_id, &holder, wait, &mut on_busy)?;
    if waited {
        eprintln!(
            "Deployment group {} is free after {:.1} s; deploying.",
            spec.group_id,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(lock)
}

/// Redeploys the group's last successful revision from before the failed deployment,
/// running its hooks from ApplicationStop on, and reports the outcome.
fn rollback(executor: &Executor, failed: &DeploymentSpec, previous: Option<&Path>) {
    let Some(prev) = previous.filter(|p| state::archive_dir(p).is_dir()) else {
        println!("Rollback: no earlier successful revision of group {} is recorded; nothing to roll back to", failed.group_id);
        return;
    };
    let spec = DeploymentSpec {
        deployment_id: new_deployment_id(),
        creator: Creator::Rollback,
        all_possible_events: Some(lifecycle::all_possible_events(&[])),
        revision: Revision::LocalDirectory {
            location: state::archive_dir(prev).display().to_string(),
        },
        ..failed.clone()
    };
    println!(
        "Rolling back: redeploying the revision of {} as {}",
        prev.display(),
        spec.deployment_id
    );
    let events: Vec<String> = lifecycle::CANONICAL_EVENTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let outcome =
        if output::run_events(executor, &spec, &events, 0) == output::RunOutcome::Succeeded {
            "succeeded"
        } else {
            "failed"
        };
    println!("Rollback deployment {} {outcome}", spec.deployment_id);
}
