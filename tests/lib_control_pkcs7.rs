//! Deployment-spec envelopes signed at test time with the openssl CLI: good signatures open,
//! altered content, wrong CAs, expired signers and unsigned formats are refused.

use base64ct::Encoding;
use codedeploy_agent::control::{
    open_and_decode, open_envelope, open_envelope_at, Envelope, SpecEnvelopeError,
    SpecFormatPolicy, TrustAnchors,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const SPEC: &str = r#"{"DeploymentId":"d-ABCDEFGHI","DeploymentGroupId":"g","DeploymentGroupName":"grp","ApplicationName":"app","DeploymentCreator":"user","DeploymentType":"IN_PLACE","AppSpecFilename":"appspec.yml","Revision":{"RevisionType":"S3","S3Revision":{"Bucket":"b","Key":"k.zip","BundleType":"zip"}}}"#;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, an intermediate, signers under each, a self-signed EC signer and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("spec.json"), SPEC).unwrap();
        std::fs::write(
            d.join("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n",
        )
        .unwrap();
        std::fs::write(
            d.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        for (name, subj) in [("ca", "/CN=Test Root CA"), ("other", "/CN=Other CA")] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                    "-days",
                    "30",
                    "-subj",
                    subj,
                ],
            );
        }
        let issue = |name: &str, subj: &str, ca: &str, ext: &str, key: &[&str]| {
            let mut args = vec!["req", "-newkey"];
            args.extend_from_slice(key);
            let (k, c) = (format!("{name}.key"), format!("{name}.csr"));
            args.extend_from_slice(&["-nodes", "-keyout", &k, "-out", &c, "-subj", subj]);
            openssl(d, &args);
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.pem"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-set_serial",
                    "7",
                    "-out",
                    &format!("{name}.pem"),
                    "-days",
                    "10",
                    "-extfile",
                    ext,
                ],
            );
        };
        issue(
            "signer",
            "/CN=Deployment Signer",
            "ca",
            "leaf.ext",
            &["rsa:2048"],
        );
        issue(
            "inter",
            "/CN=Test Intermediate",
            "ca",
            "ca.ext",
            &["rsa:2048"],
        );
        issue(
            "leaf2",
            "/CN=Signer Under Intermediate",
            "inter",
            "leaf.ext",
            &["rsa:2048"],
        );
        issue(
            "ecsigner",
            "/CN=EC Signer",
            "ca",
            "leaf.ext",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Signs spec.json; returns the PEM text.
    fn sign(&self, tool: &str, signer: &str, extra: &[&str]) -> String {
        let out = format!("{signer}-{}.p7", fastrand_name());
        let (cert, key) = (format!("{signer}.pem"), format!("{signer}.key"));
        let mut args = vec![
            tool,
            "-sign",
            "-nodetach",
            "-binary",
            "-in",
            "spec.json",
            "-signer",
            &cert,
            "-inkey",
            &key,
            "-outform",
            "PEM",
            "-out",
            &out,
        ];
        args.extend_from_slice(extra);
        openssl(self.dir.path(), &args);
        std::fs::read_to_string(self.path(&out)).unwrap()
    }

    fn anchors(&self, name: &str) -> TrustAnchors {
        TrustAnchors::from_pem_file(&self.path(name)).unwrap()
    }
}

fn fastrand_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn pkcs7(payload: &str) -> Envelope {
    Envelope {
        format: "PKCS7/JSON".into(),
        payload: payload.into(),
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64ct::Base64::decode_vec(&b64).unwrap()
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64ct::Base64::encode_string(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
        lines.join("\n")
    )
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn signed_specs_open_with_and_without_anchors() {
    let pki = Pki::new();
    let ca = pki.anchors("ca.pem");
    for (tool, signer, extra) in [
        ("smime", "signer", vec![]),
        ("cms", "signer", vec![]),
        ("smime", "signer", vec!["-md", "sha1"]),
        ("smime", "signer", vec!["-noattr"]),
        ("cms", "signer", vec!["-keyid"]),
        ("cms", "signer", vec!["-stream"]),
        ("cms", "ecsigner", vec![]),
        ("smime", "ecsigner", vec!["-md", "sha384"]),
    ] {
        let pem = pki.sign(tool, signer, &extra);
        let what = format!("{tool} {signer} {extra:?}");
        assert_eq!(
            open_envelope(&pkcs7(&pem), SpecFormatPolicy::PkcsOnly, None).unwrap(),
            SPEC,
            "{what}"
        );
        assert_eq!(
            open_envelope(&pkcs7(&pem), SpecFormatPolicy::PkcsOnly, Some(&ca)).unwrap(),
            SPEC,
            "{what}"
        );
    }
    // Through an intermediate carried in the SignedData.
    let pem = pki.sign("smime", "leaf2", &["-certfile", "inter.pem"]);
    assert_eq!(
        open_envelope(&pkcs7(&pem), SpecFormatPolicy::PkcsOnly, Some(&ca)).unwrap(),
        SPEC
    );
    // Without the intermediate the chain is broken.
    let pem = pki.sign("smime", "leaf2", &[]);
    let e = open_envelope(&pkcs7(&pem), SpecFormatPolicy::PkcsOnly, Some(&ca)).unwrap_err();
    assert!(matches!(e, SpecEnvelopeError::Untrusted(_)), "{e}");
    // Fields decode.
    let spec = open_and_decode(
        &pkcs7(&pki.sign("cms", "signer", &[])),
        SpecFormatPolicy::PkcsOnly,
        Some(&ca),
    )
    .unwrap();
    assert_eq!(spec.deployment_id, "d-ABCDEFGHI");
}

#[test]
fn altered_content_or_signature_is_refused() {
    let pki = Pki::new();
    for extra in [vec![], vec!["-noattr"]] {
        let pem = pki.sign("smime", "signer", &extra);
        let der = pem_to_der(&pem);
        // One byte of the content: d-ABCDEFGHI -> d-XBCDEFGHI.
        let mut altered = der.clone();
        altered[find(&der, b"d-ABCDEFGHI") + 2] = b'X';
        let e = open_envelope(
            &pkcs7(&der_to_pem(&altered)),
            SpecFormatPolicy::PkcsOnly,
            None,
        )
        .unwrap_err();
        assert!(
            matches!(e, SpecEnvelopeError::Signature(_)),
            "{extra:?}: {e}"
        );
        // The last byte is inside the signature value.
        let mut altered = der.clone();
        *altered.last_mut().unwrap() ^= 1;
        let e = open_envelope(
            &pkcs7(&der_to_pem(&altered)),
            SpecFormatPolicy::PkcsOnly,
            None,
        )
        .unwrap_err();
        assert!(
            matches!(e, SpecEnvelopeError::Signature(_)),
            "{extra:?}: {e}"
        );
        // The untouched payload still opens (the alterations were what failed).
        assert_eq!(
            open_envelope(&pkcs7(&der_to_pem(&der)), SpecFormatPolicy::PkcsOnly, None).unwrap(),
            SPEC
        );
    }
    // Truncated: a parse error, not a panic.
    let der = pem_to_der(&pki.sign("cms", "signer", &[]));
    let e = open_envelope(
        &pkcs7(&der_to_pem(&der[..der.len() / 2])),
        SpecFormatPolicy::PkcsOnly,
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("Could not parse the PKCS7"),
        "{e}"
    );
}

#[test]
fn wrong_ca_and_validity_are_refused() {
    let pki = Pki::new();
    let pem = pki.sign("smime", "signer", &[]);
    let other = pki.anchors("other.pem");
    let e = open_envelope(&pkcs7(&pem), SpecFormatPolicy::PkcsOnly, Some(&other)).unwrap_err();
    assert!(matches!(e, SpecEnvelopeError::Untrusted(_)), "{e}");
    assert!(e.to_string().contains("Deployment Signer"), "{e}");
    let ca = pki.anchors("ca.pem");
    let now = SystemTime::now();
    let day = Duration::from_secs(86400);
    assert!(open_envelope_at(
        &pkcs7(&pem),
        SpecFormatPolicy::PkcsOnly,
        Some(&ca),
        now + day
    )
    .is_ok());
    let e = open_envelope_at(
        &pkcs7(&pem),
        SpecFormatPolicy::PkcsOnly,
        Some(&ca),
        now + 11 * day,
    )
    .unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    let e = open_envelope_at(
        &pkcs7(&pem),
        SpecFormatPolicy::PkcsOnly,
        Some(&ca),
        now - day,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not valid before"), "{e}");
    // Without anchors only integrity is checked, so the clock does not matter.
    assert!(open_envelope_at(
        &pkcs7(&pem),
        SpecFormatPolicy::PkcsOnly,
        None,
        now + 11 * day
    )
    .is_ok());
    // A self-signed signer listed as an anchor is trusted directly.
    let self_signed = pki.sign("smime", "other", &[]);
    assert!(open_envelope(
        &pkcs7(&self_signed),
        SpecFormatPolicy::PkcsOnly,
        Some(&other)
    )
    .is_ok());
    assert!(open_envelope(&pkcs7(&self_signed), SpecFormatPolicy::PkcsOnly, Some(&ca)).is_err());
}

#[test]
fn text_json_only_when_allowed() {
    let env = Envelope {
        format: "TEXT/JSON".into(),
        payload: SPEC.into(),
    };
    let e = open_envelope(&env, SpecFormatPolicy::PkcsOnly, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unsupported DeploymentSpecification format: TEXT/JSON"
    );
    assert_eq!(
        open_envelope(&env, SpecFormatPolicy::AllowTextJson, None).unwrap(),
        SPEC
    );
    let bad = Envelope {
        format: "TEXT/JSON".into(),
        payload: r#"{"DeploymentId":"d-1"}"#.into(),
    };
    let e = open_and_decode(&bad, SpecFormatPolicy::AllowTextJson, None).unwrap_err();
    assert!(matches!(e, SpecEnvelopeError::Spec(_)), "{e}");
}

#[test]
fn trust_anchor_files() {
    // The service's signer CA chain, as published for the host agent (a copy in the repository).
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/host-agent-deployment-signer-ca-chain.pem");
    let anchors = TrustAnchors::from_pem_file(&reference).unwrap();
    assert_eq!(anchors.len(), 4, "{:?}", anchors.subjects());
    assert!(
        anchors.subjects().iter().any(|s| s.contains("VeriSign")),
        "{:?}",
        anchors.subjects()
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let e = TrustAnchors::from_pem_file(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "Could not load certificate store '{}'",
            missing.display()
        )),
        "{e}"
    );
    std::fs::write(
        dir.path().join("bad.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(TrustAnchors::from_pem_file(&dir.path().join("bad.pem")).is_err());
}
