//! Errors of bundle transfer. Every variant names what was being fetched (bucket, key and version,
//! or the URL) so an operator can retry it by hand; messages the official agent produces
//! (docs/behaviour/bundles.md#s3-download, docs/behaviour/bundles.md#github-download) are kept word
//! for word where operators may match on them.

use std::io;
use std::path::PathBuf;

use crate::bundle::BundleError;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The object's ETag differs from the deployment's; the official wording
    /// (docs/behaviour/bundles.md#s3-download).
    #[error("Expected deployment artifact bundle etag {expected} but was actually {actual}")]
    EtagMismatch { expected: String, actual: String },

    /// S3 could not be reached. `hint` carries the official suffix
    /// (". Try using s3 endpoint override." or its FIPS variant).
    #[error("unable to connect to S3 for bucket '{bucket}' and key '{key}'{}: {detail}{hint}", version_note(.version))]
    S3Connect {
        bucket: String,
        key: String,
        version: Option<String>,
        detail: String,
        hint: String,
    },

    /// S3 answered with an error, or the download failed after the bounded retries.
    #[error("downloading from bucket '{bucket}' and key '{key}'{}: {detail}", version_note(.version))]
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
        detail: String,
    },

    /// The object changed while its parts were being fetched (a part's `If-Match` failed, or a
    /// part came back with another ETag or length): the bytes so far belong to another object.
    #[error("s3://{bucket}/{key} changed during the download (it had ETag {etag} when the download began; {detail}); nothing was installed, deploy again to fetch the new object")]
    Changed {
        bucket: String,
        key: String,
        etag: String,
        detail: String,
    },

    /// The bytes do not match what the object's ETag says about them.
    #[error("the bytes downloaded from bucket '{bucket}' and key '{key}'{} do not match the object: {detail}", version_note(.version))]
    Integrity {
        bucket: String,
        key: String,
        version: Option<String>,
        detail: String,
    },

    /// GitHub kept answering with error statuses; the official wording
    /// (docs/behaviour/bundles.md#github-download).
    #[error("Could not download bundle at '{url}' after {retries} retries. Server returned codes: {codes}")]
    GitHubStatus {
        url: String,
        retries: usize,
        codes: String,
    },

    /// A network or protocol error talking to GitHub (not retried, as the official agent).
    #[error("downloading bundle at '{url}': {detail}")]
    GitHub { url: String, detail: String },

    #[error("GitHub revision specified with bundle_type other than zip or tar [bundle_type={0}")]
    GitHubBundleType(String),

    /// The revision kind is not a download (local revisions are the executor's).
    #[error("{0}")]
    Unsupported(String),

    #[error("transfer settings: {0}")]
    Config(String),

    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Bundle(#[from] BundleError),

    #[error("internal error in the bundle transfer: {0}")]
    Internal(String),
}

fn version_note(version: &Option<String>) -> String {
    match version {
        Some(v) => format!(", version '{v}'"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_wordings() {
        let e = TransferError::EtagMismatch {
            expected: "abc".into(),
            actual: "\"def\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "Expected deployment artifact bundle etag abc but was actually \"def\""
        );
        let e = TransferError::S3Connect {
            bucket: "b".into(),
            key: "k".into(),
            version: Some("v1".into()),
            detail: "connection refused".into(),
            hint: ". Try using s3 endpoint override.".into(),
        };
        assert_eq!(
            e.to_string(),
            "unable to connect to S3 for bucket 'b' and key 'k', version 'v1': connection refused. Try using s3 endpoint override."
        );
    }
}
