//! Adapter: EC2 instance metadata (docs/behaviour/configuration.md#instance-metadata): IMDSv2
//! session tokens with fall-back to v1 unless `disable_imds_v1`, the identity document, partition
//! and domain, and instance-profile role credentials.
//!
//! Invariants: every request is tried at most three times (pauses 1 s then 2 s, scaled by
//! `retry_unit` in tests, each spread by ±20 % like every retry of the agent); a 401 drops the cached token and retries once with a new one;
//! metadata is never fetched through a proxy; the endpoint follows
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT`.

use super::client::error_chain;
use super::ControlError;
use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
pub const ENDPOINT_ENV: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const TOKEN_TTL_SECS: u64 = 21600;
const ATTEMPTS: u32 = 3;

/// The fields of the instance identity document the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDocument {
    pub region: String,
    pub account_id: String,
    pub instance_id: String,
}

struct Token {
    value: String,
    expires: Instant,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    disable_v1: bool,
    retry_unit: Duration,
    token: Mutex<Option<Token>>,
}

/// A metadata client; clones share the token.
#[derive(Clone)]
pub struct Imds {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Imds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imds")
            .field("endpoint", &self.inner.base)
            .field("disable_v1", &self.inner.disable_v1)
            .finish()
    }
}

fn meta_err(path: &str, message: impl Into<String>) -> ControlError {
    ControlError::Metadata {
        path: path.to_string(),
        message: message.into(),
    }
}

enum Answer {
    Ok(String),
    Status(u16),
}

impl Imds {
    /// The endpoint from `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else 169.254.169.254.
    pub fn from_env(disable_imds_v1: bool) -> Result<Self, ControlError> {
        let endpoint = std::env::var(ENDPOINT_ENV)
            .ok()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        Self::new(&endpoint, disable_imds_v1)
    }

    pub fn new(endpoint: &str, disable_imds_v1: bool) -> Result<Self, ControlError> {
        let base = endpoint.trim().trim_end_matches('/').to_string();
        let ok = reqwest::Url::parse(&base).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(ControlError::config(
                ENDPOINT_ENV,
                format!("{endpoint:?} is not an http:// URL"),
            ));
        }
        super::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ControlError::config("metadata client", e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                disable_v1: disable_imds_v1,
                retry_unit: Duration::from_secs(1),
                token: Mutex::new(None),
            }),
        })
    }

    /// Scales the pauses between attempts (1 and 2 units); tests use milliseconds.
    pub fn with_retry_unit(self, unit: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                disable_v1: self.inner.disable_v1,
                retry_unit: unit,
                token: Mutex::new(None),
            }),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.inner.base
    }

    /// One request, up to three attempts; any answer other than 2xx or a network error is
    /// retried. Returns the last status when no attempt got a 2xx.
    async fn request(
        &self,
        path: &str,
        put_token: bool,
        token: Option<&str>,
    ) -> Result<Answer, ControlError> {
        let url = format!("{}{path}", self.inner.base);
        let mut last = Err(meta_err(path, "no attempt made"));
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(crate::random::spread(
                    self.inner.retry_unit * attempt,
                    super::JITTER,
                ))
                .await;
            }
            let mut req = if put_token {
                self.inner.http.put(&url).header(
                    "x-aws-ec2-metadata-token-ttl-seconds",
                    TOKEN_TTL_SECS.to_string(),
                )
            } else {
                self.inner.http.get(&url)
            };
            if let Some(t) = token {
                req = req.header("x-aws-ec2-metadata-token", t);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        match super::limit::read_body(resp, super::limit::MAX_METADATA_ANSWER).await
                        {
                            Ok(body) => {
                                return Ok(Answer::Ok(String::from_utf8_lossy(&body).into_owned()))
                            }
                            Err(super::limit::ReadError::Http(e)) => {
                                last = Err(meta_err(path, error_chain(&e)))
                            }
                            // Not retried: the same endpoint would answer the same.
                            Err(super::limit::ReadError::Oversized(o)) => {
                                return Err(meta_err(path, o.to_string()))
                            }
                        }
                    } else {
                        last = Ok(Answer::Status(status));
                    }
                }
                Err(e) => last = Err(meta_err(path, error_chain(&e))),
            }
        }
        last
    }

    /// The cached token, or a new one; None when the service gives none.
    async fn token(&self) -> Option<String> {
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.expires > Instant::now()) {
            return Some(t.value.clone());
        }
        match self.request("/latest/api/token", true, None).await {
            Ok(Answer::Ok(v)) if !v.trim().is_empty() => {
                let value = v.trim().to_string();
                *slot = Some(Token {
                    value: value.clone(),
                    expires: Instant::now() + Duration::from_secs(TOKEN_TTL_SECS - 60),
                });
                Some(value)
            }
            _ => None,
        }
    }

    /// GET a metadata path (e.g. `/latest/meta-data/services/domain`).
    pub async fn get(&self, path: &str) -> Result<String, ControlError> {
        let answer = match self.token().await {
            Some(token) => match self.request(path, false, Some(&token)).await? {
                Answer::Status(401) => {
                    // The token was revoked or outlived its TTL: one retry with a new one.
                    *self.inner.token.lock().await = None;
                    let fresh = self.token().await.ok_or_else(|| {
                        meta_err(path, "HTTP error from metadata service to get imdsv2 token.")
                    })?;
                    self.request(path, false, Some(&fresh)).await?
                }
                a => a,
            },
            None if self.inner.disable_v1 => {
                return Err(meta_err(
                    path,
                    "HTTP error from metadata service to get imdsv2 token. (disable_imds_v1 is set, so IMDSv1 is not tried)",
                ))
            }
            None => {
                tracing::warn!("IMDSv2 http request failed, falling back to IMDSv1.");
                self.request(path, false, None).await?
            }
        };
        match answer {
            Answer::Ok(body) => Ok(body),
            Answer::Status(s) => Err(meta_err(path, format!("HTTP {s}"))),
        }
    }

    /// True when metadata answers at all (the probe of
    /// docs/behaviour/configuration.md#instance-metadata).
    pub async fn available(&self) -> bool {
        self.get("/latest/meta-data").await.is_ok()
    }

    pub async fn identity_document(&self) -> Result<IdentityDocument, ControlError> {
        let path = "/latest/dynamic/instance-identity/document";
        let body = self.get(path).await?;
        parse_identity_document(&body).map_err(|source| ControlError::MetadataDocument {
            path: path.to_string(),
            source,
        })
    }

    pub async fn partition(&self) -> Result<String, ControlError> {
        Ok(self
            .get("/latest/meta-data/services/partition")
            .await?
            .trim()
            .to_string())
    }

    pub async fn domain(&self) -> Result<String, ControlError> {
        Ok(self
            .get("/latest/meta-data/services/domain")
            .await?
            .trim()
            .to_string())
    }

    /// The instance-profile role, the first line of the security-credentials listing.
    pub async fn role_name(&self) -> Result<String, ControlError> {
        let path = "/latest/meta-data/iam/security-credentials/";
        let body = self.get(path).await?;
        body.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                meta_err(
                    path,
                    "no role: please check if this instance was started with an IAM instance profile",
                )
            })
    }

    pub async fn role_credentials(&self, role: &str) -> Result<Credentials, ControlError> {
        let path = format!("/latest/meta-data/iam/security-credentials/{role}");
        let body = self.get(&path).await?;
        parse_role_credentials(&body)
            .map_err(|source| ControlError::MetadataDocument { path, source })
    }
}

/// Why a metadata document (identity or role credentials) was refused; the field is named.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DocumentError {
    #[error("not JSON: {0}")]
    NotJson(#[source] Arc<serde_json::Error>),
    #[error("{field} is missing")]
    Missing { field: &'static str },
    #[error("Code is {code:?}, not \"Success\"")]
    NotSuccess { code: String },
    #[error("Expiration {text:?} is not a UTC timestamp")]
    Expiration { text: String },
}

/// Compared by message: `serde_json::Error` has no equality of its own.
impl PartialEq for DocumentError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for DocumentError {}

fn json_document(body: &str) -> Result<serde_json::Value, DocumentError> {
    serde_json::from_str(body.trim()).map_err(|e| DocumentError::NotJson(Arc::new(e)))
}

/// PURE: the identity document (whitespace around the body and the region is ignored).
pub fn parse_identity_document(body: &str) -> Result<IdentityDocument, DocumentError> {
    let v = json_document(body)?;
    let field = |k: &'static str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or(DocumentError::Missing { field: k })
    };
    Ok(IdentityDocument {
        region: field("region")?,
        account_id: field("accountId")?,
        instance_id: field("instanceId")?,
    })
}

/// PURE: a role-credentials document (`Code`, `AccessKeyId`, `SecretAccessKey`, `Token`,
/// `Expiration`).
pub fn parse_role_credentials(body: &str) -> Result<Credentials, DocumentError> {
    let v = json_document(body)?;
    let field = |k: &'static str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .ok_or(DocumentError::Missing { field: k })
    };
    if let Ok(code) = field("Code") {
        if code != "Success" {
            return Err(DocumentError::NotSuccess {
                code: code.to_string(),
            });
        }
    }
    let expiration = field("Expiration")?;
    let expiry = parse_timestamp(expiration).ok_or_else(|| DocumentError::Expiration {
        text: expiration.to_string(),
    })?;
    Ok(Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("Token")?.to_string()),
        Some(expiry),
        "ec2-instance-profile",
    ))
}

/// PURE: `YYYY-MM-DDTHH:MM:SS[.fff]Z` as a time.
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let time = time.split('.').next()?;
    let mut t = time.split(':');
    let (hh, mm, ss) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if d.next().is_some()
        || t.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's method.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// EC2 instance-profile credentials, refreshed five minutes before they expire. The role
/// name is looked up lazily so that a role attached after start-up is found.
#[derive(Debug, Clone)]
pub struct ImdsRoleCredentials {
    imds: Imds,
    state: Arc<Mutex<(Option<String>, Option<Credentials>)>>,
}

impl ImdsRoleCredentials {
    pub fn new(imds: Imds, role: Option<String>) -> Self {
        Self {
            imds,
            state: Arc::new(Mutex::new((role, None))),
        }
    }

    pub async fn current(&self) -> Result<Credentials, ControlError> {
        let mut state = self.state.lock().await;
        let now = SystemTime::now();
        if let Some(c) = &state.1 {
            if c.expiry()
                .is_some_and(|x| x > now + super::creds::REFRESH_MARGIN)
            {
                return Ok(c.clone());
            }
        }
        let role = match &state.0 {
            Some(r) => r.clone(),
            None => self.imds.role_name().await?,
        };
        match self.imds.role_credentials(&role).await {
            Ok(c) => {
                *state = (Some(role), Some(c.clone()));
                Ok(c)
            }
            Err(e) => match &state.1 {
                Some(c) if c.expiry().is_some_and(|x| x > now) => {
                    tracing::warn!("{e}; using the role credentials fetched before");
                    Ok(c.clone())
                }
                // Forget the role: it may have been replaced by another.
                _ => {
                    state.0 = None;
                    Err(e)
                }
            },
        }
    }
}

impl ProvideCredentials for ImdsRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.current()
                .await
                .map_err(|e| CredentialsError::not_loaded(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_timestamp("2024-02-29T12:34:56Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1709210096))
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:34:56.789Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1709210096))
        );
        for bad in [
            "",
            "2024-02-29 12:34:56Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "x-1-1T0:0:0Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn documents() {
        let d = parse_identity_document(
            " \n{\"region\":\" us-east-1 \",\"accountId\":\"123\",\"instanceId\":\"i-1\"}\n ",
        )
        .unwrap();
        assert_eq!(d.region, "us-east-1");
        assert_eq!(
            parse_identity_document("{}").unwrap_err().to_string(),
            "region is missing"
        );
        assert!(parse_identity_document("[")
            .unwrap_err()
            .to_string()
            .starts_with("not JSON: "));
        let c = parse_role_credentials(r#"{"Code":"Success","AccessKeyId":"AK","SecretAccessKey":"SK","Token":"T","Expiration":"2030-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(c.access_key_id(), "AK");
        assert_eq!(c.session_token(), Some("T"));
        assert_eq!(
            parse_role_credentials(r#"{"Code":"Failure"}"#)
                .unwrap_err()
                .to_string(),
            r#"Code is "Failure", not "Success""#
        );
        assert_eq!(parse_role_credentials(r#"{"Code":"Success","AccessKeyId":"AK","SecretAccessKey":"SK","Token":"T","Expiration":"soon"}"#).unwrap_err().to_string(), r#"Expiration "soon" is not a UTC timestamp"#);
    }
}
