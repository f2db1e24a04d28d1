//! Hostile bundles: each kind of escape or unsafe member, as tar, tgz and zip. Every one must
//! be refused with an error naming the member, and the sentinel directory next to the archive
//! dir must be untouched.

#[path = "support/bundle.rs"]
mod bundle_support;

use std::fs;
use std::os::unix::fs::symlink;

use bundle_support::*;
use codedeploy_agent::bundle::{
    copy_directory_bundle, list_bundle, unpack_file, unpack_reader, BundleError, BundleType,
    UnpackOptions, Unsafe,
};

/// `validate`'s listing of the bundle file at `b` must refuse it as the unpack did.
fn listing_agrees(b: &std::path::Path, opts: &UnpackOptions, unpacked: &BundleError) {
    let listed = list_bundle(b, opts, None, &["appspec.yml"]).unwrap_err();
    let judged = |e: &BundleError| match e {
        BundleError::Refused { entry, reason, .. } => format!("refused {entry:?}: {reason}"),
        BundleError::TooLarge { entry, limit, .. } => format!("too large {entry:?} {limit}"),
        other => format!("{:?}", std::mem::discriminant(other)),
    };
    assert_eq!(judged(&listed), judged(unpacked), "{listed} / {unpacked}");
}

/// A refused unpack leaves no archive dir behind (unless one was a symlink to begin with).
fn assert_removed(l: &Layout) {
    let left = fs::symlink_metadata(&l.archive).is_ok_and(|m| m.is_dir());
    assert!(
        !left,
        "the partial extraction was left in {}",
        l.archive.display()
    );
}
use tar::EntryType;

/// Unpacks `tar` both as a tar file and gzipped as a tgz stream; both must fail with `check`.
fn refuse_tar_and_tgz(
    members: &[Raw<'_>],
    opts: &UnpackOptions,
    prepare: impl Fn(&Layout),
    check: impl Fn(&BundleError),
) {
    let raw = tar_bytes(members);
    for kind in [BundleType::Tar, BundleType::Tgz] {
        let l = Layout::new();
        prepare(&l);
        // What was on disk before matters to the unpack, not to a listing.
        let fresh = fs::symlink_metadata(&l.archive).is_err();
        let err = if kind == BundleType::Tar {
            let b = write(&l.bundle("bundle.tar"), &raw);
            let err = unpack_file(&b, kind, &l.archive, opts).unwrap_err();
            if fresh {
                listing_agrees(&b, opts, &err);
            }
            err
        } else {
            let gz = gzip(&raw);
            unpack_reader(&gz[..], kind, &l.archive, opts).unwrap_err()
        };
        check(&err);
        assert_removed(&l);
        l.assert_sentinel_untouched();
    }
}

fn refuse_zip(members: &[Z<'_>], opts: &UnpackOptions, check: impl Fn(&BundleError)) {
    let l = Layout::new();
    let b = write(&l.bundle("bundle.tar"), &zip_bytes(members));
    let err = unpack_file(&b, BundleType::Zip, &l.archive, opts).unwrap_err();
    check(&err);
    listing_agrees(&b, opts, &err);
    assert_removed(&l);
    l.assert_sentinel_untouched();
}

fn refused(err: &BundleError, want_entry: &str, want: impl Fn(&Unsafe) -> bool) {
    match err {
        BundleError::Refused { entry, reason, .. } => {
            assert_eq!(entry, want_entry, "{err}");
            assert!(want(reason), "unexpected reason: {err}");
            let msg = err.to_string();
            assert!(msg.contains(want_entry), "{msg}");
            assert!(msg.contains("partial extraction"), "{msg}");
        }
        other => panic!("expected a refusal naming {want_entry}, got {other}"),
    }
}

#[test]
fn absolute_path() {
    let probe = Layout::new();
    let abs = probe.sentinel.join("pwned").to_string_lossy().into_owned();
    let members = [Raw::file("ok.txt", b"ok"), Raw::file(&abs, b"x")];
    refuse_tar_and_tgz(
        &members,
        &opts(),
        |_| {},
        |e| refused(e, &abs, |r| *r == Unsafe::AbsolutePath),
    );
    refuse_zip(&[Z::File(&abs, 0o644, b"x")], &opts(), |e| {
        refused(e, &abs, |r| *r == Unsafe::AbsolutePath)
    });
}

#[test]
fn dot_dot_escape() {
    let name = "a/../../../sentinel/pwned";
    let members = [Raw::dir("a/"), Raw::file(name, b"x")];
    refuse_tar_and_tgz(
        &members,
        &opts(),
        |_| {},
        |e| refused(e, name, |r| *r == Unsafe::Escapes),
    );
    refuse_zip(&[Z::File(name, 0o644, b"x")], &opts(), |e| {
        refused(e, name, |r| *r == Unsafe::Escapes)
    });
}

#[test]
fn file_through_symlink_from_the_archive() {
    let probe = Layout::new();
    let target = probe.sentinel.to_string_lossy().into_owned();
    let rel = "../../sentinel";
    for t in [target.as_str(), rel] {
        let members = [Raw::symlink("link", t), Raw::file("link/pwned", b"x")];
        refuse_tar_and_tgz(
            &members,
            &opts(),
            |_| {},
            |e| {
                refused(
                    e,
                    "link/pwned",
                    |r| matches!(r, Unsafe::ThroughSymlink { component } if component == "link"),
                )
            },
        );
        refuse_zip(
            &[Z::Symlink("link", t), Z::File("link/pwned", 0o644, b"x")],
            &opts(),
            |e| {
                refused(e, "link/pwned", |r| {
                    matches!(r, Unsafe::ThroughSymlink { .. })
                })
            },
        );
    }
}

#[test]
fn symlink_already_on_disk() {
    let members = [Raw::file("pre/pwned", b"x")];
    refuse_tar_and_tgz(
        &members,
        &opts(),
        |l| {
            fs::create_dir_all(&l.archive).unwrap();
            symlink(&l.sentinel, l.archive.join("pre")).unwrap();
        },
        |e| {
            refused(e, "pre/pwned", |r| {
                matches!(r, Unsafe::ThroughSymlink { .. })
            })
        },
    );
    // A directory member over the pre-existing symlink is refused as well.
    refuse_tar_and_tgz(
        &[Raw::dir("pre/")],
        &opts(),
        |l| {
            fs::create_dir_all(&l.archive).unwrap();
            symlink(&l.sentinel, l.archive.join("pre")).unwrap();
        },
        |e| refused(e, "pre/", |r| matches!(r, Unsafe::ThroughSymlink { .. })),
    );
}

#[test]
fn symlink_as_final_component_is_replaced_not_followed() {
    // A file member whose name is an existing symlink replaces the link; the target is untouched.
    let l = Layout::new();
    let raw = tar_bytes(&[
        Raw::symlink("f", &l.sentinel.join("file").to_string_lossy()),
        Raw::file("f", b"new"),
    ]);
    let b = write(&l.bundle("bundle.tar"), &raw);
    unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
    assert_eq!(fs::read(l.archive.join("f")).unwrap(), b"new");
    assert!(!fs::symlink_metadata(l.archive.join("f"))
        .unwrap()
        .file_type()
        .is_symlink());
    l.assert_sentinel_untouched();
}

#[test]
fn hard_link_outside() {
    let probe = Layout::new();
    let abs = probe.sentinel.join("file").to_string_lossy().into_owned();
    for target in ["../../sentinel/file", abs.as_str()] {
        let members = [Raw::hardlink("h", target)];
        refuse_tar_and_tgz(
            &members,
            &opts(),
            |_| {},
            |e| refused(e, "h", |r| matches!(r, Unsafe::HardLinkOutside { .. })),
        );
    }
    // Through a symlink made earlier in the same archive.
    let members = [
        Raw::symlink("s", "../../sentinel"),
        Raw::hardlink("h", "s/file"),
    ];
    refuse_tar_and_tgz(
        &members,
        &opts(),
        |_| {},
        |e| refused(e, "h", |r| matches!(r, Unsafe::ThroughSymlink { .. })),
    );
}

#[test]
fn hard_link_inside_works_and_is_not_written_through() {
    let l = Layout::new();
    let raw = tar_bytes(&[
        Raw::file("a", b"one"),
        Raw::hardlink("b", "a"),
        Raw::file("b", b"two"),
    ]);
    let b = write(&l.bundle("bundle.tar"), &raw);
    unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
    assert_eq!(fs::read(l.archive.join("a")).unwrap(), b"one");
    assert_eq!(fs::read(l.archive.join("b")).unwrap(), b"two");
}

#[test]
fn device_node_and_fifo() {
    for (kind, what) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
    ] {
        let members = [Raw {
            kind,
            ..Raw::file("dev", b"")
        }];
        refuse_tar_and_tgz(
            &members,
            &opts(),
            |_| {},
            |e| refused(e, "dev", |r| *r == Unsafe::Special(what)),
        );
    }
    refuse_zip(&[Z::RawMode("fifo", 0o010644, b"")], &opts(), |e| {
        refused(e, "fifo", |r| *r == Unsafe::Special("fifo"))
    });
    refuse_zip(&[Z::RawMode("sock", 0o140755, b"")], &opts(), |e| {
        refused(e, "sock", |r| *r == Unsafe::Special("socket"))
    });
}

fn too_large(err: &BundleError, want_entry: &str, want_limit: u64) {
    match err {
        BundleError::TooLarge { entry, limit, .. } => {
            assert_eq!(entry, want_entry);
            assert_eq!(*limit, want_limit);
            let msg = err.to_string();
            assert!(
                msg.contains(&want_limit.to_string()) && msg.contains(want_entry),
                "{msg}"
            );
        }
        other => panic!("expected TooLarge, got {other}"),
    }
}

#[test]
fn bomb_small_compressed_huge_unpacked() {
    let limit = 1 << 20;
    let opts = UnpackOptions {
        max_total_bytes: limit,
        ..opts()
    };
    let zeros = vec![0u8; 32 << 20];
    let raw = tar_bytes(&[Raw::file("small", b"hello"), Raw::file("bomb", &zeros)]);
    let gz = gzip(&raw);
    assert!(gz.len() < 200 * 1024, "bomb should compress well");
    let l = Layout::new();
    let b = write(&l.bundle("bundle.tar"), &gz);
    let err = unpack_file(&b, BundleType::Tgz, &l.archive, &opts).unwrap_err();
    too_large(&err, "bomb", limit);
    l.assert_sentinel_untouched();
    // Written bytes never pass the limit.
    let written = fs::metadata(l.archive.join("bomb")).map_or(0, |m| m.len());
    assert!(written + 5 <= limit);

    refuse_zip(&[Z::File("bomb", 0o644, &zeros)], &opts, |e| {
        too_large(e, "bomb", limit)
    });
}

#[test]
fn lying_size_is_counted_as_written() {
    // Many small files, each under the limit, together over it.
    let limit = 10_000;
    let opts = UnpackOptions {
        max_total_bytes: limit,
        ..opts()
    };
    let data = vec![7u8; 3000];
    let names: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
    let members: Vec<Raw<'_>> = names.iter().map(|n| Raw::file(n, &data)).collect();
    refuse_tar_and_tgz(&members, &opts, |_| {}, |e| too_large(e, "f3", limit));
}

#[test]
fn setuid_rejected_when_asked() {
    let strict = UnpackOptions {
        reject_setuid: true,
        ..opts()
    };
    for mode in [0o4755, 0o2755] {
        let members = [Raw {
            mode,
            ..Raw::file("bin/tool", b"#!/bin/sh\n")
        }];
        refuse_tar_and_tgz(
            &members,
            &strict,
            |_| {},
            |e| refused(e, "bin/tool", |r| *r == Unsafe::Setuid { mode }),
        );
    }
    refuse_zip(&[Z::RawMode("tool", 0o104755, b"x")], &strict, |e| {
        refused(e, "tool", |r| *r == Unsafe::Setuid { mode: 0o4755 })
    });
}

#[test]
fn setuid_kept_when_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let l = Layout::new();
    let raw = tar_bytes(&[Raw {
        mode: 0o4755,
        ..Raw::file("tool", b"x")
    }]);
    let b = write(&l.bundle("bundle.tar"), &raw);
    unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
    let mode = fs::metadata(l.archive.join("tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o4755);
}

#[test]
fn oversized_metadata_headers_are_refused_without_allocating() {
    // A GNU long-name header claiming 1 GiB: refused from its size field alone.
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(EntryType::GNULongName);
    h.set_size(1 << 30);
    h.set_cksum();
    let l = Layout::new();
    let b = write(&l.bundle("bundle.tar"), h.as_bytes());
    let err = unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap_err();
    assert!(matches!(err, BundleError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("exceeds"), "{err}");
}

#[test]
fn directory_bundle_is_bounded_too() {
    // Small files are read whole, large ones copied in the kernel: both count against the
    // limit, and a large file never lands more than the limit's worth on disk.
    let limit: u64 = 1 << 20;
    let opts = UnpackOptions {
        max_total_bytes: limit,
        ..opts()
    };
    let l = Layout::new();
    let src = l.tmp.path().join("small-files");
    fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        fs::write(src.join(format!("f{i}")), vec![1u8; 200 * 1024]).unwrap();
    }
    let err = copy_directory_bundle(&src, &l.archive, &opts).unwrap_err();
    match &err {
        BundleError::TooLarge { limit: got, .. } => assert_eq!(got, &limit),
        other => panic!("expected TooLarge, got {other}"),
    }

    let l = Layout::new();
    let src = l.tmp.path().join("big-file");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big"), vec![2u8; 3 << 20]).unwrap();
    let err = copy_directory_bundle(&src, &l.archive, &opts).unwrap_err();
    too_large(&err, "big", limit);
    let written = fs::metadata(l.archive.join("big")).map_or(0, |m| m.len());
    assert!(
        written <= limit + 1,
        "wrote {written} bytes past a {limit} limit"
    );
    l.assert_sentinel_untouched();

    // Exactly at the limit is fine.
    let l = Layout::new();
    let src = l.tmp.path().join("fits");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), vec![3u8; (limit / 2) as usize]).unwrap();
    fs::write(src.join("b"), vec![4u8; (limit / 2) as usize]).unwrap();
    let r = copy_directory_bundle(&src, &l.archive, &opts).unwrap();
    assert_eq!(r.bytes, limit);
    assert_eq!(
        fs::read(l.archive.join("b")).unwrap(),
        vec![4u8; (limit / 2) as usize]
    );
}

#[test]
fn archive_order_holds_with_several_writers() {
    // Members spread over many directories go to several writer threads; what depends on
    // order must still come out as in a one-pass unpack: a later duplicate wins, a hard
    // link finds its target, a symlink made earlier is never written through.
    let names: Vec<String> = (0..40).map(|d| format!("d{d:02}/f")).collect();
    let mut members: Vec<Raw<'_>> = names.iter().map(|n| Raw::file(n, b"first")).collect();
    members.push(Raw::file("d00/f", b"second"));
    members.push(Raw::hardlink("d39/again", "d00/f"));
    members.push(Raw::file("d20/g", b"g"));
    let l = Layout::new();
    let b = write(&l.bundle("ok.tar"), &tar_bytes(&members));
    unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
    assert_eq!(fs::read(l.archive.join("d00/f")).unwrap(), b"second");
    assert_eq!(fs::read(l.archive.join("d39/again")).unwrap(), b"second");
    assert_eq!(fs::read(l.archive.join("d01/f")).unwrap(), b"first");

    let target = l.sentinel.to_string_lossy().into_owned();
    members.push(Raw::symlink("d05/link", &target));
    members.push(Raw::file("d05/link/pwned", b"x"));
    members.push(Raw::file("d30/h", b"h"));
    refuse_tar_and_tgz(
        &members,
        &opts(),
        |_| {},
        |e| {
            refused(
                e,
                "d05/link/pwned",
                |r| matches!(r, Unsafe::ThroughSymlink { component } if component == "d05/link"),
            )
        },
    );
}
