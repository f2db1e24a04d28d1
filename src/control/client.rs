//! Adapter: the host-command service over AWS JSON 1.1 with SigV4
//! (docs/behaviour/protocol.md#command-client, docs/behaviour/protocol.md#wire-protocol).
//!
//! Invariant: every request is signed with fresh credentials from the provider (so refreshed
//! credentials take effect without a restart) and carries the agent-version header inside
//! the signature. No call retries by itself: retry policy belongs to the caller's shared
//! [`super::Backoff`], so a request is never sent twice behind the caller's back.

use super::wire::{self, CommandStatus, Envelope, HostCommand, SpecResponse};
use super::ControlError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub const AGENT_VERSION_HEADER: &str = "x-amz-codedeploy-agent-version";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Connecting should never take long; a hung connect is a network error worth a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything a client needs; see [`super::resolve_endpoint`] for the first four.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Full URL, e.g. `https://codedeploy-commands.us-east-1.amazonaws.com`.
    pub endpoint: String,
    /// SigV4 signing region.
    pub region: String,
    pub signing_name: String,
    pub target_prefix: String,
    /// Value of `x-amz-codedeploy-agent-version`.
    pub agent_version: String,
    /// `command_proxy_uri`, else `proxy_uri`, else the environment (docs/proxies.md).
    pub proxy: crate::proxy::Configured,
    /// `http_read_timeout`: longer than the service's long poll (about 45-60 s).
    pub read_timeout: Duration,
    pub credentials: SharedCredentialsProvider,
}

impl ClientSettings {
    /// Settings from the configuration (the proxy keys, `http_read_timeout`), the identity
    /// (signing region, credentials) and a resolved endpoint.
    pub fn from_parts(
        cfg: &crate::config::Config,
        identity: &super::Identity,
        endpoint: &super::ResolvedEndpoint,
        agent_version: &str,
    ) -> Self {
        Self {
            endpoint: endpoint.url.clone(),
            region: identity.region.clone(),
            signing_name: endpoint.signing_name.clone(),
            target_prefix: endpoint.target_prefix.clone(),
            agent_version: agent_version.to_string(),
            proxy: cfg.command_proxy(),
            read_timeout: Duration::from_secs(cfg.http_read_timeout.max(1)),
            credentials: identity.credentials.clone(),
        }
    }
}

struct Inner {
    http: reqwest::Client,
    settings: ClientSettings,
    /// The proxy chosen at construction, for the message of a 407.
    route: crate::proxy::Route,
}

/// The host-command client; cheap to clone (shared connection pool).
#[derive(Clone)]
pub struct CommandClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CommandClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandClient")
            .field("endpoint", &self.inner.settings.endpoint)
            .field("region", &self.inner.settings.region)
            .field("signing_name", &self.inner.settings.signing_name)
            .finish()
    }
}

/// Makes ring the process-wide rustls crypto provider (idempotent). Every rustls user in the
/// process (this client, S3 and GitHub downloads) then shares one TLS/crypto stack.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with the agent's TLS stack (rustls + ring, the system trust store plus the
/// CAs of `AWS_SSL_CA_BUNDLE` and `AWS_SSL_CA_DIRECTORY`) sending its requests by `route`
/// (`crate::proxy`).
pub fn http_client(
    route: &crate::proxy::Route,
    read_timeout: Duration,
) -> Result<reqwest::Client, ControlError> {
    install_crypto_provider();
    let b = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .user_agent(concat!("codedeploy-agent-rs/", env!("CARGO_PKG_VERSION")))
        .tls_certs_merge(extra_roots()?);
    let b = crate::proxy::with_reqwest(b, route)
        .map_err(|e| ControlError::config(&e.what, e.message))?;
    b.build()
        .map_err(|e| ControlError::config("HTTP client", e.to_string()))
}

/// CA certificates named by `AWS_SSL_CA_BUNDLE` (a PEM file) and `AWS_SSL_CA_DIRECTORY`
/// (its `*.pem`/`*.crt` files), added to the system's roots.
fn extra_roots() -> Result<Vec<reqwest::Certificate>, ControlError> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("AWS_SSL_CA_BUNDLE").filter(|v| !v.is_empty()) {
        files.push(("AWS_SSL_CA_BUNDLE", std::path::PathBuf::from(f)));
    }
    if let Some(d) = std::env::var_os("AWS_SSL_CA_DIRECTORY").filter(|v| !v.is_empty()) {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            ControlError::config(
                "AWS_SSL_CA_DIRECTORY",
                format!("{}: {e}", d.to_string_lossy()),
            )
        })?;
        let mut found: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        found.sort();
        files.extend(found.into_iter().map(|p| ("AWS_SSL_CA_DIRECTORY", p)));
    }
    let mut certs = Vec::new();
    for (var, path) in files {
        let fail = |m: String| ControlError::config(var, format!("{}: {m}", path.display()));
        let pem = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
        certs.extend(reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?);
    }
    Ok(certs)
}

/// A proxy URL fit for a log line: the password, if any, is replaced.
pub fn redact_userinfo(url: &str) -> String {
    crate::proxy::redact(url)
}

impl CommandClient {
    pub fn new(settings: ClientSettings) -> Result<Self, ControlError> {
        let url = reqwest::Url::parse(&settings.endpoint).map_err(|e| {
            ControlError::config(
                "endpoint",
                format!("{:?} is not a URL: {e}", settings.endpoint),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ControlError::config(
                "endpoint",
                format!("{:?} is not an http(s) URL", settings.endpoint),
            ));
        }
        let route = crate::proxy::route_from_env(&settings.proxy, url.scheme())
            .map_err(|e| ControlError::config(&e.what, e.message))?;
        tracing::info!("command service {}: {route}", settings.endpoint);
        let http = http_client(&route, settings.read_timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                settings,
                route,
            }),
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.inner.settings
    }

    pub async fn poll_host_command(
        &self,
        host_identifier: &str,
    ) -> Result<Option<HostCommand>, ControlError> {
        let body = self
            .call(wire::POLL_HOST_COMMAND, wire::poll_request(host_identifier))
            .await?;
        wire::parse_poll(&body)
    }

    pub async fn get_deployment_specification(
        &self,
        deployment_execution_id: &str,
        host_identifier: &str,
    ) -> Result<SpecResponse, ControlError> {
        let req = wire::spec_request(deployment_execution_id, host_identifier);
        let body = self.call(wire::GET_DEPLOYMENT_SPECIFICATION, req).await?;
        wire::parse_spec(&body)
    }

    pub async fn put_host_command_acknowledgement(
        &self,
        host_command_identifier: &str,
        diagnostics: Option<&Envelope>,
    ) -> Result<Option<CommandStatus>, ControlError> {
        let req = wire::ack_request(host_command_identifier, diagnostics);
        let body = self
            .call(wire::PUT_HOST_COMMAND_ACKNOWLEDGEMENT, req)
            .await?;
        wire::parse_ack(&body)
    }

    pub async fn put_host_command_complete(
        &self,
        host_command_identifier: &str,
        status: CommandStatus,
        diagnostics: Option<&Envelope>,
    ) -> Result<(), ControlError> {
        let req = wire::complete_request(host_command_identifier, &status, diagnostics);
        self.call(wire::PUT_HOST_COMMAND_COMPLETE, req).await?;
        Ok(())
    }

    /// PostHostCommandUpdate: a progress note for a command in progress; the answer is the
    /// command's status as the service sees it.
    pub async fn post_host_command_update(
        &self,
        host_command_identifier: &str,
        diagnostics: Option<&Envelope>,
    ) -> Result<Option<CommandStatus>, ControlError> {
        let req = wire::update_request(host_command_identifier, diagnostics);
        let body = self.call(wire::POST_HOST_COMMAND_UPDATE, req).await?;
        wire::parse_update(&body)
    }

    /// One signed POST; returns the body of a 2xx answer.
    async fn call(&self, op: &str, body: Vec<u8>) -> Result<Vec<u8>, ControlError> {
        let s = &self.inner.settings;
        let creds =
            s.credentials
                .provide_credentials()
                .await
                .map_err(|e| ControlError::Credentials {
                    operation: op.to_string(),
                    message: error_chain(&e),
                })?;
        let target = format!("{}.{op}", s.target_prefix);
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
            (AGENT_VERSION_HEADER, s.agent_version.as_str()),
        ];
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&s.region)
            .name(&s.signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ControlError::config("signing", e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            s.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| ControlError::config("signing", e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| ControlError::config("signing", e.to_string()))?
            .into_parts();
        let mut req = self.inner.http.post(&s.endpoint);
        for (k, v) in headers.iter().copied().chain(instructions.headers()) {
            req = req.header(k, v);
        }
        let started = Instant::now();
        let route = &self.inner.route;
        let net = |e: reqwest::Error| ControlError::Network {
            operation: op.to_string(),
            message: match route
                .refusal()
                .filter(|_| crate::proxy::refused_by_proxy(&e))
            {
                Some(refused) => refused,
                None => scrub(route, error_chain(&e)),
            },
        };
        let resp = req.body(body).send().await.map_err(net)?;
        let status = resp.status().as_u16();
        // A forward proxy (http:// endpoint) answers 407 itself; the service never does.
        if let Some(refused) = route.refusal().filter(|_| status == 407) {
            return Err(ControlError::Network {
                operation: op.to_string(),
                message: refused,
            });
        }
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = match super::limit::read_body(resp, super::limit::MAX_SERVICE_ANSWER).await {
            Ok(bytes) => bytes,
            Err(super::limit::ReadError::Http(e)) => return Err(net(e)),
            Err(super::limit::ReadError::Oversized(o)) => {
                return Err(ControlError::Decode {
                    operation: op.to_string(),
                    message: format!("HTTP {status}: {o}"),
                })
            }
        };
        tracing::debug!(
            "{op}: HTTP {status} in {:.3} s ({} bytes)",
            started.elapsed().as_secs_f64(),
            bytes.len()
        );
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let (type_, message) = wire::parse_error(status, error_type.as_deref(), &bytes);
        Err(ControlError::from_http(op, status, type_, message))
    }
}

/// `text` without the password of the route's proxy.
fn scrub(route: &crate::proxy::Route, text: String) -> String {
    match route {
        crate::proxy::Route::Via { proxy, .. } => proxy.scrub(&text),
        crate::proxy::Route::Direct => text,
    }
}

/// An error and its causes on one line (reqwest hides the useful part in `source()`).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}
