//! The one way the daemon and `deploy-local` build their S3 and GitHub downloader from the
//! agent's configuration: they differ only in where the credentials, the region and a
//! GitHub token come from (the daemon: its identity; deploy-local: the on-premises file or
//! the environment), never in how the configuration is applied.
//!
//! Invariants: S3 follows `s3_proxy_uri`, else `proxy_uri`, else the environment; GitHub follows
//! the environment only, as the official agent (docs/behaviour/configuration.md#proxy-and-tls,
//! docs/proxies.md); `s3_endpoint_override` and `use_fips_mode` apply to S3 alone;
//! `github_api_endpoint` to GitHub alone.

use super::{Fetcher, GitHubSettings, S3Settings, TransferError};
use crate::config::Config;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::runtime::Handle;

/// Who S3 requests are signed as, and in which region.
#[derive(Debug, Clone)]
pub struct S3Access {
    pub region: String,
    pub credentials: SharedCredentialsProvider,
}

/// PURE: the S3 settings of `cfg` for `access`.
pub fn s3_settings(cfg: &Config, access: S3Access) -> S3Settings {
    S3Settings {
        region: access.region,
        endpoint_override: cfg.s3_endpoint_override.clone(),
        use_fips: cfg.use_fips_mode,
        proxy: cfg.s3_proxy(),
        credentials: access.credentials,
    }
}

/// PURE: the GitHub settings of `cfg`, with the token used when a deployment brings none.
pub fn github_settings(cfg: &Config, token: Option<String>) -> GitHubSettings {
    GitHubSettings {
        api_base: cfg.github_api_endpoint.clone(),
        token,
        proxy: crate::proxy::Configured::default(),
    }
}

/// The downloader for `cfg`: S3 when `s3` is given, GitHub always. `runtime` as in
/// [`Fetcher::new`].
pub fn fetcher(
    cfg: &Config,
    s3: Option<S3Access>,
    github_token: Option<String>,
    runtime: Option<Handle>,
) -> Result<Fetcher, TransferError> {
    Fetcher::with_tuning(
        s3.map(|a| s3_settings(cfg, a)),
        github_settings(cfg, github_token),
        runtime,
        crate::transfer::Tuning::from_config(cfg),
    )
    .map(|f| f.keep_bundle_archive(cfg.keep_bundle_archive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_applies_to_the_right_service() {
        let cfg = Config {
            proxy_uri: crate::proxy::Setting::parse("http://proxy:3128").unwrap(),
            s3_endpoint_override: Some("http://127.0.0.1:9000".into()),
            use_fips_mode: true,
            github_api_endpoint: "http://127.0.0.1:8080".into(),
            ..Config::default()
        };
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "id", "secret", None, None, "test",
        ));
        let s3 = s3_settings(
            &cfg,
            S3Access {
                region: "eu-west-1".into(),
                credentials: creds,
            },
        );
        assert_eq!(s3.region, "eu-west-1");
        assert_eq!(s3.proxy, cfg.s3_proxy());
        assert_eq!(s3.proxy.key, "proxy_uri");
        assert_ne!(s3.proxy.setting, crate::proxy::Setting::Unset);
        assert_eq!(
            s3.endpoint_override.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert!(s3.use_fips);
        let gh = github_settings(&cfg, Some("t".into()));
        assert_eq!(gh.api_base, "http://127.0.0.1:8080");
        assert_eq!(gh.token.as_deref(), Some("t"));
        assert_eq!(
            gh.proxy,
            crate::proxy::Configured::default(),
            "proxy_uri never applies to GitHub"
        );
    }
}
