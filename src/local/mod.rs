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

use crate::appspec::FileExistsBehavior;
use crate::cli::DeployLocalArgs;
use crate::config::{self, Config};
use crate::deployspec::{BundleType, DeploymentSpec, Revision};
use crate::executor::Executor;
use crate::lifecycle::{self, Creator, DeploymentType};
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
    if matches!(revision, Revision::S3 { .. } | Revision::GitHub { .. }) {
        executor.remote = Some(std::sync::Arc::new(local_fetcher(
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
    if spec.group_id.is_empty()
        || spec.group_id.contains('/')
        || spec.group_id == "."
        || spec.group_id == ".."
    {
        return usage(format!(
            "deployment group {:?} cannot be used as a directory name",
            spec.group_id
        ));
    }
    let _group = take_group(&executor, &spec, args.lock_wait)?;
    let previous = state::read_pointer(&executor.layout.last_successful_install(&spec.group_id))?;
    // Argument and configuration handling is done; its code need not stay resident.
    crate::memory::release_startup_pages();
    if output::run_events(&executor, &spec, &events) {
        println!("AppSpec file valid. Local deployment successful");
        return Ok(true);
    }
    if args.rollback_on_failure {
        rollback(&executor, &spec, previous.as_deref());
    }
    Ok(false)
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
    let outcome = if output::run_events(executor, &spec, &events) {
        "succeeded"
    } else {
        "failed"
    };
    println!("Rollback deployment {} {outcome}", spec.deployment_id);
}

/// The downloader for S3 and GitHub locations of a local run. Credentials come from the
/// on-premises file when it names them, else from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
/// (and AWS_SESSION_TOKEN); the region from AWS_REGION, else the on-premises file.
fn local_fetcher(
    cfg: &Config,
    revision: &Revision,
) -> Result<crate::transfer::Fetcher, LocalError> {
    use crate::config::onprem::OnPremises;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let github = crate::transfer::GitHubSettings {
        api_base: cfg.github_api_endpoint.clone(),
        token: std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()),
        // As the daemon (and the official agent): GitHub follows the environment only.
        proxy: Default::default(),
    };
    let s3 = if matches!(revision, Revision::S3 { .. }) {
        let onprem = config::onprem::load(&cfg.on_premises_config_file)?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (credentials, onprem_region) = match onprem {
            Some(OnPremises::IamUser { region, access_key_id, secret_access_key, .. }) => (
                SharedCredentialsProvider::new(crate::control::static_credentials(&access_key_id, &secret_access_key)),
                Some(region),
            ),
            Some(OnPremises::IamSession { region, credentials_file, .. }) => (
                SharedCredentialsProvider::new(crate::control::SessionFileCredentials::new(credentials_file)),
                Some(region),
            ),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (
                    SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
                        id,
                        secret,
                        env("AWS_SESSION_TOKEN"),
                        None,
                        "environment",
                    )),
                    None,
                ),
                _ => return usage("We were unable to download content from the Amazon S3 bucket due to missing or invalid credentials. For information about specifying your AWS credentials, see https://aws.amazon.com/blogs/security/a-new-and-standardized-way-to-manage-credentials-in-the-aws-sdks".into()),
            },
        };
        let Some(region) = env("AWS_REGION").or(onprem_region) else {
            return usage("an S3 bundle location needs a region: set AWS_REGION".into());
        };
        Some(crate::transfer::S3Settings {
            region,
            endpoint_override: cfg.s3_endpoint_override.clone(),
            use_fips: cfg.use_fips_mode,
            proxy: cfg.s3_proxy(),
            credentials,
        })
    } else {
        None
    };
    let tuning = crate::transfer::Tuning::from_config(cfg);
    crate::transfer::Fetcher::with_tuning(s3, github, None, tuning)
        .map_err(|e| LocalError::Usage(e.to_string()))
}
