//! PURE: digests and signature checks for the algorithms deployment specs are signed with:
//! RSA PKCS#1 v1.5 and ECDSA (P-256, P-384) over SHA-1/256/384/512.
//!
//! Invariant: an algorithm not listed here is refused by name (its OID), never ignored.

use const_oid::ObjectIdentifier as Oid;
use sha2::Digest;

const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const SHA1_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
const SHA256_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const P384: Oid = Oid::new_unwrap("1.3.132.0.34");

/// Why a signature could not be checked or did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgoError {
    #[error("unsupported digest algorithm {oid}")]
    UnsupportedDigest { oid: Oid },
    #[error("signature algorithm {sig_alg} needs a digest algorithm")]
    NeedsDigest { sig_alg: Oid },
    #[error("unsupported signature algorithm {sig_alg}")]
    UnsupportedSignature { sig_alg: Oid },
    #[error("the certificate's key is not a usable RSA key: {0}")]
    RsaKey(#[source] spki::Error),
    #[error("the RSA signature does not match")]
    RsaMismatch,
    #[error("the certificate's key cannot be read: {0}")]
    KeyInfo(#[source] spki::Error),
    #[error("the certificate's P-256 key cannot be read: {0}")]
    P256Key(#[source] spki::Error),
    #[error("the certificate's P-384 key cannot be read: {0}")]
    P384Key(#[source] spki::Error),
    #[error("the ECDSA signature does not match")]
    EcdsaMismatch,
    #[error("unsupported elliptic curve {}", .curve.map(|o| o.to_string()).unwrap_or_else(|| "(none named)".into()))]
    UnsupportedCurve { curve: Option<Oid> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn from_oid(oid: &Oid) -> Result<Self, AlgoError> {
        match *oid {
            SHA1 => Ok(Self::Sha1),
            SHA256 => Ok(Self::Sha256),
            SHA384 => Ok(Self::Sha384),
            SHA512 => Ok(Self::Sha512),
            _ => Err(AlgoError::UnsupportedDigest { oid: *oid }),
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Rsa,
    Ecdsa,
}

/// The scheme and hash of a signature algorithm; bare `rsaEncryption`/`id-ecPublicKey` (as
/// SignerInfo allows) take the hash from `digest`.
fn scheme(sig_alg: &Oid, digest: Option<Hash>) -> Result<(Scheme, Hash), AlgoError> {
    let need = |h: Option<Hash>| h.ok_or(AlgoError::NeedsDigest { sig_alg: *sig_alg });
    Ok(match *sig_alg {
        RSA => (Scheme::Rsa, need(digest)?),
        SHA1_RSA => (Scheme::Rsa, Hash::Sha1),
        SHA256_RSA => (Scheme::Rsa, Hash::Sha256),
        SHA384_RSA => (Scheme::Rsa, Hash::Sha384),
        SHA512_RSA => (Scheme::Rsa, Hash::Sha512),
        EC_PUBLIC_KEY => (Scheme::Ecdsa, need(digest)?),
        ECDSA_SHA1 => (Scheme::Ecdsa, Hash::Sha1),
        ECDSA_SHA256 => (Scheme::Ecdsa, Hash::Sha256),
        ECDSA_SHA384 => (Scheme::Ecdsa, Hash::Sha384),
        ECDSA_SHA512 => (Scheme::Ecdsa, Hash::Sha512),
        _ => return Err(AlgoError::UnsupportedSignature { sig_alg: *sig_alg }),
    })
}

/// Checks `signature` over `data` with the key of a DER SubjectPublicKeyInfo.
pub fn verify(
    spki_der: &[u8],
    sig_alg: &Oid,
    digest: Option<Hash>,
    data: &[u8],
    signature: &[u8],
) -> Result<(), AlgoError> {
    let (scheme, hash) = scheme(sig_alg, digest)?;
    let hashed = hash.digest(data);
    match scheme {
        Scheme::Rsa => verify_rsa(spki_der, hash, &hashed, signature),
        Scheme::Ecdsa => verify_ecdsa(spki_der, &hashed, signature),
    }
}

fn verify_rsa(spki_der: &[u8], hash: Hash, hashed: &[u8], sig: &[u8]) -> Result<(), AlgoError> {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::Pkcs1v15Sign;
    let key = rsa::PublicKey::from_public_key_der(spki_der).map_err(AlgoError::RsaKey)?;
    let padding = match hash {
        Hash::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        Hash::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        Hash::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        Hash::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
    };
    key.verify(padding, hashed, sig)
        .map_err(|_| AlgoError::RsaMismatch)
}

fn verify_ecdsa(spki_der: &[u8], hashed: &[u8], sig: &[u8]) -> Result<(), AlgoError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let spki = spki::SubjectPublicKeyInfoRef::try_from(spki_der).map_err(AlgoError::KeyInfo)?;
    let curve: Option<Oid> = spki
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<Oid>().ok());
    let bad = || AlgoError::EcdsaMismatch;
    match curve {
        Some(P256) => {
            use p256::pkcs8::DecodePublicKey;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(AlgoError::P256Key)?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| bad())?;
            key.verify_prehash(hashed, &sig).map_err(|_| bad())
        }
        Some(P384) => {
            use p384::pkcs8::DecodePublicKey;
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(AlgoError::P384Key)?;
            let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| bad())?;
            key.verify_prehash(hashed, &sig).map_err(|_| bad())
        }
        curve => Err(AlgoError::UnsupportedCurve { curve }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_refusals() {
        assert_eq!(Hash::Sha256.digest(b"abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(Hash::Sha1.digest(b"abc")[..4], [0xa9, 0x99, 0x3e, 0x36]);
        assert_eq!(
            Hash::from_oid(&Oid::new_unwrap("1.2.840.113549.2.5"))
                .unwrap_err()
                .to_string(),
            "unsupported digest algorithm 1.2.840.113549.2.5"
        );
        let pss = Oid::new_unwrap("1.2.840.113549.1.1.10");
        assert_eq!(
            verify(&[], &pss, None, b"", b"").unwrap_err().to_string(),
            "unsupported signature algorithm 1.2.840.113549.1.1.10"
        );
        assert_eq!(
            verify(&[], &RSA, None, b"", b"").unwrap_err().to_string(),
            "signature algorithm 1.2.840.113549.1.1.1 needs a digest algorithm"
        );
        assert_eq!(
            AlgoError::UnsupportedCurve { curve: None }.to_string(),
            "unsupported elliptic curve (none named)"
        );
    }
}
