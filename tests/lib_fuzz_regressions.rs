//! Inputs that the fuzz targets in fuzz/ found, or that writing them turned up (FUZZING.md
//! lists each with its fix), fed through the same public entry points as the targets. Each
//! must now be refused with a clear error: no panic, no stack overflow, no hang.
//!
//! Small inputs are committed in tests/fixtures/fuzz-regressions/ as `<target>-<what>.<ext>`
//! and listed in [`COMMITTED`]; inputs too large to commit are built here.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64ct::{Base64, Encoding};
use codedeploy_agent::bundle::{unpack_file, unpack_reader, BundleType, UnpackOptions};
use codedeploy_agent::control::{open_envelope_at, Envelope, SpecEnvelopeError, SpecFormatPolicy};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions")
}

/// Every committed input and a part of the error it must now give.
const COMMITTED: &[(&str, &str)] = &[
    // A pax `size` record of u64::MAX on a directory: adding the block padding overflowed
    // (a panic with overflow checks; a silent wrap to 0 and a misread stream without).
    (
        "tar-pax-size-overflows.tar",
        "member size 18446744073709551615 is too large",
    ),
    // A DeploymentId ARN ending in `deployment/` shortened to an empty id, which named the
    // group's directory as the deployment's (found by the deployspec target).
    (
        "deployspec-arn-without-resource-id.json",
        r#"DeploymentId "" cannot be used as a directory name"#,
    ),
    // A 2.5 KiB SignedData whose certificate's name holds a string claiming 190 MiB: the
    // `der` crate sized a buffer from that length before reading, so the agent allocated
    // 190 MiB per such spec (found by the pkcs7 target; the allocator below aborts on it).
    (
        "pkcs7-huge-inner-length.der",
        "runs past the end of the data",
    ),
];

/// Refuses, like the fuzz harness, any single allocation above 64 MiB: a parser that sizes a
/// buffer from a length it has not checked aborts this test binary instead of passing.
struct CappedAlloc;

const MAX_ALLOC: usize = 64 << 20;

// The workspace denies `unsafe_code` outside src/sys.rs; GlobalAlloc is an unsafe trait and
// this allocator exists only in this test binary, so it is allowed on this item alone.
// SAFETY: forwards every call to the system allocator unchanged, except that it reports
// failure (a null pointer, which the GlobalAlloc contract allows) for oversized requests.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn opts() -> UnpackOptions {
    UnpackOptions {
        max_total_bytes: 4 << 20,
        reject_setuid: false,
        restore_ownership: false,
        reserve: None,
    }
}

/// What the fuzz target of `file` (named by its prefix) does with `data`, as an error text.
fn refusal(file: &str, data: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let target = file.split('-').next().unwrap();
    let outcome = match target {
        "tar" | "tgz" => {
            let kind = if target == "tar" {
                BundleType::Tar
            } else {
                BundleType::Tgz
            };
            unpack_reader(Cursor::new(data), kind, &archive, &opts()).map(|_| ())
        }
        "zip" => {
            let bundle = tmp.path().join("bundle.zip");
            std::fs::write(&bundle, data).unwrap();
            unpack_file(&bundle, BundleType::Zip, &archive, &opts()).map(|_| ())
        }
        "deployspec" => {
            let text = std::str::from_utf8(data).unwrap();
            return match codedeploy_agent::deployspec::decode(text) {
                Ok(spec) => panic!("{file}: accepted as {spec:?}, expected a refusal"),
                Err(e) => e.to_string(),
            };
        }
        "pkcs7" => {
            let env = Envelope {
                format: "PKCS7/JSON".into(),
                payload: Base64::encode_string(data),
            };
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            return match open_envelope_at(&env, SpecFormatPolicy::PkcsOnly, None, now) {
                Ok(text) => panic!("{file}: accepted as {text:?}, expected a refusal"),
                Err(e) => e.to_string(),
            };
        }
        other => panic!("{file}: no runner for target {other:?}; add one here"),
    };
    match outcome {
        Ok(()) => panic!("{file}: accepted, expected a refusal"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn committed_inputs_are_refused_with_a_clear_error() {
    for (file, want) in COMMITTED {
        let data = std::fs::read(dir().join(file)).unwrap();
        let got = refusal(file, &data);
        assert!(got.contains(want), "{file}: got {got:?}, want {want:?}");
    }
}

#[test]
fn every_committed_input_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "README.md")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = COMMITTED.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// DER of `tag` around `content`.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// `depth` constructed OCTET STRINGs (tag 0x24) around a primitive one, built in linear time.
fn nested_octets(depth: usize) -> Vec<u8> {
    let leaf = tlv(0x04, b"{}");
    let mut sizes = vec![leaf.len()];
    for _ in 0..depth {
        let inner = *sizes.last().unwrap();
        sizes.push(1 + length(inner).len() + inner);
    }
    let mut out = Vec::with_capacity(sizes[depth]);
    for level in (0..depth).rev() {
        out.push(0x24);
        out.extend(length(sizes[level]));
    }
    out.extend(leaf);
    out
}

/// Found while writing the pkcs7 target: nested constructed OCTET STRINGs in the eContent
/// recursed once per level, and 30,000 levels (130 KiB, read before any signature is checked)
/// overflowed the 2 MiB stack of the agent's threads, killing the daemon. The input is too
/// large to commit, so it is built here.
#[test]
fn deeply_nested_pkcs7_content_is_refused_on_an_agent_sized_stack() {
    const SIGNED_DATA: &str = "06092a864886f70d010702";
    const DATA: &str = "06092a864886f70d010701";
    let hex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let mut encap = hex(DATA);
    encap.extend(tlv(0xa0, &nested_octets(30_000)));
    let mut sd = tlv(0x02, &[1]);
    sd.extend(tlv(0x31, &[]));
    sd.extend(tlv(0x30, &encap));
    sd.extend(tlv(0x31, &[]));
    let mut ci = hex(SIGNED_DATA);
    ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
    let der = tlv(0x30, &ci);
    assert!(der.len() > 100_000);
    let env = Envelope {
        format: "PKCS7/JSON".into(),
        payload: Base64::encode_string(&der),
    };
    // Tokio workers and std threads get 2 MiB; the check runs on such a stack.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            open_envelope_at(&env, SpecFormatPolicy::PkcsOnly, None, now)
        })
        .unwrap();
    match handle.join().unwrap() {
        Err(e @ SpecEnvelopeError::Parse(_)) => {
            assert!(e.to_string().contains("nesting too deep"), "{e}")
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}
