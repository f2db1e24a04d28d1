//! PURE: which URL, SigV4 signing name and JSON target prefix the host-command client uses
//! (docs/behaviour/configuration.md#command-endpoint and the model table of
//! docs/behaviour/protocol.md#api-models).
//!
//! Invariant: a resolved URL is `deploy_control_endpoint` verbatim (after checking it is an
//! http(s) URL) or `https://<label>.<region>.<domain>` built from a region and domain that
//! cannot smuggle anything else into the URL.

use super::ControlError;

/// What endpoint resolution depends on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointInputs {
    /// `deploy_control_endpoint`: used verbatim when set.
    pub override_url: Option<String>,
    /// The region the agent runs in (on-premises config or the instance identity document);
    /// also the SigV4 signing region.
    pub region: String,
    /// `services/domain` from instance metadata, when metadata answered.
    pub imds_domain: Option<String>,
    /// `enable_auth_policy`: the secure model (signing name and target prefix change).
    pub enable_auth_policy: bool,
    /// `use_fips_mode`.
    pub use_fips: bool,
}

impl EndpointInputs {
    /// The inputs the agent's configuration and identity give: `deploy_control_endpoint`,
    /// `enable_auth_policy`, `use_fips_mode`, the identity's region and metadata domain.
    pub fn from_config(
        cfg: &crate::config::Config,
        region: &str,
        imds_domain: Option<&str>,
    ) -> Self {
        Self {
            override_url: cfg.deploy_control_endpoint.clone(),
            region: region.to_string(),
            imds_domain: imds_domain.map(str::to_string),
            enable_auth_policy: cfg.enable_auth_policy,
            use_fips: cfg.use_fips_mode,
        }
    }
}

/// Where and how to call the host-command service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    pub url: String,
    pub signing_name: String,
    pub target_prefix: String,
    pub region: String,
}

pub const SIGNING_NAME: &str = "codedeploy-commands";
pub const SIGNING_NAME_SECURE: &str = "codedeploy-commands-secure";
pub const TARGET_PREFIX: &str = "CodeDeployCommandService_v20141006";
pub const TARGET_PREFIX_SECURE: &str = "CodeDeployCommandService";

/// Resolves the endpoint; errors name the offending input.
pub fn resolve_endpoint(i: &EndpointInputs) -> Result<ResolvedEndpoint, ControlError> {
    let (signing_name, target_prefix) = if i.enable_auth_policy {
        (SIGNING_NAME_SECURE, TARGET_PREFIX_SECURE)
    } else {
        (SIGNING_NAME, TARGET_PREFIX)
    };
    check_region(&i.region)?;
    let url = match i
        .override_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(u) => check_url(u)?,
        None => {
            let mut label = String::from("codedeploy-commands");
            if i.enable_auth_policy {
                label.push_str("-secure");
            }
            if i.use_fips {
                label.push_str("-fips");
            }
            let domain = match i
                .imds_domain
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
            {
                Some(d) => check_domain(d, &i.region)?,
                None => domain_for_region(&i.region).to_string(),
            };
            format!("https://{label}.{}.{domain}", i.region)
        }
    };
    Ok(ResolvedEndpoint {
        url,
        signing_name: signing_name.into(),
        target_prefix: target_prefix.into(),
        region: i.region.clone(),
    })
}

/// The DNS suffix of a region when metadata does not say
/// (docs/behaviour/configuration.md#endpoint-without-imds).
pub fn domain_for_region(region: &str) -> &'static str {
    let first = region.split('-').next().unwrap_or_default();
    match first {
        "cn" => "amazonaws.com.cn",
        "eusc" => "amazonaws.eu",
        _ => "amazonaws.com",
    }
}

/// The partition of a region when metadata does not say.
pub fn partition_for_region(region: &str) -> &'static str {
    match region.split('-').next().unwrap_or_default() {
        "cn" => "aws-cn",
        "eusc" => "aws-eusc",
        "us" if region.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

fn check_region(region: &str) -> Result<(), ControlError> {
    let ok = !region.is_empty()
        && region.len() <= 20
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ControlError::config(
            "region",
            format!("Invalid region: {region:?} (expected lower-case letters, digits and '-', at most 20)"),
        ))
    }
}

/// Known domains keep their region rules (partition-region-pattern.json); other domains
/// (isolated partitions) are accepted when they are plain DNS names.
fn check_domain(domain: &str, region: &str) -> Result<String, ControlError> {
    let dns_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !dns_ok {
        return Err(ControlError::config(
            "services/domain",
            format!("Unknown domain: {domain:?}"),
        ));
    }
    let domain = domain.to_ascii_lowercase();
    if domain == "amazonaws.com.cn" {
        let mut parts = region.split('-');
        let ok = parts.next() == Some("cn")
            && parts.next().is_some_and(|p| !p.is_empty())
            && parts
                .next()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && parts.next().is_none();
        if !ok {
            return Err(ControlError::config(
                "region",
                format!("Invalid region: {region} (not a region of {domain})"),
            ));
        }
    }
    Ok(domain)
}

fn check_url(u: &str) -> Result<String, ControlError> {
    let parsed = reqwest::Url::parse(u).map_err(|e| {
        ControlError::config(
            "deploy_control_endpoint",
            format!("{u:?} is not a URL: {e}"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ControlError::config(
            "deploy_control_endpoint",
            format!("{u:?} is not an http:// or https:// URL with a host"),
        ));
    }
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(region: &str) -> EndpointInputs {
        EndpointInputs {
            region: region.into(),
            ..Default::default()
        }
    }

    fn url(i: &EndpointInputs) -> String {
        resolve_endpoint(i).unwrap().url
    }

    #[test]
    fn table_of_spec_2_4() {
        let mut i = inputs("us-west-2");
        let r = resolve_endpoint(&i).unwrap();
        assert_eq!(r.url, "https://codedeploy-commands.us-west-2.amazonaws.com");
        assert_eq!(r.signing_name, "codedeploy-commands");
        assert_eq!(r.target_prefix, "CodeDeployCommandService_v20141006");
        assert_eq!(r.region, "us-west-2");
        i.use_fips = true;
        assert_eq!(
            url(&i),
            "https://codedeploy-commands-fips.us-west-2.amazonaws.com"
        );
        assert_eq!(
            resolve_endpoint(&i).unwrap().signing_name,
            "codedeploy-commands"
        );
        i.enable_auth_policy = true;
        let r = resolve_endpoint(&i).unwrap();
        assert_eq!(
            r.url,
            "https://codedeploy-commands-secure-fips.us-west-2.amazonaws.com"
        );
        assert_eq!(r.signing_name, "codedeploy-commands-secure");
        assert_eq!(r.target_prefix, "CodeDeployCommandService");
        i.use_fips = false;
        assert_eq!(
            url(&i),
            "https://codedeploy-commands-secure.us-west-2.amazonaws.com"
        );
        assert_eq!(
            url(&inputs("cn-north-1")),
            "https://codedeploy-commands.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            url(&inputs("eusc-de-east-1")),
            "https://codedeploy-commands.eusc-de-east-1.amazonaws.eu"
        );
    }

    #[test]
    fn imds_domain_wins_and_is_checked() {
        let mut i = inputs("us-iso-east-1");
        i.imds_domain = Some("c2s.ic.gov".into());
        assert_eq!(
            url(&i),
            "https://codedeploy-commands.us-iso-east-1.c2s.ic.gov"
        );
        i.imds_domain = Some("evil.com/x?".into());
        assert!(resolve_endpoint(&i)
            .unwrap_err()
            .to_string()
            .contains("Unknown domain"));
        let mut i = inputs("us-east-1");
        i.imds_domain = Some("amazonaws.com.cn".into());
        assert!(resolve_endpoint(&i)
            .unwrap_err()
            .to_string()
            .contains("Invalid region: us-east-1"));
    }

    #[test]
    fn override_is_verbatim_but_checked() {
        let mut i = inputs("us-east-1");
        i.override_url = Some("http://127.0.0.1:8443".into());
        i.enable_auth_policy = true;
        let r = resolve_endpoint(&i).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8443");
        assert_eq!(r.signing_name, "codedeploy-commands-secure");
        i.override_url = Some("ftp://x".into());
        let e = resolve_endpoint(&i).unwrap_err().to_string();
        assert!(e.starts_with("deploy_control_endpoint:"), "{e}");
    }

    #[test]
    fn bad_regions() {
        for r in [
            "",
            "US-EAST-1",
            "us-east-1.evil.com",
            "a-very-long-region-name-1",
        ] {
            let e = resolve_endpoint(&inputs(r)).unwrap_err().to_string();
            assert!(e.starts_with("region: Invalid region"), "{r}: {e}");
        }
    }

    #[test]
    fn inputs_from_config() {
        let cfg = crate::config::Config {
            enable_auth_policy: true,
            use_fips_mode: true,
            ..Default::default()
        };
        let i = EndpointInputs::from_config(&cfg, "us-east-2", Some("amazonaws.com"));
        assert_eq!(
            url(&i),
            "https://codedeploy-commands-secure-fips.us-east-2.amazonaws.com"
        );
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_for_region("us-east-1"), "aws");
        assert_eq!(partition_for_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_for_region("us-gov-west-1"), "aws-us-gov");
    }
}
