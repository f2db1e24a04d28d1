//! PURE: validation of admin deployment requests and derived identifiers.

use crate::error::EmulatorError;
use crate::model::{DeploymentConfig, DeploymentRequest, Revision};

pub fn validate_request(req: &DeploymentRequest) -> Result<(), EmulatorError> {
    let bad = |m: String| Err(EmulatorError::BadRequest(m));
    if req.application.trim().is_empty() || req.group.trim().is_empty() {
        return bad("application and group must not be empty".into());
    }
    match &req.revision {
        Revision::S3 {
            bucket,
            key,
            bundle_type,
            ..
        } => {
            if bucket.is_empty() || key.is_empty() {
                return bad("revision.bucket and revision.key must not be empty".into());
            }
            if !matches!(bundle_type.as_str(), "tar" | "tgz" | "zip") {
                return bad(format!(
                    "revision.bundle_type must be tar, tgz or zip, not {bundle_type:?}"
                ));
            }
        }
        Revision::GitHub {
            account,
            repository,
            commit_id,
            ..
        } => {
            if account.is_empty() || repository.is_empty() || commit_id.is_empty() {
                return bad("revision.account, repository and commit_id must not be empty".into());
            }
        }
    }
    if let Some(f) = &req.file_exists_behavior {
        if !matches!(
            f.to_ascii_uppercase().as_str(),
            "DISALLOW" | "OVERWRITE" | "RETAIN"
        ) {
            return bad(format!(
                "file_exists_behavior must be DISALLOW, OVERWRITE or RETAIN, not {f:?}"
            ));
        }
    }
    if let DeploymentConfig::FleetPercent(p) = req.config {
        if p > 100 {
            return bad(format!("config.FleetPercent must be 0..=100, not {p}"));
        }
    }
    Ok(())
}

/// A stable id per application name (FNV-1a), safe inside a `/`-separated execution id.
pub fn application_id(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("a-{h:016x}")
}
