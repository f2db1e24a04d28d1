//! Names are bytes in every reader: tar (ustar, GNU long name, pax path), zip (with and
//! without the UTF-8 flag; CP437 bytes are never transcoded) and directory bundles. Names that
//! a lossy conversion would merge stay apart, and errors show names through the escaping.

#[path = "support/bundle.rs"]
mod bundle_support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bundle_support::*;
use codedeploy_agent::bundle::{
    copy_directory_bundle, unpack_file, unpack_reader, BundleError, BundleType,
};
use tar::EntryType;

fn at(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

fn read(dir: &Path, name: &[u8]) -> Vec<u8> {
    fs::read(at(dir, name)).unwrap_or_else(|e| panic!("{:?}: {e}", at(dir, name)))
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn raw_file<'a>(name: &'a [u8], data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        ..Raw::file("", data)
    }
}

#[test]
fn tar_names_that_only_differ_in_non_utf8_bytes_stay_apart() {
    let long = [b"d/".repeat(60).as_slice(), b"long\xe9"].concat();
    let pax = pax_record("path", b"pax/caf\xe9\xff");
    let raw = tar_bytes(&[
        raw_file(b"caf\xe9", b"e9"),
        raw_file(b"caf\xe8", b"e8"),
        Raw {
            kind: EntryType::XHeader,
            ..Raw::file("PaxHeaders/x", &pax)
        },
        Raw::file("replaced-by-pax", b"pax"),
        Raw {
            kind: EntryType::GNULongName,
            ..raw_file(b"././@LongLink", &long)
        },
        Raw::file("replaced-by-long-name", b"long"),
    ]);
    for kind in [BundleType::Tar, BundleType::Tgz] {
        let l = Layout::new();
        let bytes = if kind == BundleType::Tgz {
            gzip(&raw)
        } else {
            raw.clone()
        };
        let r = unpack_reader(&bytes[..], kind, &l.archive, &opts()).unwrap();
        assert_eq!(r.files, 4);
        assert_eq!(read(&l.archive, b"caf\xe9"), b"e9");
        assert_eq!(read(&l.archive, b"caf\xe8"), b"e8");
        assert_eq!(read(&l.archive, b"pax/caf\xe9\xff"), b"pax");
        assert_eq!(read(&l.archive, &long), b"long");
        assert!(!l.archive.join("caf\u{fffd}").exists());
    }
}

/// A zip whose names are `names` byte for byte: written with same-length ASCII placeholders
/// (no UTF-8 flag for ASCII) and patched; `flagged` names are given to the zip crate as
/// UTF-8 text, which sets the UTF-8 flag for non-ASCII names.
fn zip_with_names(raw: &[(&[u8], &[u8])], flagged: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut patches = Vec::new();
    for (i, (name, data)) in raw.iter().enumerate() {
        let ph: String = std::iter::once('Z')
            .chain(std::iter::repeat_n(
                char::from(b'A' + i as u8),
                name.len() - 1,
            ))
            .collect();
        w.start_file(ph.as_str(), opts.unix_permissions(0o644))
            .unwrap();
        w.write_all(data).unwrap();
        patches.push((ph, *name));
    }
    for (name, data) in flagged {
        w.start_file(*name, opts.unix_permissions(0o644)).unwrap();
        w.write_all(data).unwrap();
    }
    let mut bytes = w.finish().unwrap().into_inner();
    for (ph, name) in patches {
        let ph = ph.as_bytes();
        let mut hits = 0;
        for i in 0..=bytes.len() - ph.len() {
            if &bytes[i..i + ph.len()] == ph {
                bytes[i..i + ph.len()].copy_from_slice(name);
                hits += 1;
            }
        }
        assert_eq!(hits, 2);
    }
    bytes
}

#[test]
fn zip_names_follow_the_utf8_flag_and_are_never_transcoded() {
    // 0x82 is `é` in CP437: transcoding it would make `caf\x82` collide with UTF-8 `café`.
    let zip = zip_with_names(
        &[
            (b"caf\x82", b"cp437"),
            (b"caf\xe9", b"latin1"),
            (b"caf\xe8", b"other"),
        ],
        &[("café", b"utf8")],
    );
    let l = Layout::new();
    let b = write(&l.bundle("bundle.zip"), &zip);
    let r = unpack_file(&b, BundleType::Zip, &l.archive, &opts()).unwrap();
    assert_eq!(r.files, 4);
    assert_eq!(read(&l.archive, b"caf\x82"), b"cp437");
    assert_eq!(read(&l.archive, b"caf\xe9"), b"latin1");
    assert_eq!(read(&l.archive, b"caf\xe8"), b"other");
    assert_eq!(read(&l.archive, "café".as_bytes()), b"utf8");
}

#[test]
fn directory_bundles_keep_byte_names() {
    let l = Layout::new();
    let src = l.tmp.path().join("src");
    fs::create_dir_all(at(&src, b"d\xff")).unwrap();
    fs::write(at(&src, b"d\xff/caf\xe9"), "a").unwrap();
    fs::write(at(&src, b"d\xff/caf\xe8"), "b").unwrap();
    copy_directory_bundle(&src, &l.archive, &opts()).unwrap();
    assert_eq!(read(&l.archive, b"d\xff/caf\xe9"), b"a");
    assert_eq!(read(&l.archive, b"d\xff/caf\xe8"), b"b");
}

#[test]
fn refusals_show_byte_names_escaped() {
    let raw = tar_bytes(&[raw_file(b"../caf\xe9", b"x")]);
    let l = Layout::new();
    let err = unpack_reader(&raw[..], BundleType::Tar, &l.archive, &opts()).unwrap_err();
    match &err {
        BundleError::Refused { entry, .. } => assert_eq!(entry, "../caf\\xe9"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("../caf\\xe9"), "{err}");
    l.assert_sentinel_untouched();
}
