//! S3 bundles (docs/behaviour/bundles.md#s3-download): the client built from explicit settings, and
//! the download task that streams a GetObject body into the bridge, resuming with a ranged request
//! (same version,
//! `If-Match` the ETag first seen) when the connection drops mid-body.
//!
//! Invariants: bytes are sent on only in order and only once (a resumed response must start
//! exactly where the last one stopped, with the same ETag); the number of resumes and the wait
//! between them are bounded; the spec's ETag is checked before any byte is passed on.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpBuilder, Connector};
use tokio::sync::mpsc::Sender;

use super::ranged::Outcome;
use super::rules;
use super::stream::{Piece, Progress};
use super::{S3Settings, TransferError, Tuning};
use crate::deployspec::BundleType;

/// What to download.
#[derive(Debug, Clone)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
    pub etag: Option<String>,
}

#[derive(Clone)]
pub struct S3 {
    pub(super) client: Client,
    region: String,
    use_fips: bool,
}

impl S3 {
    pub fn new(settings: &S3Settings, tuning: &Tuning) -> Result<Self, TransferError> {
        Ok(Self {
            client: client(settings, tuning)?,
            region: settings.region.clone(),
            use_fips: settings.use_fips,
        })
    }

    /// Downloads `obj` into `tx`: in parallel ranges (`ranged`), or as one GET when the
    /// tuning asks for it or S3 serves no range of the object (an empty one).
    pub async fn download(self, obj: Object, tuning: Tuning, kind: BundleType, tx: Sender<Piece>) {
        let ranged = if tuning.s3_single_stream {
            Ok(Outcome::Plain)
        } else {
            self.ranged(&obj, &tuning, kind, &tx).await
        };
        let result = match ranged {
            Ok(Outcome::Done) => Ok(true),
            Ok(Outcome::ReaderGone) => Ok(false),
            Ok(Outcome::Plain) => self.run(&obj, &tuning, &tx).await,
            Err(e) => Err(e),
        };
        let last = match result {
            Ok(true) => Piece::Done,
            Ok(false) => return,
            Err(e) => Piece::Failed(e),
        };
        let _ = tx.send(last).await;
    }

    /// Ok(false): the reader went away (the unpacker stopped), nothing more to do.
    async fn run(
        &self,
        obj: &Object,
        tuning: &Tuning,
        tx: &Sender<Piece>,
    ) -> Result<bool, TransferError> {
        tracing::info!(
            "Downloading artifact bundle from bucket '{}' and key '{}', version '{}', etag '{}'",
            obj.bucket,
            obj.key,
            obj.version.as_deref().unwrap_or(""),
            obj.etag.as_deref().unwrap_or("")
        );
        let mut progress = Progress::new(format!("s3://{}/{}", obj.bucket, obj.key));
        let mut received: u64 = 0;
        let mut total: Option<u64> = None;
        let mut seen_etag: Option<String> = None;
        let mut resumes: u32 = 0;
        loop {
            let out = match self.request(obj, received, seen_etag.as_deref()).await {
                Ok(out) => out,
                Err(e) if received > 0 && resumes < tuning.resume_attempts => {
                    resumes += 1;
                    tracing::warn!(
                        "resuming s3://{}/{} at byte {received} failed: {e}",
                        obj.bucket,
                        obj.key
                    );
                    tokio::time::sleep(crate::random::spread(
                        rules::resume_delay(tuning.resume_base_delay, resumes),
                        crate::control::JITTER,
                    ))
                    .await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let etag = out.e_tag().unwrap_or("").to_string();
            if received == 0 {
                if let Some(expected) = &obj.etag {
                    if !rules::etag_matches(expected, &etag) {
                        return Err(TransferError::EtagMismatch {
                            expected: expected.clone(),
                            actual: etag,
                        });
                    }
                }
                total = out.content_length().and_then(|n| u64::try_from(n).ok());
                progress.set_total(total);
                if let Some(len) = total {
                    if tx.send(Piece::Size(len)).await.is_err() {
                        return Ok(false);
                    }
                }
                seen_etag = (!etag.is_empty()).then_some(etag);
            } else if !rules::range_starts_at(out.content_range(), received)
                || seen_etag
                    .as_deref()
                    .is_some_and(|s| !rules::etag_matches(s, &etag))
            {
                return Err(self.failure(
                    obj,
                    format!(
                        "the resumed response does not continue the object at byte {received} (Content-Range {:?}, ETag {etag:?})",
                        out.content_range()
                    ),
                ));
            }
            let mut body = out.body;
            let cut = loop {
                match tokio::time::timeout(tuning.idle_timeout, body.next()).await {
                    Ok(Some(Ok(bytes))) => {
                        received += bytes.len() as u64;
                        progress.tick(received);
                        if tx.send(Piece::Data(bytes, None)).await.is_err() {
                            return Ok(false);
                        }
                    }
                    Ok(None) if total.is_none_or(|t| received >= t) => {
                        tracing::info!(
                            "Download complete from bucket {} and key {} ({received} bytes, {:.1} MiB/s{})",
                            obj.bucket,
                            obj.key,
                            rules::mib_per_s(received, progress.elapsed()),
                            if resumes > 0 { format!(", {resumes} resumes") } else { String::new() }
                        );
                        return Ok(true);
                    }
                    Ok(None) => break "the response ended early".to_string(),
                    Ok(Some(Err(e))) => break DisplayErrorContext(&e).to_string(),
                    Err(_) => break format!("no data for {:?}", tuning.idle_timeout),
                }
            };
            if total.is_some_and(|t| received >= t) || resumes >= tuning.resume_attempts {
                return Err(self.failure(
                    obj,
                    format!("{cut} after {received} bytes and {resumes} resumes"),
                ));
            }
            resumes += 1;
            tracing::warn!(
                "download of s3://{}/{} interrupted after {received} bytes ({cut}); resuming (attempt {resumes} of {})",
                obj.bucket,
                obj.key,
                tuning.resume_attempts
            );
            tokio::time::sleep(crate::random::spread(
                rules::resume_delay(tuning.resume_base_delay, resumes),
                crate::control::JITTER,
            ))
            .await;
        }
    }

    async fn request(
        &self,
        obj: &Object,
        received: u64,
        etag: Option<&str>,
    ) -> Result<GetObjectOutput, TransferError> {
        let mut get = self
            .client
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .set_version_id(obj.version.clone())
            .set_range(rules::resume_range(received));
        if received > 0 {
            get = get.set_if_match(etag.map(str::to_string));
        }
        get.send().await.map_err(|e| self.request_error(obj, e))
    }

    /// A failed request as the error the operator sees: "unable to connect" with the official
    /// hint when S3 could not be reached, else the S3 answer.
    pub(super) fn request_error<E, R>(&self, obj: &Object, e: SdkError<E, R>) -> TransferError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let connect = matches!(&e, SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout())
            || matches!(&e, SdkError::TimeoutError(_));
        let detail = DisplayErrorContext(&e).to_string();
        if connect {
            TransferError::S3Connect {
                bucket: obj.bucket.clone(),
                key: obj.key.clone(),
                version: obj.version.clone(),
                detail,
                hint: rules::connect_hint(&self.region, self.use_fips),
            }
        } else {
            self.failure(obj, detail)
        }
    }

    pub(super) fn failure(&self, obj: &Object, detail: String) -> TransferError {
        TransferError::S3 {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            version: obj.version.clone(),
            detail,
        }
    }
}

/// The S3 client of the given settings: explicit region, credentials and endpoint (no default
/// chain), rustls with ring, the proxy `s3_proxy_uri`, `proxy_uri` or the environment give
/// (`crate::proxy`), a proxy's 407 reported naming the proxy. Also useful to tests and tools
/// that upload bundles.
pub fn client(settings: &S3Settings, tuning: &Tuning) -> Result<Client, TransferError> {
    let endpoint = rules::s3_endpoint(
        &settings.region,
        settings.endpoint_override.as_deref(),
        settings.use_fips,
    );
    let scheme = endpoint
        .as_deref()
        .and_then(|u| u.split_once("://"))
        .map_or("https", |(s, _)| s);
    let route = crate::proxy::route_from_env(&settings.proxy, scheme)
        .map_err(|e| TransferError::Config(e.to_string()))?;
    tracing::debug!("S3: {route}");
    let proxy =
        crate::proxy::with_smithy(&route).map_err(|e| TransferError::Config(e.to_string()))?;
    let http = HttpBuilder::new().build_with_connector_fn(move |settings, components| {
        let mut b = Connector::builder();
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.proxy_config(proxy.clone())
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build()
    });
    let http = crate::proxy::smithy_refusals(http, &route);
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(tuning.connect_timeout)
        .build();
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(settings.credentials.clone())
        .http_client(http)
        .timeout_config(timeouts)
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(tuning.request_attempts)
                .with_initial_backoff(tuning.resume_base_delay),
        );
    if let Some(url) = endpoint {
        tracing::debug!("using s3 override endpoint {url}");
        let path_style = settings
            .endpoint_override
            .as_deref()
            .is_some_and(|o| !o.trim().is_empty());
        conf = conf.endpoint_url(url).force_path_style(path_style);
    }
    Ok(Client::from_conf(conf.build()))
}

/// Tuning defaults for S3 (see [`Tuning`]).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);
