//! Credential providers: static keys, an on-premises session credentials file that is
//! re-read when it changes, and (in `imds.rs`) the EC2 instance-profile role.
//!
//! Invariant: credentials are refreshed in place: a provider hands out the newest keys on
//! each call; nothing needs a restart. A failed re-read keeps the previous keys only while
//! they are still within their assumed lifetime.

use crate::config::onprem::OnPremises;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use codedeploy_core::oserror::OsError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// The official agent treats session-file credentials as expiring this long after each read.
pub const SESSION_FILE_LIFETIME: Duration = Duration::from_secs(1800);
/// Credentials are refreshed this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Who an on-premises host signs as, from its file: the one mapping from [`OnPremises`] to a
/// credentials provider, used by the daemon's identity and by a local run's S3 downloads.
pub struct OnPremisesKeys<'a> {
    pub provider: SharedCredentialsProvider,
    pub region: &'a str,
    pub host_identifier: &'a str,
    /// The session credentials file's reader (sharing the provider's cache), when the keys
    /// are re-read from one.
    pub session: Option<SessionFileCredentials>,
}

impl<'a> OnPremisesKeys<'a> {
    /// `None` when the file names no identity (EC2 metadata or the environment is used).
    pub fn from_file(onprem: &'a OnPremises) -> Option<Self> {
        match onprem {
            OnPremises::IamUser {
                region,
                host_identifier,
                access_key_id,
                secret_access_key,
            } => Some(Self {
                provider: SharedCredentialsProvider::new(static_credentials(
                    access_key_id,
                    secret_access_key,
                )),
                region,
                host_identifier,
                session: None,
            }),
            OnPremises::IamSession {
                region,
                host_identifier,
                credentials_file,
            } => {
                let session = SessionFileCredentials::new(credentials_file);
                Some(Self {
                    provider: SharedCredentialsProvider::new(session.clone()),
                    region,
                    host_identifier,
                    session: Some(session),
                })
            }
            OnPremises::Inert => None,
        }
    }
}

/// Static keys (on-premises IAM user).
pub fn static_credentials(access_key_id: &str, secret_access_key: &str) -> Credentials {
    Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        "on-premises-static",
    )
}

/// Keys read from a shared-credentials-format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Why a shared-credentials file gives no keys: the profile or the key that is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsFileError {
    #[error("no [{profile}] profile")]
    NoProfile { profile: String },
    #[error("[{profile}] has no {key}")]
    MissingKey { profile: String, key: &'static str },
}

/// Why the session credentials file could not be read, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to load credentials from path {}: {cause}", .path.display())]
pub struct SessionFileError {
    pub path: PathBuf,
    #[source]
    pub cause: SessionFileCause,
}

/// The cause inside a [`SessionFileError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionFileCause {
    #[error(transparent)]
    Io(#[from] OsError),
    #[error(transparent)]
    Parse(#[from] CredentialsFileError),
}

/// PURE: the `[profile]` section of a shared-credentials file (INI: `key = value`, `#`/`;`
/// comments). Errors name the key that is missing.
pub fn parse_credentials_file(text: &str, profile: &str) -> Result<FileKeys, CredentialsFileError> {
    let mut in_profile = false;
    let mut seen_profile = false;
    let (mut ak, mut sk, mut tok) = (None, None, None);
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_profile = name == profile || name == format!("profile {profile}");
            seen_profile |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => ak = Some(v),
            "aws_secret_access_key" => sk = Some(v),
            "aws_session_token" => tok = Some(v).filter(|t| !t.is_empty()),
            _ => {}
        }
    }
    if !seen_profile {
        return Err(CredentialsFileError::NoProfile {
            profile: profile.to_string(),
        });
    }
    let need = |v: Option<String>, key: &'static str| {
        v.filter(|v| !v.is_empty())
            .ok_or_else(|| CredentialsFileError::MissingKey {
                profile: profile.to_string(),
                key,
            })
    };
    Ok(FileKeys {
        access_key_id: need(ak, "aws_access_key_id")?,
        secret_access_key: need(sk, "aws_secret_access_key")?,
        session_token: tok,
    })
}

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        mtime: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

#[derive(Debug)]
struct Cached {
    creds: Credentials,
    stamp: Stamp,
    read_at: SystemTime,
}

/// On-premises IAM session: profile `default` of a shared-credentials file that another
/// program (the AWS IoT/IAM Roles Anywhere helper, a cron job) rewrites. The file is re-read
/// when its modification time, size or inode changes, and at the latest 25 minutes after the
/// last read.
#[derive(Debug, Clone)]
pub struct SessionFileCredentials {
    path: PathBuf,
    cache: Arc<Mutex<Option<Cached>>>,
}

impl SessionFileCredentials {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cache: Arc::new(Mutex::new(None)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Cached, SessionFileError> {
        let fail = |cause: SessionFileCause| SessionFileError {
            path: self.path.clone(),
            cause,
        };
        let io = |e: std::io::Error| fail(OsError::from(e).into());
        let before = stamp(&self.path).map_err(io)?;
        let text = std::fs::read_to_string(&self.path).map_err(io)?;
        let keys = parse_credentials_file(&text, "default").map_err(|e| fail(e.into()))?;
        let read_at = SystemTime::now();
        Ok(Cached {
            creds: Credentials::new(
                keys.access_key_id,
                keys.secret_access_key,
                keys.session_token,
                Some(read_at + SESSION_FILE_LIFETIME),
                "on-premises-session-file",
            ),
            stamp: before,
            read_at,
        })
    }

    /// The current keys, re-reading the file when it changed or the keys are old.
    pub async fn current(&self) -> Result<Credentials, SessionFileError> {
        let mut cache = self.cache.lock().await;
        let now = SystemTime::now();
        let on_disk = stamp(&self.path).ok();
        if let Some(c) = cache.as_ref() {
            let fresh = now
                .duration_since(c.read_at)
                .is_ok_and(|age| age + REFRESH_MARGIN < SESSION_FILE_LIFETIME);
            if fresh && on_disk == Some(c.stamp) {
                return Ok(c.creds.clone());
            }
        }
        match self.read() {
            Ok(c) => {
                if cache.is_some() {
                    tracing::info!("re-read session credentials from {}", self.path.display());
                }
                let creds = c.creds.clone();
                *cache = Some(c);
                Ok(creds)
            }
            Err(e) => match cache.as_ref() {
                Some(c) if c.creds.expiry().is_some_and(|x| x > now) => {
                    tracing::warn!("{e}; keeping the keys read before");
                    Ok(c.creds.clone())
                }
                _ => Err(e),
            },
        }
    }
}

impl ProvideCredentials for SessionFileCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.current().await.map_err(CredentialsError::not_loaded)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_profile() {
        let t = "# made by a helper\n[other]\naws_access_key_id = X\n\n[default]\naws_access_key_id = AK\naws_secret_access_key=SK \naws_session_token = TOK\n";
        assert_eq!(
            parse_credentials_file(t, "default").unwrap(),
            FileKeys {
                access_key_id: "AK".into(),
                secret_access_key: "SK".into(),
                session_token: Some("TOK".into())
            }
        );
        let t = "[default]\naws_access_key_id=AK\naws_secret_access_key=SK\n";
        assert_eq!(
            parse_credentials_file(t, "default").unwrap().session_token,
            None
        );
        assert_eq!(
            parse_credentials_file("[x]\n", "default")
                .unwrap_err()
                .to_string(),
            "no [default] profile"
        );
        assert_eq!(
            parse_credentials_file("[default]\naws_access_key_id=A\n", "default")
                .unwrap_err()
                .to_string(),
            "[default] has no aws_secret_access_key"
        );
    }

    #[test]
    fn session_file_error_names_the_file() {
        let e = SessionFileError {
            path: "/etc/codedeploy-agent/session".into(),
            cause: CredentialsFileError::NoProfile {
                profile: "default".into(),
            }
            .into(),
        };
        assert_eq!(
            e.to_string(),
            "Failed to load credentials from path /etc/codedeploy-agent/session: no [default] profile"
        );
    }
}
