//! The command executor: one code path for DownloadBundle, Install and every hook event, shared by
//! `deploy-local` and the daemon (docs/behaviour/commands.md#commands,
//! docs/behaviour/bundles.md#bundle-download, docs/behaviour/install.md#install,
//! docs/behaviour/hooks.md#hook-execution).
//!
//! Invariants: every command first makes sure `<root>/<group>/<deployment>` exists; pointer
//! files change only after their step succeeded (most-recent after DownloadBundle, last
//! successful after Install); which revision an event reads is decided by
//! `lifecycle::revision_for` alone.

use crate::appspec::{self, AppSpec};
use crate::config::Config;
use crate::deployspec::{DeploymentSpec, Revision};
use crate::diagnostics::{Diagnostics, ErrorCode};
use crate::lifecycle::{self, RevisionFacts};
use crate::meter::{Job, LogSink, Meter, ProgressSink};
use crate::state::{self, Layout, StateError};
use crate::{bundle, hooks, install, revisions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What running one command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Nothing to run: no revision recorded, or no scripts for the event.
    Noop { reason: String },
    /// DownloadBundle or Install finished; `bundle_bytes` is the unpacked size of the bundle
    /// DownloadBundle fetched (for the fleet metrics), None for Install.
    Builtin {
        detail: String,
        bundle_bytes: Option<u64>,
    },
    /// Hook scripts ran, in order.
    Scripts(Vec<hooks::ScriptReport>),
    /// Scripts ran until one asked for a reboot (docs/reboot.md); the rest of the event runs
    /// after it, from `ask.next_script`.
    Reboot {
        scripts: Vec<hooks::ScriptReport>,
        ask: hooks::RebootAsk,
    },
}

/// The appspec one command read, with the revision it was read from and its file name. The
/// noop check hands it to the execution, so a command reads its appspec once.
#[derive(Debug, Clone)]
pub struct ReadAppSpec {
    rev_dir: PathBuf,
    /// The file name found (`-A` name, `appspec.yml` or `appspec.yaml`), for messages.
    name: String,
    spec: AppSpec,
}

impl ReadAppSpec {
    /// PURE: the read, when it is of the revision in `rev_dir` (the execution chose the same
    /// revision as the noop check); else it must be read again.
    fn of_revision(self, rev_dir: &Path) -> Option<Self> {
        (self.rev_dir == rev_dir).then_some(self)
    }
}

/// Why a command failed. Each variant keeps its cause typed (`#[source]`); the text the
/// service and `deploy-local` show is made from it only at the edge, by [`Self::diagnostics`].
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("Unsupported command type: {0}.")]
    UnsupportedCommand(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    Install(#[from] install::InstallError),
    /// The appspec was refused without being opened (a link out of the revision, not a
    /// regular file).
    #[error(transparent)]
    AppSpecLocate(#[from] appspec::AppSpecLocateError),
    /// No appspec at the expected place; the official message.
    #[error("The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path \"{rel}\". The revision was unpacked to directory \"{}\", and the AppSpec file was expected but not found at path \"{}\". Consult the AWS CodeDeploy Appspec documentation for more information at http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html", .archive.display(), .archive.join(.rel).display())]
    AppSpecMissing { rel: String, archive: PathBuf },
    #[error(transparent)]
    AppSpecInvalid(#[from] appspec::AppSpecErrors),
    /// The appspec names events the service did not list.
    #[error("{appspec_name} file contains unknown lifecycle events: {unknown:?}")]
    UnknownEvents {
        appspec_name: String,
        unknown: Vec<String>,
    },
    /// The service lists custom events the appspec has no hooks for.
    #[error("You specified a lifecycle event which is not a default one and doesn't exist in your {appspec_name} file: {}", .missing.join(","))]
    MissingCustomEvents {
        appspec_name: String,
        missing: Vec<String>,
    },
    #[error("this command cannot download S3 or GitHub revisions (no transfer client configured)")]
    NoRemote,
    /// The S3 or GitHub download failed; the fetcher's own error, unchanged.
    #[error(transparent)]
    Download(#[from] FetchError),
    /// Copying a local bundle file beside the revision would go below the free-space reserve.
    #[error("copying {} to {}: {space}", .from.display(), .to.display())]
    BundleCopySpace {
        from: PathBuf,
        to: PathBuf,
        #[source]
        space: Box<crate::space::NoSpace>,
    },
    /// DownloadBundle failed and removing what it wrote failed too.
    #[error("{error}; cleaning up after it failed too: {}", join_states(.left))]
    CleanupFailed {
        #[source]
        error: Box<ExecError>,
        left: Vec<StateError>,
    },
    #[error("{}", .0.message)]
    Hook(hooks::HookFailure),
}

fn join_states(left: &[StateError]) -> String {
    left.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ExecError {
    /// The report the service receives for this failure.
    pub fn diagnostics(&self) -> Diagnostics {
        match self {
            Self::Hook(f) => Diagnostics {
                code: f.code,
                script_name: f.script_name.clone(),
                message: f.message.clone(),
                log: f.log_tail.clone(),
            },
            other => Diagnostics::unknown(other.to_string()),
        }
    }
    pub fn code(&self) -> ErrorCode {
        self.diagnostics().code
    }
}

/// Runs commands against one deployment root.
#[derive(Clone)]
pub struct Executor {
    pub config: Config,
    pub layout: Layout,
    /// Running as root: tar ownership is restored unless the config says otherwise.
    pub is_root: bool,
    /// Downloads S3 and GitHub revisions; None where only local revisions can run.
    pub remote: Option<Arc<dyn RemoteFetch>>,
    /// Set when the agent stops for good: a running hook is ended and reported failed.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Where progress of large downloads and installs goes (the log by default; the daemon
    /// adds its status file, deploy-local its terminal).
    pub progress: Vec<Arc<dyn ProgressSink>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("root", &self.layout.root())
            .field("is_root", &self.is_root)
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

/// Why a revision that lives elsewhere could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Transfer(Box<crate::transfer::TransferError>),
    /// The downloader could not be built (client, TLS, proxy set-up). The one failure is kept
    /// and shared: every later download fails with it.
    #[error(transparent)]
    Setup(Arc<crate::transfer::TransferError>),
}

impl From<crate::transfer::TransferError> for FetchError {
    fn from(e: crate::transfer::TransferError) -> Self {
        Self::Transfer(Box::new(e))
    }
}

/// Fetches a revision that lives elsewhere (S3, GitHub) into a deployment directory,
/// unpacked into its archive directory. Blocking: the executor runs on a blocking thread.
pub trait RemoteFetch: Send + Sync {
    fn fetch(
        &self,
        spec: &DeploymentSpec,
        deployment_dir: &Path,
        opts: &bundle::UnpackOptions,
        meter: Option<&Meter>,
    ) -> Result<bundle::UnpackReport, FetchError>;
}

impl Executor {
    pub fn new(config: Config, is_root: bool) -> Self {
        let layout = Layout::new(config.root_dir.clone());
        Self {
            config,
            layout,
            is_root,
            remote: None,
            cancel: None,
            progress: vec![Arc::new(LogSink)],
        }
    }

    /// A meter for one long step of `spec`'s deployment, reporting to [`Self::progress`].
    fn meter(&self, spec: &DeploymentSpec, event: lifecycle::Event, what: String) -> Meter {
        let job = Job {
            deployment_id: spec.deployment_id.clone(),
            event: event.name().to_string(),
            what,
        };
        Meter::new(job, crate::meter::rule_from_env(), self.progress.clone())
    }

    pub fn deployment_dir(&self, spec: &DeploymentSpec) -> PathBuf {
        self.layout
            .deployment_dir(&spec.group_id, &spec.deployment_id)
    }

    fn supports(&self, command: &str, spec: &DeploymentSpec) -> bool {
        lifecycle::is_canonical(command)
            || spec.all_possible_events.as_ref().is_some_and(|all| {
                all.iter().any(|e| e == command) && lifecycle::is_pascal_case(command)
            })
    }

    /// Runs one command; `observer` hears about each script as it starts and ends. `read` is
    /// the appspec the command's noop check read ([`Self::is_noop`]), if any.
    pub fn execute(
        &self,
        command: &str,
        spec: &DeploymentSpec,
        read: Option<ReadAppSpec>,
        observer: &mut dyn FnMut(hooks::HookProgress),
    ) -> Result<EventOutcome, ExecError> {
        self.execute_from(command, spec, 0, read, observer)
    }

    /// [`Self::execute`] from the event's script `start_at` (from 0): a resume after a
    /// reboot. For DownloadBundle and Install `start_at` means nothing (they have no scripts).
    pub fn execute_from(
        &self,
        command: &str,
        spec: &DeploymentSpec,
        start_at: usize,
        read: Option<ReadAppSpec>,
        observer: &mut dyn FnMut(hooks::HookProgress),
    ) -> Result<EventOutcome, ExecError> {
        if !self.supports(command, spec) {
            return Err(ExecError::UnsupportedCommand(command.to_string()));
        }
        let dir = self.deployment_dir(spec);
        std::fs::create_dir_all(&dir)
            .map_err(|e| StateError::new("create deployment directory", &dir, e))?;
        match lifecycle::Event::from_name(command) {
            Some(lifecycle::Event::DownloadBundle) => self.download_bundle(spec, &dir),
            Some(lifecycle::Event::Install) => self.install(spec, &dir),
            _ => self.run_hooks(command, spec, &dir, start_at, read, observer),
        }
    }

    /// How many scripts `event` has in the appspec it would run from; 0 when none or no
    /// revision applies. For a resume's decision (`crate::reboot::decide`).
    pub fn scripts_in_event(&self, event: &str, spec: &DeploymentSpec) -> Result<usize, ExecError> {
        let dir = self.deployment_dir(spec);
        let Some(rev_dir) = self.select_revision(event, spec, &dir)? else {
            return Ok(0);
        };
        let appspec = self.read_appspec(&rev_dir, spec)?;
        Ok(appspec.spec.hooks.get(event).map_or(0, |s| s.len()))
    }

    /// Whether a command would do nothing (docs/behaviour/commands.md#noop-rules), for the
    /// acknowledgement; with the appspec read to decide it, for [`Self::execute`].
    pub fn is_noop(
        &self,
        command: &str,
        spec: &DeploymentSpec,
    ) -> Result<(bool, Option<ReadAppSpec>), ExecError> {
        if lifecycle::is_reserved(command) {
            return Ok((false, None));
        }
        if !self.supports(command, spec) {
            return Ok((true, None));
        }
        let dir = self.deployment_dir(spec);
        Ok(match self.select_revision(command, spec, &dir)? {
            None => (true, None),
            Some(rev_dir) => {
                let read = self.read_appspec(&rev_dir, spec)?;
                let noop = read.spec.hooks.get(command).is_none_or(|s| s.is_empty());
                (noop, Some(read))
            }
        })
    }

    fn download_bundle(
        &self,
        spec: &DeploymentSpec,
        dir: &Path,
    ) -> Result<EventOutcome, ExecError> {
        let group = &spec.group_id;
        revisions::prune_old_revisions(&self.layout, group, dir, self.config.max_revisions)?;
        let archive = state::archive_dir(dir);
        let opts = bundle::UnpackOptions::from_config(&self.config, self.is_root);
        // As the official agent: the archive dir is replaced, never merged into.
        if let Some(e) = revisions::clear_download(dir).into_iter().next() {
            return Err(e.into());
        }
        let report = match self.fetch_revision(spec, dir, &archive, &opts) {
            Ok(r) => r,
            Err(e) => return Err(undo_download(dir, e)),
        };
        std::fs::create_dir_all(self.layout.instructions_dir())
            .map_err(|e| StateError::new("create directory", &self.layout.instructions_dir(), e))?;
        state::write_pointer(&self.layout.most_recent_install(group), dir)?;
        Ok(EventOutcome::Builtin {
            bundle_bytes: Some(report.bytes),
            detail: format!(
                "{} files, {} bytes{}",
                report.files,
                report.bytes,
                report
                    .stripped_top_level
                    .map(|d| format!(", top-level directory {d}/ stripped"))
                    .unwrap_or_default()
            ),
        })
    }

    /// Puts the revision into `archive`; `bundle.tar` beside it is a link to a local file
    /// bundle, or a copy of a downloaded one when `keep_bundle_archive` asks for it.
    fn fetch_revision(
        &self,
        spec: &DeploymentSpec,
        dir: &Path,
        archive: &Path,
        opts: &bundle::UnpackOptions,
    ) -> Result<bundle::UnpackReport, ExecError> {
        Ok(match &spec.revision {
            Revision::LocalDirectory { location } => {
                bundle::copy_directory_bundle(Path::new(location), archive, opts)?
            }
            Revision::LocalFile {
                location,
                bundle_type,
            } => {
                let bundle_path = state::bundle_file(dir);
                let from = if link_or_copy_bundle(
                    Path::new(location),
                    &bundle_path,
                    self.config.keep_bundle_archive,
                    opts,
                )? {
                    bundle_path
                } else {
                    PathBuf::from(location)
                };
                let meter = self.meter(
                    spec,
                    lifecycle::Event::DownloadBundle,
                    format!("unpacking {location}"),
                );
                let unpacked =
                    bundle::unpack_file_counted(&from, *bundle_type, archive, opts, &meter);
                meter.finish();
                unpacked?
            }
            Revision::S3 { .. } | Revision::GitHub { .. } => {
                let Some(remote) = &self.remote else {
                    return Err(ExecError::NoRemote);
                };
                let meter = self.meter(
                    spec,
                    lifecycle::Event::DownloadBundle,
                    format!("downloading {}", revision_name(&spec.revision)),
                );
                let fetched = remote.fetch(spec, dir, opts, Some(&meter));
                meter.finish();
                fetched.map_err(ExecError::Download)?
            }
        })
    }

    fn install(&self, spec: &DeploymentSpec, dir: &Path) -> Result<EventOutcome, ExecError> {
        let ReadAppSpec {
            name,
            spec: appspec,
            ..
        } = self.read_appspec(dir, spec)?;
        check_events_against_spec(&appspec, spec, &name)?;
        let meter = self.meter(spec, lifecycle::Event::Install, "installing".into());
        let report = install::install(
            &self.layout,
            &spec.group_id,
            dir,
            &appspec,
            spec.file_exists_behavior,
            &install::InstallOptions {
                reserve: Some(self.config.free_space_reserve),
                appspec_name: spec.appspec_filename.clone(),
                progress: Some(meter.clone()),
                hard_link: self.config.install_by_hard_link,
                ..install::InstallOptions::default()
            },
        );
        meter.finish();
        let report = report?;
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
        Ok(EventOutcome::Builtin {
            bundle_bytes: None,
            detail: format!(
                "{} files copied, {} directories created, {} permissions set, {} files of the previous revision removed",
                report.files_copied, report.dirs_created, report.permissions_set, report.previous_removals
            ),
        })
    }

    fn select_revision(
        &self,
        event: &str,
        spec: &DeploymentSpec,
        dir: &Path,
    ) -> Result<Option<PathBuf>, ExecError> {
        let last = state::read_pointer(&self.layout.last_successful_install(&spec.group_id))?;
        let recent = state::read_pointer(&self.layout.most_recent_install(&spec.group_id))?;
        let facts = RevisionFacts {
            current: dir,
            current_archive_exists: state::archive_dir(dir).is_dir(),
            last_successful: last.as_deref(),
            most_recent: recent.as_deref(),
        };
        Ok(
            lifecycle::revision_for(event, spec.deployment_type, spec.creator, facts)
                .map(Path::to_path_buf),
        )
    }

    /// The appspec of the revision in `rev_dir`, with the official message when it is missing.
    fn read_appspec(
        &self,
        rev_dir: &Path,
        spec: &DeploymentSpec,
    ) -> Result<ReadAppSpec, ExecError> {
        let archive = state::archive_dir(rev_dir);
        let path =
            appspec::find_appspec(&archive, spec.appspec_filename.as_deref()).map_err(|e| {
                if !matches!(e, appspec::AppSpecLocateError::NotFound { .. }) {
                    // Refused without opening it (a link out of the revision, not a regular file).
                    return ExecError::AppSpecLocate(e);
                }
                ExecError::AppSpecMissing {
                    rel: spec
                        .appspec_filename
                        .clone()
                        .unwrap_or_else(|| "appspec.yml".into()),
                    archive: archive.clone(),
                }
            })?;
        Ok(ReadAppSpec {
            rev_dir: rev_dir.to_path_buf(),
            name: path
                .file_name()
                .map(|n| crate::names::os(n).into_owned())
                .unwrap_or_default(),
            spec: appspec::parse_file(&path)?,
        })
    }

    fn run_hooks(
        &self,
        event: &str,
        spec: &DeploymentSpec,
        dir: &Path,
        start_at: usize,
        read: Option<ReadAppSpec>,
        observer: &mut dyn FnMut(hooks::HookProgress),
    ) -> Result<EventOutcome, ExecError> {
        let Some(rev_dir) = self.select_revision(event, spec, dir)? else {
            return Ok(EventOutcome::Noop {
                reason: "no earlier revision of this group is recorded".into(),
            });
        };
        let appspec = match read.and_then(|r| r.of_revision(&rev_dir)) {
            Some(r) => r.spec,
            None => self.read_appspec(&rev_dir, spec)?.spec,
        };
        let scripts = match appspec.hooks.get(event) {
            Some(s) if !s.is_empty() => s,
            _ => {
                return Ok(EventOutcome::Noop {
                    reason: "the appspec has no scripts for this event".into(),
                })
            }
        };
        let mut ctx = hooks::HookContext::new(
            event,
            &spec.deployment_id,
            state::archive_dir(&rev_dir),
            state::scripts_log(dir),
        );
        ctx.application_name = spec.application_name.clone();
        ctx.deployment_group_name = spec.group_name.clone();
        ctx.deployment_group_id = spec.group_id.clone();
        ctx.revision_env = spec.revision.hook_env();
        ctx.deployments_log = self
            .config
            .enable_deployments_log
            .then(|| self.layout.deployments_log(&self.config.program_name));
        ctx.scripts_log_max_bytes = self.config.scripts_log_max_bytes;
        ctx.cancel = self.cancel.clone();
        ctx.running_record = Some(self.layout.running_hook_file(&spec.group_id));
        ctx.reboot_requests = Some(state::reboot_requests_dir(dir));
        ctx.start_at = start_at;
        match hooks::run_event(&ctx, scripts, observer) {
            Ok(hooks::EventReport {
                scripts,
                reboot: Some(ask),
                ..
            }) => Ok(EventOutcome::Reboot { scripts, ask }),
            Ok(report) => Ok(EventOutcome::Scripts(report.scripts)),
            Err(failure) => Err(ExecError::Hook(failure)),
        }
    }
}

/// docs/behaviour/appspec.md#event-validation: when the service lists every possible event, the
/// appspec may not name others, and every custom event it lists must have hooks.
fn check_events_against_spec(
    appspec: &AppSpec,
    spec: &DeploymentSpec,
    appspec_name: &str,
) -> Result<(), ExecError> {
    let Some(all) = &spec.all_possible_events else {
        return Ok(());
    };
    let unknown: Vec<&str> = appspec
        .hooks
        .events()
        .filter(|e| !all.iter().any(|a| a == e))
        .collect();
    if !unknown.is_empty() {
        return Err(ExecError::UnknownEvents {
            appspec_name: appspec_name.to_string(),
            unknown: unknown.into_iter().map(str::to_string).collect(),
        });
    }
    let missing: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|e| !lifecycle::is_canonical(e) && appspec.hooks.get(e).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ExecError::MissingCustomEvents {
            appspec_name: appspec_name.to_string(),
            missing: missing.into_iter().map(str::to_string).collect(),
        });
    }
    Ok(())
}

/// `bundle.tar` of a local file revision is a symlink to it (it costs no space); where links
/// fail, a copy only when `keep` (`keep_bundle_archive`; checked against the reserve first: it
/// is written to the deployment root). Returns whether `bundle.tar` now exists.
fn link_or_copy_bundle(
    location: &Path,
    bundle_path: &Path,
    keep: bool,
    opts: &bundle::UnpackOptions,
) -> Result<bool, ExecError> {
    let abs = std::path::absolute(location).map_err(|e| StateError::new("resolve", location, e))?;
    if std::os::unix::fs::symlink(&abs, bundle_path).is_err() {
        if !keep {
            return Ok(false);
        }
        if let Some(rule) = opts.reserve {
            let len = std::fs::metadata(&abs)
                .map_err(|e| StateError::new("inspect", &abs, e))?
                .len();
            let guard = crate::space::Guard::new(bundle_path, rule)
                .map_err(|e| StateError::new("measure free space for", bundle_path, e))?;
            guard
                .ahead(len)
                .map_err(|space| ExecError::BundleCopySpace {
                    from: abs.clone(),
                    to: bundle_path.to_path_buf(),
                    space: Box::new(space),
                })?;
        }
        std::fs::copy(&abs, bundle_path).map_err(|e| StateError::new("copy bundle", &abs, e))?;
    }
    Ok(true)
}

/// After a failed DownloadBundle: removes what it wrote (`revisions::clear_download`), so a
/// failed or refused bundle leaves the disk as it was. The error gains a note only when
/// something could not be removed.
fn undo_download(dir: &Path, error: ExecError) -> ExecError {
    let left = revisions::clear_download(dir);
    if left.is_empty() {
        return error;
    }
    ExecError::CleanupFailed {
        error: Box::new(error),
        left,
    }
}

/// `s3://bucket/key`, `github.com/account/repository@commit`, or the local path: what progress
/// lines call the revision.
fn revision_name(revision: &Revision) -> String {
    match revision {
        Revision::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        Revision::GitHub {
            account,
            repository,
            commit,
            ..
        } => format!("github.com/{account}/{repository}@{commit}"),
        Revision::LocalFile { location, .. } | Revision::LocalDirectory { location } => {
            location.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_appspec_serves_only_its_own_revision() {
        let read = ReadAppSpec {
            rev_dir: PathBuf::from("/root/g/d-1"),
            name: "appspec.yml".into(),
            spec: appspec::parse("appspec.yml", "version: 0.0\nos: linux\n").unwrap(),
        };
        assert!(read.clone().of_revision(Path::new("/root/g/d-1")).is_some());
        assert!(read.of_revision(Path::new("/root/g/d-0")).is_none());
    }

    use std::error::Error;

    #[test]
    fn a_download_error_keeps_its_type_and_its_message() {
        let transfer = || crate::transfer::TransferError::EtagMismatch {
            expected: "a".into(),
            actual: "b".into(),
        };
        let text = transfer().to_string();
        for e in [
            ExecError::from(FetchError::from(transfer())),
            ExecError::from(FetchError::Setup(Arc::new(transfer()))),
        ] {
            assert_eq!(e.to_string(), text);
            assert_eq!(e.diagnostics().message, text);
            assert!(matches!(
                e,
                ExecError::Download(FetchError::Transfer(_) | FetchError::Setup(_))
            ));
        }
    }

    #[test]
    fn a_failed_cleanup_is_added_to_the_error() {
        let left = vec![StateError::new(
            "remove",
            Path::new("/r/g/d/archive"),
            std::io::Error::from_raw_os_error(libc::EACCES),
        )];
        let first = left[0].to_string();
        let e = ExecError::CleanupFailed {
            error: Box::new(ExecError::NoRemote),
            left,
        };
        assert_eq!(
            e.to_string(),
            format!("this command cannot download S3 or GitHub revisions (no transfer client configured); cleaning up after it failed too: {first}")
        );
        assert!(matches!(
            e.source().and_then(|s| s.downcast_ref::<Box<ExecError>>()),
            Some(b) if matches!(**b, ExecError::NoRemote)
        ));
    }

    #[test]
    fn event_list_messages() {
        let e = ExecError::UnknownEvents {
            appspec_name: "appspec.yml".into(),
            unknown: vec!["Foo".into(), "Bar".into()],
        };
        assert_eq!(
            e.to_string(),
            r#"appspec.yml file contains unknown lifecycle events: ["Foo", "Bar"]"#
        );
        let e = ExecError::MissingCustomEvents {
            appspec_name: "appspec.yml".into(),
            missing: vec!["Foo".into(), "Bar".into()],
        };
        assert_eq!(e.to_string(), "You specified a lifecycle event which is not a default one and doesn't exist in your appspec.yml file: Foo,Bar");
    }
}
