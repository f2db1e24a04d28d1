//! The `PKCS7/JSON` envelope: payload decoding (PEM, base64, raw), the PKCS#7 SignedData and
//! X.509 parsers, signature and chain verification, then the JSON decoder, on arbitrary bytes.
//!
//! Each input is tried as the DER of the envelope (base64-encoded into the payload, as the
//! service sends it) and, when it is text, as the payload itself; both without and with trust
//! anchors (the CA that signed the seeds, fuzz/pki/ca.pem), at a fixed time inside the seed
//! certificates' validity so a seed's chain check succeeds.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64ct::{Base64, Encoding};
use codedeploy_agent::control::{open_envelope_at, Envelope, SpecFormatPolicy, TrustAnchors};
use codedeploy_agent::deployspec::decode;
use libfuzzer_sys::fuzz_target;

fn anchors() -> &'static TrustAnchors {
    static A: OnceLock<TrustAnchors> = OnceLock::new();
    A.get_or_init(|| {
        match TrustAnchors::from_pem(include_bytes!("../pki/ca.pem"), Path::new("ca.pem")) {
            Ok(a) => a,
            Err(e) => panic!("harness: fuzz/pki/ca.pem: {e}"),
        }
    })
}

fn now() -> SystemTime {
    let secs: u64 = match include_str!("../pki/now").trim().parse() {
        Ok(s) => s,
        Err(e) => panic!("harness: fuzz/pki/now: {e}"),
    };
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn open(payload: String) {
    let env = Envelope {
        format: "PKCS7/JSON".into(),
        payload,
    };
    let at = now();
    let plain = open_envelope_at(&env, SpecFormatPolicy::PkcsOnly, None, at);
    let anchored = open_envelope_at(&env, SpecFormatPolicy::PkcsOnly, Some(anchors()), at);
    // Anchors only ever take acceptance away.
    if anchored.is_ok() {
        assert_eq!(
            plain.as_ref().ok(),
            anchored.as_ref().ok(),
            "anchors changed the content"
        );
    }
    if std::env::var_os("CD_FUZZ_VERBOSE").is_some() {
        eprintln!("without anchors: {plain:?}\nwith anchors: {anchored:?}");
    }
    if let Ok(text) = plain {
        let _ = decode(&text);
    }
}

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    open(Base64::encode_string(data));
    if let Ok(text) = std::str::from_utf8(data) {
        open(text.to_string());
    }
});
