//! PURE: verification of a PKCS#7/CMS SignedData with attached content (RFC 5652 §5), and
//! of the signer's certificate chain to configured trust anchors. The clock is an argument.
//!
//! Invariants: content is returned only when at least one SignerInfo exists and every
//! SignerInfo verifies: its certificate is found in the SignedData, the messageDigest
//! attribute equals the content's digest, and the signature over the exact signed bytes
//! holds. With trust anchors, each signer must also chain to an anchor through certificates
//! that are valid at `now`.

use super::algo::{self, AlgoError, Hash};
use super::signer_info::{self, SignerId, SignerInfo, SignerInfoError};
use super::tlv::{self, TlvError};
use const_oid::ObjectIdentifier as Oid;
use der::{Decode, Encode};
use std::time::SystemTime;
use x509_cert::Certificate;

const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const CONTENT_TYPE_ATTR: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST_ATTR: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
const MAX_CHAIN: usize = 8;

/// Why a SignedData was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs7Failure {
    /// Not a well-formed SignedData.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Well-formed, but the content or a signature does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Verified, but the signer does not chain to a trust anchor (or a certificate is out of
    /// its validity period).
    #[error(transparent)]
    Untrusted(#[from] TrustError),
}

/// DER that could not be decoded: the structure check or the `der` crate refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Tlv(#[from] TlvError),
    #[error(transparent)]
    Der(#[from] der::Error),
}

/// What is malformed in a SignedData or a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Tlv(#[from] TlvError),
    #[error("bad certificate: {0}")]
    Certificate(#[source] DecodeError),
    #[error("certificate has no TBSCertificate")]
    NoTbs,
    /// A decoded certificate's key could not be encoded again.
    #[error(transparent)]
    Encode(der::Error),
    #[error("data after the ContentInfo")]
    TrailingData,
    #[error("empty ContentInfo")]
    EmptyContentInfo,
    #[error("the ContentInfo is not SignedData")]
    NotSignedData,
    #[error("ContentInfo has no content")]
    NoContent,
    #[error("SignedData is empty")]
    EmptySignedData,
    /// A mandatory field of SignedData (`version`, `digestAlgorithms`, ...) is absent.
    #[error("SignedData has no {field}")]
    Missing { field: &'static str },
    #[error("encapContentInfo has no eContentType")]
    NoContentType,
    #[error("eContentType: {0}")]
    ContentType(#[source] der::Error),
    #[error("the content is detached; the deployment spec must be attached")]
    Detached,
    #[error("eContent is empty")]
    EmptyEContent,
    #[error("unexpected element with tag 0x{tag:02x} in SignedData")]
    UnexpectedTag { tag: u8 },
    #[error(transparent)]
    SignerInfo(#[from] SignerInfoError),
    #[error("malformed signed attribute")]
    MalformedAttribute,
    #[error(transparent)]
    AttributeOid(der::Error),
    #[error("attribute {oid} has no value")]
    AttributeNoValue { oid: Oid },
}

/// Why a well-formed SignedData does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the SignedData has no signer")]
    NoSigner,
    #[error(transparent)]
    Digest(#[from] AlgoError),
    #[error("the signer's certificate is not in the SignedData")]
    SignerNotFound,
    #[error("the content does not match its signed digest (it was altered)")]
    Altered,
    #[error("the signed content type differs from the content's")]
    ContentTypeDiffers,
    #[error("signed attributes lack a messageDigest")]
    NoMessageDigest,
    #[error("signer {subject}: {source}")]
    Signer {
        subject: String,
        #[source]
        source: AlgoError,
    },
}

/// Why a verified signer is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("certificate {subject} is not valid before {not_before}")]
    NotYetValid {
        subject: String,
        not_before: x509_cert::time::Time,
    },
    #[error("certificate {subject} expired at {not_after}")]
    Expired {
        subject: String,
        not_after: x509_cert::time::Time,
    },
    #[error("the signer certificate {subject} does not chain to a configured trust anchor")]
    NoChain { subject: String },
}

/// A certificate with the exact bytes its signature covers.
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    tbs: Vec<u8>,
}

/// The one way outside DER reaches the `der` crate: [`tlv::check_tree`] first, because `der`
/// sizes a buffer from an element's stated length before reading it (FUZZING.md, finding 4).
fn decode<'a, T: Decode<'a, Error = der::Error>>(raw: &'a [u8]) -> Result<T, DecodeError> {
    tlv::check_tree(raw)?;
    Ok(T::from_der(raw)?)
}

impl Cert {
    pub fn from_der(der: &[u8]) -> Result<Self, ParseError> {
        let cert: Certificate = decode(der).map_err(ParseError::Certificate)?;
        let (outer, _) = tlv::read(der)?;
        let tbs = outer
            .children()?
            .first()
            .map(|t| t.full.to_vec())
            .ok_or(ParseError::NoTbs)?;
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs,
        })
    }

    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    fn spki_der(&self) -> Result<Vec<u8>, ParseError> {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(ParseError::Encode)
    }

    fn extension(&self, oid: Oid) -> Option<&[u8]> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// True when `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        let Ok(spki) = issuer.spki_der() else {
            return false;
        };
        let Some(sig) = self.cert.signature().as_bytes() else {
            return false;
        };
        algo::verify(
            &spki,
            &self.cert.signature_algorithm().oid,
            None,
            &self.tbs,
            sig,
        )
        .is_ok()
    }

    fn valid_at(&self, now: SystemTime) -> Result<(), TrustError> {
        let v = self.cert.tbs_certificate().validity();
        if now < v.not_before.to_system_time() {
            return Err(TrustError::NotYetValid {
                subject: self.subject(),
                not_before: v.not_before,
            });
        }
        if now > v.not_after.to_system_time() {
            return Err(TrustError::Expired {
                subject: self.subject(),
                not_after: v.not_after,
            });
        }
        Ok(())
    }

    /// False only when a basicConstraints extension says this is not a CA.
    fn may_issue(&self) -> bool {
        match self.extension(BASIC_CONSTRAINTS) {
            None => true,
            Some(raw) => decode::<x509_cert::ext::pkix::BasicConstraints>(raw).is_ok_and(|b| b.ca),
        }
    }
}

/// The parts of a SignedData that verification needs.
struct Parsed<'a> {
    content_type: Oid,
    content: Vec<u8>,
    certs: Vec<Cert>,
    signers: Vec<SignerInfo<'a>>,
}

fn parse(der: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let (ci, rest) = tlv::read(der)?;
    if !rest.iter().all(|b| *b == 0) {
        return Err(ParseError::TrailingData);
    }
    let parts = ci.children()?;
    let oid = parts.first().ok_or(ParseError::EmptyContentInfo)?;
    if Oid::from_der(oid.full).ok() != Some(SIGNED_DATA) {
        return Err(ParseError::NotSignedData);
    }
    let explicit = parts
        .get(1)
        .filter(|t| t.tag == 0xa0)
        .ok_or(ParseError::NoContent)?;
    let sd = explicit
        .children()?
        .into_iter()
        .next()
        .ok_or(ParseError::EmptySignedData)?;
    let mut items = sd.children()?.into_iter();
    let missing = |field| ParseError::Missing { field };
    let _version = items.next().ok_or(missing("version"))?;
    let _digest_algs = items.next().ok_or(missing("digestAlgorithms"))?;
    let encap = items.next().ok_or(missing("encapContentInfo"))?;
    let mut encap_parts = encap.children()?.into_iter();
    let ctype = encap_parts.next().ok_or(ParseError::NoContentType)?;
    let content_type = Oid::from_der(ctype.full).map_err(ParseError::ContentType)?;
    let econtent = encap_parts
        .next()
        .filter(|t| t.tag == 0xa0)
        .ok_or(ParseError::Detached)?;
    let content = econtent
        .children()?
        .first()
        .ok_or(ParseError::EmptyEContent)?
        .octets()?;
    let mut certs = Vec::new();
    let mut signer_set = None;
    for item in items {
        match item.tag {
            0xa0 => {
                for c in item.children()? {
                    // Attribute and other certificate formats cannot sign; skip them.
                    if c.tag == 0x30 {
                        certs.push(Cert::from_der(c.full)?);
                    }
                }
            }
            0xa1 => {}
            0x31 => signer_set = Some(item),
            tag => return Err(ParseError::UnexpectedTag { tag }),
        }
    }
    let mut signers = Vec::new();
    for s in signer_set.ok_or(missing("signerInfos"))?.children()? {
        signers.push(signer_info::decode(s.full)?);
    }
    Ok(Parsed {
        content_type,
        content,
        certs,
        signers,
    })
}

fn find_signer<'c>(certs: &'c [Cert], sid: &SignerId) -> Option<&'c Cert> {
    certs.iter().find(|c| match sid {
        SignerId::IssuerAndSerialNumber {
            issuer,
            serial_number,
        } => {
            c.cert.tbs_certificate().issuer() == issuer
                && c.cert.tbs_certificate().serial_number() == serial_number
        }
        SignerId::SubjectKeyIdentifier(ski) => c
            .extension(SUBJECT_KEY_ID)
            .and_then(|raw| decode::<x509_cert::ext::pkix::SubjectKeyIdentifier>(raw).ok())
            .is_some_and(|own| own.0.as_bytes() == ski.as_slice()),
    })
}

fn check_signer(p: &Parsed<'_>, s: &SignerInfo<'_>) -> Result<(), Pkcs7Failure> {
    let hash = Hash::from_oid(&s.digest_alg.oid).map_err(SignatureError::from)?;
    let cert = find_signer(&p.certs, &s.sid).ok_or(SignatureError::SignerNotFound)?;
    let spki = cert.spki_der()?;
    let signed: Vec<u8> = match &s.signed_attrs {
        None => p.content.clone(),
        Some(attrs) => {
            let mut digest_seen = false;
            for a in attrs.children().map_err(ParseError::from)? {
                let kids = a.children().map_err(ParseError::from)?;
                let (Some(oid), Some(values)) = (kids.first(), kids.get(1)) else {
                    return Err(ParseError::MalformedAttribute.into());
                };
                let oid = Oid::from_der(oid.full).map_err(ParseError::AttributeOid)?;
                let first = values
                    .children()
                    .map_err(ParseError::from)?
                    .into_iter()
                    .next()
                    .ok_or(ParseError::AttributeNoValue { oid })?;
                if oid == MESSAGE_DIGEST_ATTR {
                    digest_seen = true;
                    if first.octets().map_err(ParseError::from)? != hash.digest(&p.content) {
                        return Err(SignatureError::Altered.into());
                    }
                } else if oid == CONTENT_TYPE_ATTR
                    && Oid::from_der(first.full).ok() != Some(p.content_type)
                {
                    return Err(SignatureError::ContentTypeDiffers.into());
                }
            }
            if !digest_seen {
                return Err(SignatureError::NoMessageDigest.into());
            }
            tlv::rewrap(0x31, attrs.content)
        }
    };
    algo::verify(
        &spki,
        &s.signature_alg.oid,
        Some(hash),
        &signed,
        &s.signature,
    )
    .map_err(|source| {
        SignatureError::Signer {
            subject: cert.subject(),
            source,
        }
        .into()
    })
}

/// Walks from `signer` to an anchor through the SignedData's other certificates.
fn chain_to_anchor(
    signer: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    now: SystemTime,
) -> Result<(), TrustError> {
    let mut current = signer;
    current.valid_at(now)?;
    for _ in 0..MAX_CHAIN {
        if anchors
            .iter()
            .any(|a| a.der == current.der || current.signed_by(a))
        {
            return Ok(());
        }
        let next = pool
            .iter()
            .find(|c| c.der != current.der && c.may_issue() && current.signed_by(c));
        match next {
            Some(n) => {
                n.valid_at(now)?;
                current = n;
            }
            None => break,
        }
    }
    Err(TrustError::NoChain {
        subject: signer.subject(),
    })
}

/// Verifies a DER SignedData and returns its content.
pub fn verify(
    der: &[u8],
    anchors: Option<&[Cert]>,
    now: SystemTime,
) -> Result<Vec<u8>, Pkcs7Failure> {
    let p = parse(der)?;
    if p.signers.is_empty() {
        return Err(SignatureError::NoSigner.into());
    }
    for s in &p.signers {
        check_signer(&p, s)?;
        if let Some(anchors) = anchors {
            // check_signer found the certificate, so this lookup succeeds.
            if let Some(cert) = find_signer(&p.certs, &s.sid) {
                chain_to_anchor(cert, &p.certs, anchors, now)?;
            }
        }
    }
    Ok(p.content)
}
