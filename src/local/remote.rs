//! The downloader of a local run's S3 and GitHub locations: who S3 requests are signed as
//! (a pure choice, [`s3_access`]), then the one fetcher factory (`transfer::factory`).
//!
//! Invariants: credentials come from the on-premises file when it names them, else from
//! AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); the region from
//! AWS_REGION, else the on-premises file; a GitHub token from GITHUB_TOKEN. Nothing is
//! looked up for a GitHub location but the token.

use super::LocalError;
use crate::config::onprem::{self, OnPremises};
use crate::config::Config;
use crate::deployspec::Revision;
use crate::transfer::factory::{self, S3Access};
use aws_credential_types::provider::SharedCredentialsProvider;

const NO_CREDENTIALS: &str = "We were unable to download content from the Amazon S3 bucket due to missing or invalid credentials. For information about specifying your AWS credentials, see https://aws.amazon.com/blogs/security/a-new-and-standardized-way-to-manage-credentials-in-the-aws-sdks";
const NO_REGION: &str = "an S3 bundle location needs a region: set AWS_REGION";

/// The downloader for `revision` (S3 or GitHub) with `cfg`.
pub(super) fn fetcher(
    cfg: &Config,
    revision: &Revision,
) -> Result<crate::transfer::Fetcher, LocalError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let s3 = if matches!(revision, Revision::S3 { .. }) {
        let onprem = onprem::load(&cfg.on_premises_config_file)?;
        Some(s3_access(onprem, &env)?)
    } else {
        None
    };
    Ok(factory::fetcher(cfg, s3, env("GITHUB_TOKEN"), None)?)
}

/// PURE: who a local run's S3 requests are signed as, and the region. `env` returns a
/// variable's value when it is set and not empty.
fn s3_access(
    onprem: Option<OnPremises>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<S3Access, LocalError> {
    let keys = onprem
        .as_ref()
        .and_then(crate::control::OnPremisesKeys::from_file);
    let (credentials, onprem_region) = match keys {
        Some(keys) => (keys.provider, Some(keys.region.to_owned())),
        None => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
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
            _ => return Err(LocalError::Usage(NO_CREDENTIALS.into())),
        },
    };
    let region = env("AWS_REGION")
        .or(onprem_region)
        .ok_or_else(|| LocalError::Usage(NO_REGION.into()))?;
    Ok(S3Access {
        region,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::ProvideCredentials;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn user(region: &str) -> OnPremises {
        OnPremises::IamUser {
            region: region.into(),
            host_identifier: "arn:aws:iam::1:user/u".into(),
            access_key_id: "AKIDFILE".into(),
            secret_access_key: "file-secret".into(),
        }
    }

    fn key_id(access: &S3Access) -> String {
        let fut = access.credentials.provide_credentials();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(fut).unwrap().access_key_id().to_string()
    }

    #[test]
    fn environment_keys_and_region() {
        let env = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let a = s3_access(None, &env).unwrap();
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(key_id(&a), "AKIDENV");
        let inert = s3_access(Some(OnPremises::Inert), &env).unwrap();
        assert_eq!(key_id(&inert), "AKIDENV");
    }

    #[test]
    fn the_on_premises_file_comes_first_and_aws_region_overrides_its_region() {
        let env = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        let a = s3_access(Some(user("us-west-2")), &env).unwrap();
        assert_eq!(
            (a.region.as_str(), key_id(&a).as_str()),
            ("us-west-2", "AKIDFILE")
        );
        let env = vars(&[("AWS_REGION", "ap-south-1")]);
        assert_eq!(
            s3_access(Some(user("us-west-2")), &env).unwrap().region,
            "ap-south-1"
        );
    }

    #[test]
    fn missing_credentials_or_region_are_named() {
        let err = s3_access(None, &vars(&[("AWS_ACCESS_KEY_ID", "AKID")])).unwrap_err();
        assert_eq!(err.to_string(), NO_CREDENTIALS);
        let env = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        assert_eq!(s3_access(None, &env).unwrap_err().to_string(), NO_REGION);
    }
}
