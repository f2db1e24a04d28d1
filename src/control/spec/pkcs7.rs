//! PURE: verification of a PKCS#7/CMS SignedData with attached content (RFC 5652 §5), and
//! of the signer's certificate chain to configured trust anchors. The clock is an argument.
//!
//! Invariants: content is returned only when at least one SignerInfo exists and every
//! SignerInfo verifies: its certificate is found in the SignedData, the messageDigest
//! attribute equals the content's digest, and the signature over the exact signed bytes
//! holds. With trust anchors, each signer must also chain to an anchor through certificates
//! that are valid at `now`.

use super::algo::{self, Hash};
use super::tlv::{self, Tlv};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pkcs7Failure {
    /// Not a well-formed SignedData.
    Parse(String),
    /// Well-formed, but the content or a signature does not verify.
    Signature(String),
    /// Verified, but the signer does not chain to a trust anchor (or a certificate is out of
    /// its validity period).
    Untrusted(String),
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
fn decode<'a, T: Decode<'a>>(raw: &'a [u8]) -> Result<T, String> {
    tlv::check_tree(raw)?;
    T::from_der(raw).map_err(|e| e.to_string())
}

impl Cert {
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert: Certificate = decode(der).map_err(|e| format!("bad certificate: {e}"))?;
        let (outer, _) = tlv::read(der)?;
        let tbs = outer
            .children()?
            .first()
            .map(|t| t.full.to_vec())
            .ok_or("certificate has no TBSCertificate")?;
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs,
        })
    }

    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    fn spki_der(&self) -> Result<Vec<u8>, String> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())
    }

    fn extension(&self, oid: Oid) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// True when `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return false;
        }
        let Ok(spki) = issuer.spki_der() else {
            return false;
        };
        let Some(sig) = self.cert.signature.as_bytes() else {
            return false;
        };
        algo::verify(
            &spki,
            &self.cert.signature_algorithm.oid,
            None,
            &self.tbs,
            sig,
        )
        .is_ok()
    }

    fn valid_at(&self, now: SystemTime) -> Result<(), String> {
        let v = &self.cert.tbs_certificate.validity;
        if now < v.not_before.to_system_time() {
            return Err(format!(
                "certificate {} is not valid before {}",
                self.subject(),
                v.not_before
            ));
        }
        if now > v.not_after.to_system_time() {
            return Err(format!(
                "certificate {} expired at {}",
                self.subject(),
                v.not_after
            ));
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

struct SignerRaw<'a> {
    info: cms::signed_data::SignerInfo,
    /// Content of `[0] IMPLICIT signedAttrs`, if present.
    signed_attrs: Option<Tlv<'a>>,
}

/// The parts of a SignedData that verification needs.
struct Parsed<'a> {
    content_type: Oid,
    content: Vec<u8>,
    certs: Vec<Cert>,
    signers: Vec<SignerRaw<'a>>,
}

fn parse(der: &[u8]) -> Result<Parsed<'_>, String> {
    let (ci, rest) = tlv::read(der)?;
    if !rest.iter().all(|b| *b == 0) {
        return Err("data after the ContentInfo".into());
    }
    let parts = ci.children()?;
    let oid = parts.first().ok_or("empty ContentInfo")?;
    if Oid::from_der(oid.full).ok() != Some(SIGNED_DATA) {
        return Err("the ContentInfo is not SignedData".into());
    }
    let explicit = parts
        .get(1)
        .filter(|t| t.tag == 0xa0)
        .ok_or("ContentInfo has no content")?;
    let sd = explicit
        .children()?
        .into_iter()
        .next()
        .ok_or("SignedData is empty")?;
    let mut items = sd.children()?.into_iter();
    let _version = items.next().ok_or("SignedData has no version")?;
    let _digest_algs = items.next().ok_or("SignedData has no digestAlgorithms")?;
    let encap = items.next().ok_or("SignedData has no encapContentInfo")?;
    let mut encap_parts = encap.children()?.into_iter();
    let ctype = encap_parts
        .next()
        .ok_or("encapContentInfo has no eContentType")?;
    let content_type = Oid::from_der(ctype.full).map_err(|e| format!("eContentType: {e}"))?;
    let econtent = encap_parts
        .next()
        .filter(|t| t.tag == 0xa0)
        .ok_or("the content is detached; the deployment spec must be attached")?;
    let content = econtent
        .children()?
        .first()
        .ok_or("eContent is empty")?
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
            t => {
                return Err(format!(
                    "unexpected element with tag 0x{t:02x} in SignedData"
                ))
            }
        }
    }
    let mut signers = Vec::new();
    for s in signer_set
        .ok_or("SignedData has no signerInfos")?
        .children()?
    {
        let info: cms::signed_data::SignerInfo =
            decode(s.full).map_err(|e| format!("bad SignerInfo: {e}"))?;
        let signed_attrs = s.children()?.into_iter().find(|t| t.tag == 0xa0);
        signers.push(SignerRaw { info, signed_attrs });
    }
    Ok(Parsed {
        content_type,
        content,
        certs,
        signers,
    })
}

fn find_signer<'c>(
    certs: &'c [Cert],
    sid: &cms::signed_data::SignerIdentifier,
) -> Option<&'c Cert> {
    use cms::signed_data::SignerIdentifier as Sid;
    certs.iter().find(|c| match sid {
        Sid::IssuerAndSerialNumber(ias) => {
            c.cert.tbs_certificate.issuer == ias.issuer
                && c.cert.tbs_certificate.serial_number == ias.serial_number
        }
        Sid::SubjectKeyIdentifier(ski) => c
            .extension(SUBJECT_KEY_ID)
            .and_then(|raw| decode::<x509_cert::ext::pkix::SubjectKeyIdentifier>(raw).ok())
            .is_some_and(|own| own.0.as_bytes() == ski.0.as_bytes()),
    })
}

fn check_signer(p: &Parsed<'_>, s: &SignerRaw<'_>) -> Result<(), Pkcs7Failure> {
    let sig_err = Pkcs7Failure::Signature;
    let hash = Hash::from_oid(&s.info.digest_alg.oid).map_err(sig_err)?;
    let cert = find_signer(&p.certs, &s.info.sid).ok_or_else(|| {
        Pkcs7Failure::Signature("the signer's certificate is not in the SignedData".into())
    })?;
    let spki = cert.spki_der().map_err(Pkcs7Failure::Parse)?;
    let signed: Vec<u8> = match &s.signed_attrs {
        None => p.content.clone(),
        Some(attrs) => {
            let mut digest_seen = false;
            for a in attrs.children().map_err(Pkcs7Failure::Parse)? {
                let kids = a.children().map_err(Pkcs7Failure::Parse)?;
                let (Some(oid), Some(values)) = (kids.first(), kids.get(1)) else {
                    return Err(Pkcs7Failure::Parse("malformed signed attribute".into()));
                };
                let oid =
                    Oid::from_der(oid.full).map_err(|e| Pkcs7Failure::Parse(e.to_string()))?;
                let first = values
                    .children()
                    .map_err(Pkcs7Failure::Parse)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Pkcs7Failure::Parse(format!("attribute {oid} has no value")))?;
                if oid == MESSAGE_DIGEST_ATTR {
                    digest_seen = true;
                    if first.octets().map_err(Pkcs7Failure::Parse)? != hash.digest(&p.content) {
                        return Err(sig_err(
                            "the content does not match its signed digest (it was altered)".into(),
                        ));
                    }
                } else if oid == CONTENT_TYPE_ATTR
                    && Oid::from_der(first.full).ok() != Some(p.content_type)
                {
                    return Err(sig_err(
                        "the signed content type differs from the content's".into(),
                    ));
                }
            }
            if !digest_seen {
                return Err(sig_err("signed attributes lack a messageDigest".into()));
            }
            tlv::rewrap(0x31, attrs.content)
        }
    };
    algo::verify(
        &spki,
        &s.info.signature_algorithm.oid,
        Some(hash),
        &signed,
        s.info.signature.as_bytes(),
    )
    .map_err(|e| sig_err(format!("signer {}: {e}", cert.subject())))
}

/// Walks from `signer` to an anchor through the SignedData's other certificates.
fn chain_to_anchor(
    signer: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    now: SystemTime,
) -> Result<(), String> {
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
    Err(format!(
        "the signer certificate {} does not chain to a configured trust anchor",
        signer.subject()
    ))
}

/// Verifies a DER SignedData and returns its content.
pub fn verify(
    der: &[u8],
    anchors: Option<&[Cert]>,
    now: SystemTime,
) -> Result<Vec<u8>, Pkcs7Failure> {
    let p = parse(der).map_err(Pkcs7Failure::Parse)?;
    if p.signers.is_empty() {
        return Err(Pkcs7Failure::Signature(
            "the SignedData has no signer".into(),
        ));
    }
    for s in &p.signers {
        check_signer(&p, s)?;
        if let Some(anchors) = anchors {
            // check_signer found the certificate, so this lookup succeeds.
            if let Some(cert) = find_signer(&p.certs, &s.info.sid) {
                chain_to_anchor(cert, &p.certs, anchors, now).map_err(Pkcs7Failure::Untrusted)?;
            }
        }
    }
    Ok(p.content)
}
