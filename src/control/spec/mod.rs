//! The deployment-specification envelope (docs/behaviour/deployment-spec.md#spec-envelope):
//! `PKCS7/JSON` payloads are verified before use; `TEXT/JSON` is accepted only in local or
//! developer mode.
//!
//! Invariant: `open_envelope` returns JSON text only when its signature verified (and, with
//! trust anchors, the signer chains to them); a spec whose content was altered is refused,
//! unlike the official agent which ignores the verification result. See ADR 0005.

mod algo;
mod pkcs7;
mod signer_info;
mod tlv;

pub use algo::AlgoError;
pub use pkcs7::{Cert, DecodeError, ParseError, Pkcs7Failure, SignatureError, TrustError};
pub use signer_info::SignerInfoError;
pub use tlv::TlvError;

use super::Envelope;
use crate::deployspec::{DeploymentSpec, SpecError};
use codedeploy_core::oserror::OsError;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const FORMAT_PKCS7_JSON: &str = "PKCS7/JSON";
pub const FORMAT_TEXT_JSON: &str = "TEXT/JSON";

/// Which envelope formats are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormatPolicy {
    /// The daemon talking to the real service: signed specs only.
    PkcsOnly,
    /// `deploy-local` or developer mode: unsigned `TEXT/JSON` too.
    AllowTextJson,
}

/// A deployment specification that must not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecEnvelopeError {
    #[error("Unsupported DeploymentSpecification format: {0}")]
    UnsupportedFormat(String),
    #[error("Could not parse the PKCS7: {0}")]
    Parse(#[source] ParseError),
    /// The payload is neither PEM with a PKCS7 block, base64 nor DER.
    #[error("Could not parse the PKCS7: {0}")]
    Payload(#[source] PemError),
    #[error("deployment specification refused: signature check failed: {0}")]
    Signature(#[source] SignatureError),
    #[error("deployment specification refused: untrusted signer: {0}")]
    Untrusted(#[source] TrustError),
    #[error("deployment specification refused: the signed content is not UTF-8 text")]
    NotText,
    #[error("Could not load certificate store '{}': {source}", path.display())]
    TrustStore {
        path: PathBuf,
        #[source]
        source: TrustStoreError,
    },
    #[error("{0}")]
    Spec(#[from] SpecError),
}

/// A PEM text that does not read as PEM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("unterminated PEM BEGIN line")]
    UnterminatedBegin,
    #[error("PEM block {label} has no END line")]
    NoEnd { label: String },
    #[error("PEM block {label} is not valid base64: {source}")]
    Base64 {
        label: String,
        #[source]
        source: base64ct::Error,
    },
    #[error("no PKCS7 PEM block")]
    NoPkcs7Block,
}

/// Why `deployment_spec_ca_file` gives no trust anchors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustStoreError {
    #[error(transparent)]
    Read(OsError),
    #[error("not a PEM text file")]
    NotText,
    #[error(transparent)]
    Pem(#[from] PemError),
    /// Blocks are counted from 1, in file order.
    #[error("PEM block {block}: {source}")]
    Certificate {
        block: usize,
        #[source]
        source: ParseError,
    },
    #[error("no CERTIFICATE in the file")]
    NoCertificate,
}

impl From<Pkcs7Failure> for SpecEnvelopeError {
    fn from(f: Pkcs7Failure) -> Self {
        match f {
            Pkcs7Failure::Parse(m) => Self::Parse(m),
            Pkcs7Failure::Signature(m) => Self::Signature(m),
            Pkcs7Failure::Untrusted(m) => Self::Untrusted(m),
        }
    }
}

/// Certificates a deployment-spec signer must chain to (`deployment_spec_ca_file`).
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    certs: Vec<Cert>,
    source: PathBuf,
}

impl TrustAnchors {
    pub fn from_pem_file(path: &Path) -> Result<Self, SpecEnvelopeError> {
        let fail = |source: TrustStoreError| SpecEnvelopeError::TrustStore {
            path: path.to_path_buf(),
            source,
        };
        let text = std::fs::read(path).map_err(|e| fail(TrustStoreError::Read(e.into())))?;
        Self::from_pem(&text, path).map_err(fail)
    }

    /// Every `CERTIFICATE` block of `pem`; `source` only names it in messages.
    pub fn from_pem(pem: &[u8], source: &Path) -> Result<Self, TrustStoreError> {
        let text = std::str::from_utf8(pem).map_err(|_| TrustStoreError::NotText)?;
        let mut certs = Vec::new();
        for (i, (label, der)) in pem_blocks(text)?.into_iter().enumerate() {
            if label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE" {
                certs.push(Cert::from_der(&der).map_err(|source| {
                    TrustStoreError::Certificate {
                        block: i + 1,
                        source,
                    }
                })?);
            }
        }
        if certs.is_empty() {
            return Err(TrustStoreError::NoCertificate);
        }
        Ok(Self {
            certs,
            source: source.to_path_buf(),
        })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The subjects of the anchors, for the start-up log.
    pub fn subjects(&self) -> Vec<String> {
        self.certs.iter().map(Cert::subject).collect()
    }

    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// PEM blocks of `text` as (label, bytes); tolerant of line width and CRLF.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, PemError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or(PemError::UnterminatedBegin)?;
        let label = after[..label_end].trim().to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_start
            .find(&end_marker)
            .ok_or_else(|| PemError::NoEnd {
                label: label.clone(),
            })?;
        let b64: String = body_start[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64ct::Base64::decode_vec(&b64).map_err(|source| PemError::Base64 {
            label: label.clone(),
            source,
        })?;
        out.push((label, der));
        rest = &body_start[end + end_marker.len()..];
    }
    Ok(out)
}

use base64ct::Encoding as _;

/// The DER of a PKCS#7 payload: PEM (`PKCS7`, `CMS`), bare base64, or raw DER.
fn payload_der(payload: &str) -> Result<Vec<u8>, PemError> {
    if payload.contains("-----BEGIN ") {
        let blocks = pem_blocks(payload)?;
        return blocks
            .into_iter()
            .find(|(l, _)| matches!(l.as_str(), "PKCS7" | "CMS" | "PKCS #7 SIGNED DATA"))
            .map(|(_, d)| d)
            .ok_or(PemError::NoPkcs7Block);
    }
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if let Ok(der) = base64ct::Base64::decode_vec(&compact) {
        return Ok(der);
    }
    Ok(payload.as_bytes().to_vec())
}

/// Opens the envelope at the current time; see [`open_envelope_at`].
pub fn open_envelope(
    env: &Envelope,
    policy: SpecFormatPolicy,
    trust: Option<&TrustAnchors>,
) -> Result<String, SpecEnvelopeError> {
    open_envelope_at(env, policy, trust, SystemTime::now())
}

/// The JSON text of a deployment specification, after checking its format against `policy`
/// and, for `PKCS7/JSON`, its signature (and chain to `trust` as of `now`).
pub fn open_envelope_at(
    env: &Envelope,
    policy: SpecFormatPolicy,
    trust: Option<&TrustAnchors>,
    now: SystemTime,
) -> Result<String, SpecEnvelopeError> {
    match (env.format.as_str(), policy) {
        (FORMAT_PKCS7_JSON, _) => {
            let der = payload_der(&env.payload).map_err(SpecEnvelopeError::Payload)?;
            let content = pkcs7::verify(&der, trust.map(|t| t.certs.as_slice()), now)?;
            String::from_utf8(content).map_err(|_| SpecEnvelopeError::NotText)
        }
        (FORMAT_TEXT_JSON, SpecFormatPolicy::AllowTextJson) => Ok(env.payload.clone()),
        (other, _) => Err(SpecEnvelopeError::UnsupportedFormat(other.to_string())),
    }
}

/// Opens the envelope and decodes every field of the specification
/// (docs/behaviour/deployment-spec.md#spec-fields).
pub fn open_and_decode(
    env: &Envelope,
    policy: SpecFormatPolicy,
    trust: Option<&TrustAnchors>,
) -> Result<DeploymentSpec, SpecEnvelopeError> {
    let text = open_envelope(env, policy, trust)?;
    Ok(crate::deployspec::decode(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(format: &str, payload: &str) -> Envelope {
        Envelope {
            format: format.into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn formats_and_policy() {
        let t = env("TEXT/JSON", "{}");
        assert_eq!(
            open_envelope(&t, SpecFormatPolicy::AllowTextJson, None).unwrap(),
            "{}"
        );
        assert_eq!(
            open_envelope(&t, SpecFormatPolicy::PkcsOnly, None)
                .unwrap_err()
                .to_string(),
            "Unsupported DeploymentSpecification format: TEXT/JSON"
        );
        assert_eq!(
            open_envelope(&env("", "{}"), SpecFormatPolicy::AllowTextJson, None)
                .unwrap_err()
                .to_string(),
            "Unsupported DeploymentSpecification format: "
        );
        let e = open_envelope(
            &env("PKCS7/JSON", "not pkcs7 at all"),
            SpecFormatPolicy::PkcsOnly,
            None,
        )
        .unwrap_err();
        assert!(matches!(e, SpecEnvelopeError::Parse(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "Could not parse the PKCS7: element of 111 bytes runs past the end of the data"
        );
        let e = open_envelope(
            &env(
                "PKCS7/JSON",
                "-----BEGIN PKCS7-----\n!!\n-----END PKCS7-----\n",
            ),
            SpecFormatPolicy::PkcsOnly,
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("Could not parse the PKCS7:"),
            "{e}"
        );
    }

    #[test]
    fn pem_tolerance() {
        let b =
            pem_blocks("junk\r\n-----BEGIN X-----\r\nAAEC\r\nAw==\r\n-----END X-----\r\n").unwrap();
        assert_eq!(b, vec![("X".to_string(), vec![0, 1, 2, 3])]);
        assert!(pem_blocks("-----BEGIN X-----\nAAEC\n").is_err());
        assert_eq!(
            TrustAnchors::from_pem(b"nothing here", Path::new("/x")).unwrap_err(),
            TrustStoreError::NoCertificate
        );
        let e =
            TrustAnchors::from_pem(b"-----BEGIN X-----\n!!\n-----END X-----\n", Path::new("/x"))
                .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PEM block X is not valid base64: "),
            "{e}"
        );
    }
}
