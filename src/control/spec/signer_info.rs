//! PURE: the decoder of one CMS SignerInfo (RFC 5652 §5.3), in place of the `cms` crate:
//!
//! ```text
//! SignerInfo ::= SEQUENCE {
//!   version CMSVersion,
//!   sid SignerIdentifier,                      -- IssuerAndSerialNumber | [0] SubjectKeyIdentifier
//!   digestAlgorithm DigestAlgorithmIdentifier,
//!   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
//!   signatureAlgorithm SignatureAlgorithmIdentifier,
//!   signature SignatureValue,                  -- OCTET STRING
//!   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
//! ```
//!
//! Invariants: the fields come in this order, each mandatory one present and nothing after
//! them; every element is DER (the TLV walker splits the fields, the `der` crate decodes each
//! one strictly, as `cms` did); an error names the field that is wrong. The input has passed
//! [`tlv::check_tree`] before any of it reaches `der`.

use super::tlv::{self, Tlv, TlvError};
use der::asn1::{AnyRef, OctetString, SetOfVec};
use der::Decode;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
/// `[0] IMPLICIT SubjectKeyIdentifier`: context-specific, primitive (an OCTET STRING).
const SID_SKI: u8 = 0x80;
/// `[0] IMPLICIT SignedAttributes` / `[1] IMPLICIT UnsignedAttributes`: constructed.
const SIGNED_ATTRS: u8 = 0xa0;
const UNSIGNED_ATTRS: u8 = 0xa1;
/// CMSVersion ::= INTEGER { v0(0), v1(1), v2(2), v3(3), v4(4), v5(5) }
const MAX_VERSION: u8 = 5;

/// What is wrong with a SignerInfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerInfoError {
    #[error("SignerInfo: {0}")]
    Tlv(#[from] TlvError),
    #[error("SignerInfo is not a SEQUENCE (tag 0x{tag:02x})")]
    NotSequence { tag: u8 },
    #[error("SignerInfo has no {field}")]
    Missing { field: &'static str },
    #[error("SignerInfo {field}: unexpected tag 0x{tag:02x}")]
    UnexpectedTag { field: &'static str, tag: u8 },
    #[error("SignerInfo has an unexpected element with tag 0x{tag:02x} after its signature")]
    Extra { tag: u8 },
    #[error("data after the SignerInfo")]
    TrailingData,
    #[error("SignerInfo version {version} is not a CMSVersion (0 to 5)")]
    Version { version: u8 },
    #[error("SignerInfo sid: IssuerAndSerialNumber has no {field}")]
    SidMissing { field: &'static str },
    #[error("SignerInfo sid: IssuerAndSerialNumber has an extra element with tag 0x{tag:02x}")]
    SidExtra { tag: u8 },
    #[error("SignerInfo {field}: the same attribute appears twice")]
    DuplicateAttribute { field: &'static str },
    #[error("SignerInfo {field}: {source}")]
    Der {
        field: &'static str,
        #[source]
        source: der::Error,
    },
}

/// How a SignerInfo names its signer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    IssuerAndSerialNumber {
        issuer: Name,
        serial_number: SerialNumber,
    },
    /// The certificate's subjectKeyIdentifier extension value.
    SubjectKeyIdentifier(Vec<u8>),
}

/// A decoded SignerInfo; unsigned attributes are checked for form, then dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo<'a> {
    pub version: u8,
    pub sid: SignerId,
    pub digest_alg: AlgorithmIdentifierOwned,
    /// `[0] IMPLICIT signedAttrs` as it travels: its content, re-wrapped as a SET, is what the
    /// signature covers.
    pub signed_attrs: Option<Tlv<'a>>,
    pub signature_alg: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
}

/// `T` decoded from the whole of `raw`, strict DER, the error naming `field`.
fn der_field<'a, T: Decode<'a, Error = der::Error>>(
    field: &'static str,
    raw: &'a [u8],
) -> Result<T, SignerInfoError> {
    T::from_der(raw).map_err(|source| SignerInfoError::Der { field, source })
}

/// The element's header read by `der` (definite, minimal length: DER), its content returned.
fn der_header<'a>(field: &'static str, t: &Tlv<'a>) -> Result<&'a [u8], SignerInfoError> {
    der_field::<AnyRef<'a>>(field, t.full)?;
    Ok(t.content)
}

/// The next element, which must be there with tag `tag`.
fn expect<'a>(
    items: &mut std::iter::Peekable<std::vec::IntoIter<Tlv<'a>>>,
    field: &'static str,
    tag: u8,
) -> Result<Tlv<'a>, SignerInfoError> {
    let t = items.next().ok_or(SignerInfoError::Missing { field })?;
    if t.tag != tag {
        return Err(SignerInfoError::UnexpectedTag { field, tag: t.tag });
    }
    Ok(t)
}

/// The attributes of `[0]`/`[1]` decoded as the SET OF Attribute they stand for, as `cms`
/// did: each Attribute strict DER, no attribute twice.
fn check_attributes(field: &'static str, t: &Tlv<'_>) -> Result<(), SignerInfoError> {
    let content = der_header(field, t)?;
    let set = tlv::rewrap(SET, content);
    let attrs: SetOfVec<Attribute> = der_field(field, &set)?;
    // Sorted by the decoder, so a repeated attribute sits next to itself.
    if attrs.as_slice().windows(2).any(|w| w[0] == w[1]) {
        return Err(SignerInfoError::DuplicateAttribute { field });
    }
    Ok(())
}

fn decode_sid(t: &Tlv<'_>) -> Result<SignerId, SignerInfoError> {
    const FIELD: &str = "sid";
    match t.tag {
        SEQUENCE => {
            let mut parts = tlv::all(der_header(FIELD, t)?)?.into_iter();
            let issuer = parts
                .next()
                .ok_or(SignerInfoError::SidMissing { field: "issuer" })?;
            let serial = parts.next().ok_or(SignerInfoError::SidMissing {
                field: "serialNumber",
            })?;
            if let Some(extra) = parts.next() {
                return Err(SignerInfoError::SidExtra { tag: extra.tag });
            }
            Ok(SignerId::IssuerAndSerialNumber {
                issuer: der_field("sid issuer", issuer.full)?,
                serial_number: der_field("sid serialNumber", serial.full)?,
            })
        }
        SID_SKI => Ok(SignerId::SubjectKeyIdentifier(
            der_header(FIELD, t)?.to_vec(),
        )),
        tag => Err(SignerInfoError::UnexpectedTag { field: FIELD, tag }),
    }
}

/// Decodes one SignerInfo, `raw` being its whole encoding.
pub fn decode(raw: &[u8]) -> Result<SignerInfo<'_>, SignerInfoError> {
    tlv::check_tree(raw)?;
    let (outer, rest) = tlv::read(raw)?;
    if outer.tag != SEQUENCE {
        return Err(SignerInfoError::NotSequence { tag: outer.tag });
    }
    if !rest.is_empty() {
        return Err(SignerInfoError::TrailingData);
    }
    let mut items = tlv::all(der_header("header", &outer)?)?
        .into_iter()
        .peekable();

    let version = expect(&mut items, "version", INTEGER)?;
    let version: u8 = der_field("version", version.full)?;
    if version > MAX_VERSION {
        return Err(SignerInfoError::Version { version });
    }
    let sid = items
        .next()
        .ok_or(SignerInfoError::Missing { field: "sid" })?;
    let sid = decode_sid(&sid)?;
    let digest_alg = expect(&mut items, "digestAlgorithm", SEQUENCE)?;
    let digest_alg = der_field("digestAlgorithm", digest_alg.full)?;
    let signed_attrs = match items.next_if(|t| t.tag == SIGNED_ATTRS) {
        Some(t) => {
            check_attributes("signedAttrs", &t)?;
            Some(t)
        }
        None => None,
    };
    let signature_alg = expect(&mut items, "signatureAlgorithm", SEQUENCE)?;
    let signature_alg = der_field("signatureAlgorithm", signature_alg.full)?;
    let signature = expect(&mut items, "signature", OCTET_STRING)?;
    let signature = der_field::<OctetString>("signature", signature.full)?
        .into_bytes()
        .into_vec();
    if let Some(t) = items.next_if(|t| t.tag == UNSIGNED_ATTRS) {
        check_attributes("unsignedAttrs", &t)?;
    }
    if let Some(extra) = items.next() {
        return Err(SignerInfoError::Extra { tag: extra.tag });
    }
    Ok(SignerInfo {
        version,
        sid,
        digest_alg,
        signed_attrs,
        signature_alg,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use const_oid::ObjectIdentifier as Oid;
    use der::Encode;

    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        tlv::rewrap(tag, &parts.concat())
    }

    fn oid(s: &str) -> Vec<u8> {
        Oid::new_unwrap(s).to_der().unwrap()
    }

    fn alg(s: &str) -> Vec<u8> {
        tlv(SEQUENCE, &[&oid(s), &[0x05, 0x00]])
    }

    const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    const RSA: &str = "1.2.840.113549.1.1.1";

    /// Name: CN=Deployment Signer.
    fn name() -> Vec<u8> {
        let cn = tlv(0x0c, &[b"Deployment Signer"]);
        let atv = tlv(SEQUENCE, &[&oid("2.5.4.3"), &cn]);
        tlv(SEQUENCE, &[&tlv(SET, &[&atv])])
    }

    fn issuer_and_serial() -> Vec<u8> {
        tlv(SEQUENCE, &[&name(), &[0x02, 0x02, 0x10, 0x01]])
    }

    /// contentType = id-data, one attribute.
    fn content_type_attr() -> Vec<u8> {
        let value = tlv(SET, &[&oid("1.2.840.113549.1.7.1")]);
        tlv(SEQUENCE, &[&oid("1.2.840.113549.1.9.3"), &value])
    }

    fn version(v: u8) -> Vec<u8> {
        vec![INTEGER, 0x01, v]
    }

    fn signature() -> Vec<u8> {
        vec![OCTET_STRING, 0x03, 0xaa, 0xbb, 0xcc]
    }

    fn signer_info(fields: &[&[u8]]) -> Vec<u8> {
        tlv(SEQUENCE, fields)
    }

    fn err(raw: &[u8]) -> String {
        decode(raw).unwrap_err().to_string()
    }

    #[test]
    fn issuer_and_serial_number_with_signed_attributes() {
        let attrs = tlv(SIGNED_ATTRS, &[&content_type_attr()]);
        let raw = signer_info(&[
            &version(1),
            &issuer_and_serial(),
            &alg(SHA256),
            &attrs,
            &alg(RSA),
            &signature(),
        ]);
        let si = decode(&raw).unwrap();
        assert_eq!(si.version, 1);
        let SignerId::IssuerAndSerialNumber {
            issuer,
            serial_number,
        } = &si.sid
        else {
            panic!("{:?}", si.sid);
        };
        assert_eq!(issuer.to_string(), "CN=Deployment Signer");
        assert_eq!(serial_number.as_bytes(), [0x10, 0x01]);
        assert_eq!(si.digest_alg.oid, Oid::new_unwrap(SHA256));
        assert_eq!(si.signature_alg.oid, Oid::new_unwrap(RSA));
        assert_eq!(si.signature, [0xaa, 0xbb, 0xcc]);
        let signed = si.signed_attrs.expect("signedAttrs");
        assert_eq!(signed.full, attrs.as_slice());
        assert_eq!(signed.content, content_type_attr().as_slice());
    }

    #[test]
    fn subject_key_identifier_without_signed_but_with_unsigned_attributes() {
        let raw = signer_info(&[
            &version(3),
            &[SID_SKI, 0x04, 1, 2, 3, 4],
            &alg(SHA256),
            &alg(RSA),
            &signature(),
            &tlv(UNSIGNED_ATTRS, &[&content_type_attr()]),
        ]);
        let si = decode(&raw).unwrap();
        assert_eq!(si.version, 3);
        assert_eq!(si.sid, SignerId::SubjectKeyIdentifier(vec![1, 2, 3, 4]));
        assert!(si.signed_attrs.is_none());
        assert_eq!(si.signature, [0xaa, 0xbb, 0xcc]);
    }

    #[test]
    fn missing_fields_are_named() {
        let (v, sid, dig, sig_alg, sig) = (
            version(1),
            issuer_and_serial(),
            alg(SHA256),
            alg(RSA),
            signature(),
        );
        assert_eq!(err(&signer_info(&[])), "SignerInfo has no version");
        assert_eq!(err(&signer_info(&[&v])), "SignerInfo has no sid");
        assert_eq!(
            err(&signer_info(&[&v, &sid])),
            "SignerInfo has no digestAlgorithm"
        );
        assert_eq!(
            err(&signer_info(&[&v, &sid, &dig])),
            "SignerInfo has no signatureAlgorithm"
        );
        assert_eq!(
            err(&signer_info(&[&v, &sid, &dig, &sig_alg])),
            "SignerInfo has no signature"
        );
        // A field left out in the middle: the next one arrives where it was due.
        assert_eq!(
            err(&signer_info(&[&sid, &dig, &sig_alg, &sig])),
            "SignerInfo version: unexpected tag 0x30"
        );
        assert_eq!(
            err(&signer_info(&[&v, &sid, &dig, &sig])),
            "SignerInfo signatureAlgorithm: unexpected tag 0x04"
        );
        assert_eq!(
            err(&signer_info(&[
                &v,
                &tlv(SEQUENCE, &[&name()]),
                &dig,
                &sig_alg,
                &sig
            ])),
            "SignerInfo sid: IssuerAndSerialNumber has no serialNumber"
        );
        assert_eq!(
            err(&signer_info(&[
                &v,
                &tlv(SEQUENCE, &[]),
                &dig,
                &sig_alg,
                &sig
            ])),
            "SignerInfo sid: IssuerAndSerialNumber has no issuer"
        );
    }

    #[test]
    fn extra_fields_are_refused() {
        let (v, sid, dig, sig_alg, sig) = (
            version(1),
            issuer_and_serial(),
            alg(SHA256),
            alg(RSA),
            signature(),
        );
        let unsigned = tlv(UNSIGNED_ATTRS, &[&content_type_attr()]);
        assert_eq!(
            err(&signer_info(&[
                &v,
                &sid,
                &dig,
                &sig_alg,
                &sig,
                &[0x02, 0x01, 0x00]
            ])),
            "SignerInfo has an unexpected element with tag 0x02 after its signature"
        );
        assert_eq!(
            err(&signer_info(&[
                &v, &sid, &dig, &sig_alg, &sig, &unsigned, &unsigned
            ])),
            "SignerInfo has an unexpected element with tag 0xa1 after its signature"
        );
        // Signed attributes after the signature algorithm are out of place.
        let signed = tlv(SIGNED_ATTRS, &[&content_type_attr()]);
        assert_eq!(
            err(&signer_info(&[&v, &sid, &dig, &sig_alg, &signed, &sig])),
            "SignerInfo signature: unexpected tag 0xa0"
        );
        let sid3 = tlv(
            SEQUENCE,
            &[&name(), &[0x02, 0x01, 0x01], &[0x02, 0x01, 0x02]],
        );
        assert_eq!(
            err(&signer_info(&[&v, &sid3, &dig, &sig_alg, &sig])),
            "SignerInfo sid: IssuerAndSerialNumber has an extra element with tag 0x02"
        );
        let mut trailing = signer_info(&[&v, &sid, &dig, &sig_alg, &sig]);
        trailing.push(0x00);
        assert!(decode(&trailing[..trailing.len() - 1]).is_ok());
        assert_eq!(
            err(&trailing),
            "SignerInfo: unexpected end of data in a length"
        );
        trailing.push(0x00);
        assert_eq!(err(&trailing), "data after the SignerInfo");
    }

    #[test]
    fn malformed_fields_are_named() {
        let (sid, dig, sig_alg, sig) = (issuer_and_serial(), alg(SHA256), alg(RSA), signature());
        assert_eq!(
            err(&signer_info(&[&version(6), &sid, &dig, &sig_alg, &sig])),
            "SignerInfo version 6 is not a CMSVersion (0 to 5)"
        );
        // A constructed [0] is not a SubjectKeyIdentifier (an OCTET STRING).
        let ski = tlv(0xa0, &[&[0x04, 0x01, 0x01]]);
        assert_eq!(
            err(&signer_info(&[&version(3), &ski, &dig, &sig_alg, &sig])),
            "SignerInfo sid: unexpected tag 0xa0"
        );
        let dup = tlv(SIGNED_ATTRS, &[&content_type_attr(), &content_type_attr()]);
        assert_eq!(
            err(&signer_info(&[
                &version(1),
                &sid,
                &dig,
                &dup,
                &sig_alg,
                &sig
            ])),
            "SignerInfo signedAttrs: the same attribute appears twice"
        );
        let not_attr = tlv(SIGNED_ATTRS, &[&[0x02, 0x01, 0x00]]);
        assert!(err(&signer_info(&[
            &version(1),
            &sid,
            &dig,
            &not_attr,
            &sig_alg,
            &sig
        ]))
        .starts_with("SignerInfo signedAttrs: "),);
        let bad_alg = tlv(SEQUENCE, &[&[0x02, 0x01, 0x00]]);
        assert!(
            err(&signer_info(&[&version(1), &sid, &bad_alg, &sig_alg, &sig]))
                .starts_with("SignerInfo digestAlgorithm: "),
        );
        assert_eq!(
            err(&tlv(SET, &[&version(1)])),
            "SignerInfo is not a SEQUENCE (tag 0x31)"
        );
        // DER only, as before: an indefinite length is refused by `der`.
        let body = [
            version(1),
            sid.clone(),
            dig.clone(),
            sig_alg.clone(),
            sig.clone(),
        ]
        .concat();
        let indefinite = [&[SEQUENCE, 0x80][..], &body, &[0, 0]].concat();
        assert!(
            err(&indefinite).starts_with("SignerInfo header: "),
            "{}",
            err(&indefinite)
        );
        // A long-form length where the short form fits is not DER either.
        let long_form = [&[OCTET_STRING, 0x81, 0x01][..], &[0xaa]].concat();
        assert!(err(&signer_info(&[
            &version(1),
            &sid,
            &dig,
            &sig_alg,
            &long_form
        ]))
        .starts_with("SignerInfo signature: "));
    }
}
