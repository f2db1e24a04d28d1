//! Who this host is and how it signs: on-premises configuration (static keys or a session
//! credentials file) or EC2 instance metadata (docs/behaviour/configuration.md#on-premises-file,
//! docs/behaviour/configuration.md#instance-metadata, docs/behaviour/configuration.md#credentials).
//!
//! Invariant: the returned identity names its credential source in words fit for the
//! start-up log; credential providers refresh themselves, so an `Identity` lives as long as
//! the agent.

use super::creds::OnPremisesKeys;
use super::endpoint::partition_for_region;
use super::imds::{Imds, ImdsRoleCredentials};
use super::ControlError;
use crate::config::onprem::OnPremises;
use crate::config::Config;
use aws_credential_types::provider::SharedCredentialsProvider;

/// This host's identity and credentials.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `arn:<partition>:ec2:<region>:<account>:instance/<id>` or the on-premises IAM ARN.
    pub host_identifier: String,
    pub region: String,
    pub credentials: SharedCredentialsProvider,
    /// Where the credentials come from, for the start-up log.
    pub source: String,
    /// `services/domain` from instance metadata (EC2 only).
    pub imds_domain: Option<String>,
}

/// Values from the environment that take precedence over instance metadata
/// (docs/behaviour/configuration.md#instance-metadata):
/// `AWS_REGION` and `AWS_HOST_IDENTIFIER`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvOverrides {
    pub region: Option<String>,
    pub host_identifier: Option<String>,
}

impl EnvOverrides {
    pub fn from_env() -> Self {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Self {
            region: get("AWS_REGION"),
            host_identifier: get("AWS_HOST_IDENTIFIER"),
        }
    }
}

/// PURE: the EC2 host identifier.
pub fn instance_arn(partition: &str, region: &str, account_id: &str, instance_id: &str) -> String {
    format!("arn:{partition}:ec2:{region}:{account_id}:instance/{instance_id}")
}

/// Resolves the identity from the on-premises file (when it names one) or else instance
/// metadata at `AWS_EC2_METADATA_SERVICE_ENDPOINT` (default 169.254.169.254).
pub async fn resolve_identity(
    cfg: &Config,
    onprem: Option<&OnPremises>,
) -> Result<Identity, ControlError> {
    let imds = Imds::from_env(cfg.disable_imds_v1)?;
    resolve_identity_with(cfg, onprem, &imds, &EnvOverrides::from_env()).await
}

/// [`resolve_identity`] with the metadata client and environment given.
pub async fn resolve_identity_with(
    cfg: &Config,
    onprem: Option<&OnPremises>,
    imds: &Imds,
    env: &EnvOverrides,
) -> Result<Identity, ControlError> {
    let Some(keys) = onprem.and_then(OnPremisesKeys::from_file) else {
        return ec2_identity(imds, env).await;
    };
    let source = match &keys.session {
        Some(session) => {
            // Fail at start-up, naming the file, rather than at the first poll.
            session
                .current()
                .await
                .map_err(|source| ControlError::CredentialsFile {
                    operation: "start-up".into(),
                    source,
                })?;
            format!(
                "on-premises IAM session {} (credentials file {}, re-read when it changes)",
                keys.host_identifier,
                session.path().display()
            )
        }
        None => format!(
            "on-premises IAM user {} (static keys from {})",
            keys.host_identifier,
            cfg.on_premises_config_file.display()
        ),
    };
    Ok(Identity {
        host_identifier: keys.host_identifier.to_owned(),
        region: keys.region.to_owned(),
        credentials: keys.provider,
        source,
        imds_domain: None,
    })
}

async fn ec2_identity(imds: &Imds, env: &EnvOverrides) -> Result<Identity, ControlError> {
    let (region, host_identifier) = match (&env.region, &env.host_identifier) {
        (Some(r), Some(h)) => (r.clone(), h.clone()),
        _ => {
            let doc = imds.identity_document().await?;
            let region = env.region.clone().unwrap_or_else(|| doc.region.clone());
            let host = match &env.host_identifier {
                Some(h) => h.clone(),
                None => {
                    let partition = match imds.partition().await {
                        Ok(p) if !p.is_empty() => p,
                        _ => partition_for_region(&doc.region).to_string(),
                    };
                    instance_arn(&partition, &doc.region, &doc.account_id, &doc.instance_id)
                }
            };
            (region, host)
        }
    };
    let imds_domain = imds.domain().await.ok().filter(|d| !d.is_empty());
    let (role, source) = match imds.role_name().await {
        Ok(r) => (
            Some(r.clone()),
            format!(
                "EC2 instance profile role {r} (instance metadata at {})",
                imds.endpoint()
            ),
        ),
        Err(e) => {
            tracing::warn!(
                "Missing credentials - please check if this instance was started with an IAM instance profile ({e})"
            );
            (
                None,
                format!(
                    "EC2 instance profile (no role yet; instance metadata at {})",
                    imds.endpoint()
                ),
            )
        }
    };
    Ok(Identity {
        host_identifier,
        region,
        credentials: SharedCredentialsProvider::new(ImdsRoleCredentials::new(imds.clone(), role)),
        source,
        imds_domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn() {
        assert_eq!(
            instance_arn("aws", "us-east-1", "123456789012", "i-deadbeef"),
            "arn:aws:ec2:us-east-1:123456789012:instance/i-deadbeef"
        );
    }
}
