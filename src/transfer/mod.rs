//! Bundle transfer (docs/behaviour/bundles.md#s3-download,
//! docs/behaviour/bundles.md#github-download): downloads an S3 or GitHub revision into the
//! deployment dir, streaming tar/tgz straight into the unpacker, and zip (which needs random
//! access) to `bundle.tar` first, then unpacked. Only the extracted revision is kept:
//! `bundle.tar` stays beside it only with `keep_bundle_archive` (docs/adr/0010-one-copy-on-disk.md).
//! The archive dir is not emptied here: `crate::revisions` owns it (the executor clears it).
//!
//! The facade is blocking, for the synchronous executor; the network work runs as tasks on a
//! tokio runtime (the caller's multi-thread runtime, or one worker thread of our own) and
//! meets the unpacker through a bounded channel (`stream`). S3 objects are fetched as parallel
//! ranged GETs of the pinned object, passed on in order (`ranged`). Pure decisions are in
//! `rules` and `parts`.
//!
//! Invariants: a bundle is reported unpacked only when every byte of the object arrived (and
//! its ETag matched the deployment's when it named one); memory stays bounded whatever the
//! bundle size; retries and resumes are bounded in count and delay. See
//! docs/adr/0006-bundle-transfer.md.

mod error;
pub mod factory;
mod github;
pub mod parts;
mod ranged;
pub mod rules;
mod s3;
mod stream;

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::bundle::{self, UnpackOptions, UnpackReport};
use crate::deployspec::{BundleType, Revision};
use crate::meter::Meter;
use crate::state;

pub use error::TransferError;
pub use s3::client as s3_client;

#[derive(Clone)]
pub struct S3Settings {
    /// `AWS_REGION` or the IMDS region.
    pub region: String,
    /// `s3_endpoint_override`; path-style addressing when set.
    pub endpoint_override: Option<String>,
    /// `use_fips_mode`.
    pub use_fips: bool,
    /// `s3_proxy_uri`, else `proxy_uri`, else the environment (docs/proxies.md).
    pub proxy: crate::proxy::Configured,
    pub credentials: SharedCredentialsProvider,
}

#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `https://api.github.com`; tests point it at a loopback server.
    pub api_base: String,
    /// Used by [`Fetcher::fetch`]; [`Fetcher::fetch_with_token`] takes the deployment's own.
    pub token: Option<String>,
    /// The official agent applies no `proxy_uri` to GitHub, only the environment
    /// (docs/behaviour/configuration.md#proxy-and-tls): the default matches it.
    pub proxy: crate::proxy::Configured,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        Self {
            api_base: "https://api.github.com".into(),
            token: None,
            proxy: crate::proxy::Configured::default(),
        }
    }
}

/// Bounds and delays; the defaults are the production values, tests shorten them.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Ranged re-requests after a connection dropped mid-body.
    pub resume_attempts: u32,
    /// First delay before a resume; doubles up to 8x.
    pub resume_base_delay: Duration,
    /// Attempts the S3 client makes per request (its own retry of failed requests).
    pub request_attempts: u32,
    /// A body that delivers nothing for this long counts as dropped.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// Delays before each retry of a GitHub error status (officially 10, 30, 90 s).
    pub github_delays: Vec<Duration>,
    /// `s3_download_connections`: ranged GETs of one S3 bundle at once.
    pub s3_connections: usize,
    /// `s3_download_part_size`: bytes per ranged GET.
    pub s3_part_size: u64,
    /// One GET for the whole object instead of ranges (the benchmark's baseline).
    pub s3_single_stream: bool,
}

impl Tuning {
    /// The production values with the configuration's S3 download keys.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        Self {
            s3_connections: cfg.s3_download_connections,
            s3_part_size: cfg.s3_download_part_size,
            ..Self::default()
        }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            resume_attempts: 5,
            resume_base_delay: Duration::from_secs(1),
            request_attempts: 3,
            idle_timeout: s3::DEFAULT_IDLE,
            connect_timeout: Duration::from_secs(10),
            github_delays: github::OFFICIAL_DELAYS.to_vec(),
            s3_connections: crate::config::DEFAULT_S3_DOWNLOAD_CONNECTIONS,
            s3_part_size: crate::config::DEFAULT_S3_DOWNLOAD_PART_SIZE,
            s3_single_stream: false,
        }
    }
}

enum Rt {
    Borrowed(Handle),
    Owned(Runtime),
}

pub struct Fetcher {
    rt: Rt,
    s3: Option<s3::S3>,
    github: github::GitHub,
    github_settings: GitHubSettings,
    tuning: Tuning,
    /// `keep_bundle_archive`: leave `bundle.tar` beside the extracted revision.
    keep_archive: bool,
}

impl Fetcher {
    /// Keep the downloaded archive as `bundle.tar` (default: not kept).
    pub fn keep_bundle_archive(mut self, keep: bool) -> Self {
        self.keep_archive = keep;
        self
    }

    /// `runtime` must be a multi-thread runtime with time and I/O enabled (the download task
    /// runs there while the calling thread unpacks); None starts a one-worker runtime.
    pub fn new(
        s3: Option<S3Settings>,
        github: GitHubSettings,
        runtime: Option<Handle>,
    ) -> Result<Self, TransferError> {
        Self::with_tuning(s3, github, runtime, Tuning::default())
    }

    pub fn with_tuning(
        s3: Option<S3Settings>,
        github: GitHubSettings,
        runtime: Option<Handle>,
        tuning: Tuning,
    ) -> Result<Self, TransferError> {
        // One TLS stack for the whole agent: rustls with ring. An error only means a provider
        // is already installed (by the control client, say), which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = match runtime {
            Some(h) if h.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                return Err(TransferError::Config(
                    "the transfer needs a multi-thread tokio runtime (a current-thread one would stall while the caller unpacks)".into(),
                ))
            }
            Some(h) => Rt::Borrowed(h),
            None => Rt::Owned(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("bundle-transfer")
                    .enable_all()
                    .build()
                    .map_err(|e| TransferError::Config(format!("starting the transfer runtime: {e}")))?,
            ),
        };
        let handle = match &rt {
            Rt::Borrowed(h) => h.clone(),
            Rt::Owned(r) => r.handle().clone(),
        };
        // Clients spawn their connection tasks on the runtime they are built in.
        let _guard = handle.enter();
        let s3 = s3.map(|s| s3::S3::new(&s, &tuning)).transpose()?;
        let gh = github::GitHub::new(&github, &tuning)?;
        drop(_guard);
        Ok(Self {
            rt,
            s3,
            github: gh,
            github_settings: github,
            tuning,
            keep_archive: false,
        })
    }

    fn handle(&self) -> &Handle {
        match &self.rt {
            Rt::Borrowed(h) => h,
            Rt::Owned(r) => r.handle(),
        }
    }

    /// Downloads the revision and unpacks it into `<deployment_dir>/deployment-archive`, which
    /// must be absent or empty (`revisions::clear_download`). Tar and tgz are unpacked while
    /// they download; `bundle.tar` is left only when [`keep_bundle_archive`](Self::keep_bundle_archive)
    /// asked for it. Must be called from a thread that is not running async tasks.
    pub fn fetch(
        &self,
        revision: &Revision,
        deployment_dir: &Path,
        opts: &UnpackOptions,
    ) -> Result<UnpackReport, TransferError> {
        let token = self.github_settings.token.clone();
        self.fetch_with_token(revision, token.as_deref(), deployment_dir, opts)
    }

    /// As [`fetch`](Self::fetch), with the deployment's `GitHubAccessToken` (None: anonymous).
    pub fn fetch_with_token(
        &self,
        revision: &Revision,
        github_token: Option<&str>,
        deployment_dir: &Path,
        opts: &UnpackOptions,
    ) -> Result<UnpackReport, TransferError> {
        self.fetch_metered(revision, github_token, deployment_dir, opts, None)
    }

    /// As [`fetch_with_token`](Self::fetch_with_token); `meter` counts the bytes entering the
    /// unpacker (single or ranged downloads alike) and learns the object's length.
    pub fn fetch_metered(
        &self,
        revision: &Revision,
        github_token: Option<&str>,
        deployment_dir: &Path,
        opts: &UnpackOptions,
        meter: Option<&Meter>,
    ) -> Result<UnpackReport, TransferError> {
        let (tx, rx) = stream::channel();
        let (kind, name, task): (BundleType, String, BoxFuture) = match revision {
            Revision::S3 {
                bucket,
                key,
                bundle_type,
                version,
                etag,
            } => {
                let Some(client) = &self.s3 else {
                    return Err(TransferError::Config(
                        "an S3 revision, but no S3 settings were given".into(),
                    ));
                };
                let obj = s3::Object {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version: version.clone(),
                    etag: etag.clone(),
                };
                let (client, tuning) = (client.clone(), self.tuning.clone());
                let kind = *bundle_type;
                let task = Box::pin(async move { client.download(obj, tuning, kind, tx).await });
                (*bundle_type, format!("s3://{bucket}/{key}"), task)
            }
            Revision::GitHub {
                account,
                repository,
                commit,
                bundle_type,
            } => {
                let archive = rules::github_archive(*bundle_type)
                    .ok_or_else(|| TransferError::GitHubBundleType(bundle_type.to_string()))?;
                let url = rules::github_url(
                    &self.github_settings.api_base,
                    account,
                    repository,
                    archive,
                    commit,
                );
                let (client, tuning) = (self.github.clone(), self.tuning.clone());
                let (u, token) = (url.clone(), github_token.map(str::to_string));
                let task = Box::pin(async move { client.download(u, token, tuning, tx).await });
                (*bundle_type, url, task)
            }
            Revision::LocalFile { .. } | Revision::LocalDirectory { .. } => {
                return Err(TransferError::Unsupported(
                    "local revisions are not downloaded; the executor links or copies them".into(),
                ))
            }
        };
        let running = self.handle().spawn(task);
        let result = receive(
            rx,
            kind,
            &name,
            deployment_dir,
            opts,
            self.keep_archive,
            meter,
        );
        // On success the task has finished; on failure it may still be waiting to send.
        running.abort();
        result
    }
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// The calling thread's half: unpack (streamed for tar/tgz, after the download for zip),
/// writing `bundle.tar` too when it is kept or the bundle is a zip.
fn receive(
    rx: tokio::sync::mpsc::Receiver<stream::Piece>,
    kind: BundleType,
    name: &str,
    deployment_dir: &Path,
    opts: &UnpackOptions,
    keep_archive: bool,
    meter: Option<&Meter>,
) -> Result<UnpackReport, TransferError> {
    let bundle_path = state::bundle_file(deployment_dir);
    let archive = state::archive_dir(deployment_dir);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TransferError::Write { path, source }
    };
    std::fs::create_dir_all(deployment_dir).map_err(write_err(deployment_dir))?;
    let tee = if keep_archive || kind == BundleType::Zip {
        let file: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&bundle_path)
            .map_err(write_err(&bundle_path))?;
        Some(stream::Tee {
            file,
            path: bundle_path.clone(),
        })
    } else {
        None
    };
    let tee_written = tee.is_some();
    let mut reader = stream::PieceReader::new(rx, tee);
    if let Some(rule) = opts.reserve {
        let guard =
            crate::space::Guard::new(deployment_dir, rule).map_err(write_err(deployment_dir))?;
        // Known up front: the object's length (when bundle.tar is written), and a tar or
        // tgz unpacks to at least about as much beside it.
        if let Some(len) = reader.announced_len() {
            let unpacked = match kind {
                BundleType::Tar => {
                    crate::space::archive_lower_bound(crate::space::ArchiveKind::Tar, len)
                }
                BundleType::Tgz => {
                    crate::space::archive_lower_bound(crate::space::ArchiveKind::Tgz, len)
                }
                _ => 0,
            };
            let archived = if tee_written { len } else { 0 };
            guard
                .ahead(archived.saturating_add(unpacked))
                .map_err(|space| {
                    TransferError::Bundle(bundle::BundleError::NoSpace {
                        bundle: Path::new(name).to_path_buf(),
                        entry: String::new(),
                        space: Box::new(space),
                    })
                })?;
        }
        reader = reader.with_space(guard);
    }
    if let Some(m) = meter {
        m.set_totals(reader.announced_len(), None);
    }
    // Counted as the bytes enter the unpacker (a zip: as they enter bundle.tar).
    let mut counted = crate::meter::Counting::new(&mut reader, meter.cloned());
    match kind {
        BundleType::Tar | BundleType::Tgz => {
            match bundle::unpack_reader_named(&mut counted, kind, Path::new(name), &archive, opts) {
                Ok(report) => {
                    drop(counted);
                    reader.finish()?;
                    Ok(report)
                }
                // A read error inside the unpacker is the download's failure: report that.
                Err(e) => {
                    drop(counted);
                    Err(reader.take_failure().unwrap_or(TransferError::Bundle(e)))
                }
            }
        }
        BundleType::Zip => {
            let drained = std::io::copy(&mut counted, &mut std::io::sink());
            drop(counted);
            if let Err(e) = drained {
                let internal = TransferError::Internal(format!("reading the download: {e}"));
                return Err(reader.take_failure().unwrap_or(internal));
            }
            reader.finish()?;
            let report = bundle::unpack_file(&bundle_path, kind, &archive, opts)?;
            if !keep_archive {
                std::fs::remove_file(&bundle_path).map_err(write_err(&bundle_path))?;
            }
            Ok(report)
        }
        BundleType::Directory => Err(TransferError::Unsupported(format!(
            "{name}: a directory bundle cannot be downloaded"
        ))),
    }
}

impl crate::executor::RemoteFetch for Fetcher {
    fn fetch(
        &self,
        spec: &crate::deployspec::DeploymentSpec,
        deployment_dir: &Path,
        opts: &UnpackOptions,
        meter: Option<&Meter>,
    ) -> Result<UnpackReport, crate::executor::FetchError> {
        let token = spec
            .github_token
            .clone()
            .or_else(|| self.github_settings.token.clone());
        Ok(self.fetch_metered(
            &spec.revision,
            token.as_deref(),
            deployment_dir,
            opts,
            meter,
        )?)
    }
}
