//! The emulator's test certificate authority and the PKCS#7 signer of deployment specs.
//!
//! A CA (RSA 2048, self-signed) and a signer certificate issued by it are created in a
//! directory on first start and reused afterwards, so an agent configured to trust the CA
//! file keeps working across emulator restarts that share the directory. Specs are signed as
//! PKCS#7 SignedData with the content attached and the signer certificate included (PEM),
//! which is what the real service sends in a `PKCS7/JSON` envelope.

use crate::error::EmulatorError;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use std::path::{Path, PathBuf};

/// File name of the CA certificate inside the PKI directory.
pub const CA_CERT_FILE: &str = "emulator-ca.pem";
const CA_KEY_FILE: &str = "emulator-ca.key";
const SIGNER_CERT_FILE: &str = "signer.pem";
const SIGNER_KEY_FILE: &str = "signer.key";

/// The signing identity of one emulator.
pub struct Pki {
    ca_cert_path: PathBuf,
    signer_cert: X509,
    signer_key: PKey<Private>,
}

impl Pki {
    /// Loads the CA and signer from `dir`, or creates them there if absent.
    pub fn load_or_create(dir: &Path) -> Result<Pki, EmulatorError> {
        std::fs::create_dir_all(dir).map_err(|e| EmulatorError::io(dir, e))?;
        let ca_cert_path = dir.join(CA_CERT_FILE);
        let paths = [CA_KEY_FILE, SIGNER_CERT_FILE, SIGNER_KEY_FILE].map(|f| dir.join(f));
        if ca_cert_path.exists() && paths.iter().all(|p| p.exists()) {
            let signer_cert = X509::from_pem(&read(&paths[1])?)?;
            let signer_key = PKey::private_key_from_pem(&read(&paths[2])?)?;
            return Ok(Pki {
                ca_cert_path,
                signer_cert,
                signer_key,
            });
        }
        let ca_key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let ca_cert = build_cert("CodeDeploy Emulator Test CA", &ca_key, None, true)?;
        let signer_key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let signer_cert = build_cert(
            "CodeDeploy Emulator Deployment Signer",
            &signer_key,
            Some((&ca_cert, &ca_key)),
            false,
        )?;
        write(&paths[0], &ca_key.private_key_to_pem_pkcs8()?)?;
        write(&paths[1], &signer_cert.to_pem()?)?;
        write(&paths[2], &signer_key.private_key_to_pem_pkcs8()?)?;
        // The CA file goes last: its presence marks a complete directory.
        write(&ca_cert_path, &ca_cert.to_pem()?)?;
        Ok(Pki {
            ca_cert_path,
            signer_cert,
            signer_key,
        })
    }

    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert_path
    }

    /// Signs `content` as attached PKCS#7 SignedData (SHA-256), PEM encoded.
    pub fn sign(&self, content: &[u8]) -> Result<String, EmulatorError> {
        let extra = Stack::new()?;
        let p7 = Pkcs7::sign(
            &self.signer_cert,
            &self.signer_key,
            &extra,
            content,
            Pkcs7Flags::BINARY,
        )?;
        let pem = p7.to_pem()?;
        Ok(String::from_utf8_lossy(&pem).into_owned())
    }
}

/// Verifies a PEM PKCS#7 against a CA certificate (PEM) and returns the signed content.
/// Used by tests and by anyone checking the emulator's output independently of the agent.
pub fn verify_pkcs7(pem: &[u8], ca_pem: &[u8]) -> Result<Vec<u8>, EmulatorError> {
    let p7 = Pkcs7::from_pem(pem)?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(X509::from_pem(ca_pem)?)?;
    let store = store.build();
    let certs = Stack::new()?;
    let mut out = Vec::new();
    p7.verify(&certs, &store, None, Some(&mut out), Pkcs7Flags::BINARY)?;
    Ok(out)
}

fn build_cert(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    is_ca: bool,
) -> Result<X509, EmulatorError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("O", "codedeploy-emulator")?;
    name.append_entry_by_text("CN", cn)?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_pubkey(key)?;
    // Back-dated a day so hosts with a slightly slow clock still accept the certificates.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let not_before = Asn1Time::from_unix(now - 86_400)?;
    let not_after = Asn1Time::days_from_now(3650)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    if is_ca {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
    } else {
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .non_repudiation()
                .build()?,
        )?;
    }
    let ski =
        SubjectKeyIdentifier::new().build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))?;
    b.append_extension(ski)?;
    match issuer {
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name())?;
            b.sign(ca_key, MessageDigest::sha256())?;
        }
        None => {
            b.set_issuer_name(&name)?;
            b.sign(key, MessageDigest::sha256())?;
        }
    }
    Ok(b.build())
}

fn read(path: &Path) -> Result<Vec<u8>, EmulatorError> {
    std::fs::read(path).map_err(|e| EmulatorError::io(path, e))
}

fn write(path: &Path, data: &[u8]) -> Result<(), EmulatorError> {
    std::fs::write(path, data).map_err(|e| EmulatorError::io(path, e))
}

/// Changes one byte of the signed JSON inside a PEM PKCS#7 (the first character of the
/// ApplicationName value), keeping the structure intact, so only the signature check can
/// tell. Used by the `TamperSpec` fault.
pub fn tamper_pem(pem: &str) -> Result<String, crate::error::ApiError> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = openssl::base64::decode_block(&body)
        .map_err(|e| crate::error::ApiError::server(format!("tamper: {e}")))?;
    let needle = b"\"ApplicationName\":\"";
    let at = der
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or_else(|| crate::error::ApiError::server("tamper: no ApplicationName in the spec"))?;
    let i = at + needle.len();
    der[i] = if der[i] == b'X' { b'Y' } else { b'X' };
    let b64 = openssl::base64::encode_block(&der);
    let mut out = String::from("-----BEGIN PKCS7-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PKCS7-----\n");
    Ok(out)
}
