//! Well-formed bundles: type checks, top-level stripping, metadata preservation, directory
//! bundles, GitHub tarballs, and streaming from a reader that returns odd-sized pieces.

#[path = "support/bundle.rs"]
mod bundle_support;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use bundle_support::*;
use codedeploy_agent::bundle::{
    copy_directory_bundle, unpack_file, unpack_reader, unpack_reader_named, BundleError,
    BundleType, UnpackOptions, Unsafe,
};
use tar::EntryType;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}
fn mtime(p: &Path) -> i64 {
    fs::symlink_metadata(p).unwrap().mtime()
}

fn mismatch(bytes: &[u8], kind: BundleType, want: &str) {
    let l = Layout::new();
    let b = write(&l.bundle("bundle.tar"), bytes);
    let err = unpack_file(&b, kind, &l.archive, &opts()).unwrap_err();
    assert!(matches!(err, BundleError::TypeMismatch { .. }), "{err}");
    let msg = err.to_string();
    let expected = format!("bundle {} was declared {kind} but is {want}", b.display());
    assert!(msg.starts_with(&expected), "{msg}");
}

#[test]
fn declared_type_must_match_content() {
    let tar = tar_bytes(&[Raw::file("a", b"a")]);
    let zip = zip_bytes(&[Z::File("a", 0o644, b"a")]);
    mismatch(&zip, BundleType::Tgz, "a zip archive");
    mismatch(&zip, BundleType::Tar, "a zip archive");
    mismatch(&gzip(&tar), BundleType::Zip, "a gzip stream");
    mismatch(&tar, BundleType::Tgz, "a tar archive");
    mismatch(&tar, BundleType::Zip, "a tar archive");
    mismatch(
        b"just some text",
        BundleType::Tar,
        "not a tar, gzip or zip archive",
    );
    mismatch(b"", BundleType::Tgz, "an empty file");
    let not_tar = "gzip-compressed data that is not a tar archive";
    mismatch(&gzip(b"not a tar at all"), BundleType::Tgz, not_tar);
    mismatch(&gzip(&[b'x'; 4096]), BundleType::Tar, not_tar);
}

#[test]
fn tar_accepts_gzip_like_gnu_tar() {
    // GitHub "tarball" bundles are declared tar but are gzip-compressed.
    let l = Layout::new();
    let b = write(
        &l.bundle("bundle.tar"),
        &gzip(&tar_bytes(&[Raw::file("a", b"x")])),
    );
    let r = unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
    assert_eq!(r.files, 1);
    assert_eq!(fs::read(l.archive.join("a")).unwrap(), b"x");
}

#[test]
fn strips_a_lone_top_level_directory_with_an_appspec() {
    let l = Layout::new();
    let raw = tar_bytes(&[
        Raw::dir("app-1.0/"),
        Raw::file("app-1.0/appspec.yml", b"version: 0.0\nos: linux\n"),
        Raw::dir("app-1.0/scripts/"),
        Raw::file("app-1.0/scripts/start.sh", b"#!/bin/sh\n"),
    ]);
    let b = write(&l.bundle("bundle.tar"), &gzip(&raw));
    let r = unpack_file(&b, BundleType::Tgz, &l.archive, &opts()).unwrap();
    assert_eq!(r.stripped_top_level.as_deref(), Some("app-1.0"));
    assert!(l.archive.join("appspec.yml").is_file());
    assert!(l.archive.join("scripts/start.sh").is_file());
    assert!(!l.deployment.join("deployment-archive-temp").exists());

    // Same for zip.
    let l = Layout::new();
    let z = zip_bytes(&[Z::Dir("w/"), Z::File("w/APPSPEC.yaml", 0o644, b"v")]);
    let b = write(&l.bundle("bundle.tar"), &z);
    let r = unpack_file(&b, BundleType::Zip, &l.archive, &opts()).unwrap();
    assert_eq!(r.stripped_top_level.as_deref(), Some("w"));
    assert!(l.archive.join("APPSPEC.yaml").is_file());
}

#[test]
fn does_not_strip_without_an_appspec_or_with_two_entries() {
    let cases: [&[Raw<'_>]; 2] = [
        &[Raw::dir("app/"), Raw::file("app/readme", b"r")],
        &[Raw::file("app/appspec.yml", b"a"), Raw::file("other", b"o")],
    ];
    for members in cases {
        let l = Layout::new();
        let b = write(&l.bundle("bundle.tar"), &tar_bytes(members));
        let r = unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
        assert_eq!(r.stripped_top_level, None);
        assert!(l.archive.join("app").is_dir());
    }
}

#[test]
fn tar_keeps_modes_symlinks_and_mtimes() {
    let l = Layout::new();
    let raw = tar_bytes(&[
        Raw {
            mode: 0o750,
            mtime: 1_500_000_000,
            ..Raw::dir("d/")
        },
        Raw {
            mode: 0o640,
            mtime: 1_400_000_000,
            ..Raw::file("d/f", b"data")
        },
        Raw {
            mode: 0o755,
            ..Raw::file("d/run.sh", b"#!/bin/sh\n")
        },
        Raw {
            mtime: 1_300_000_000,
            ..Raw::symlink("d/link", "/nonexistent/target")
        },
        Raw {
            mode: 0o555,
            mtime: 1_200_000_000,
            ..Raw::dir("ro/")
        },
        Raw::file("ro/inside", b"i"),
    ]);
    let b = write(&l.bundle("bundle.tar"), &raw);
    let r = unpack_file(&b, BundleType::Tar, &l.archive, &opts()).unwrap();
    assert_eq!((r.files, r.dirs, r.symlinks, r.bytes), (3, 2, 1, 15));
    let a = &l.archive;
    assert_eq!(mode(&a.join("d")), 0o750);
    assert_eq!(mtime(&a.join("d")), 1_500_000_000);
    assert_eq!(mode(&a.join("d/f")), 0o640);
    assert_eq!(mtime(&a.join("d/f")), 1_400_000_000);
    assert_eq!(mode(&a.join("d/run.sh")), 0o755);
    assert_eq!(
        fs::read_link(a.join("d/link")).unwrap(),
        Path::new("/nonexistent/target")
    );
    assert_eq!(mtime(&a.join("d/link")), 1_300_000_000);
    // A read-only directory still received its child; its mode and time applied last.
    assert_eq!(fs::read(a.join("ro/inside")).unwrap(), b"i");
    assert_eq!(mode(&a.join("ro")), 0o555);
    assert_eq!(mtime(&a.join("ro")), 1_200_000_000);
}

#[test]
fn zip_keeps_modes_symlinks_and_mtimes() {
    let l = Layout::new();
    let z = zip_bytes(&[
        Z::Dir("d/"),
        Z::File("d/run.sh", 0o755, b"#!/bin/sh\n"),
        Z::File("d/secret", 0o600, b"s"),
        Z::Symlink("d/link", "run.sh"),
    ]);
    let b = write(&l.bundle("bundle.tar"), &z);
    let r = unpack_file(&b, BundleType::Zip, &l.archive, &opts()).unwrap();
    assert_eq!((r.files, r.dirs, r.symlinks), (2, 1, 1));
    let a = &l.archive;
    assert_eq!(mode(&a.join("d/run.sh")), 0o755);
    assert_eq!(mode(&a.join("d/secret")), 0o600);
    assert_eq!(
        fs::read_link(a.join("d/link")).unwrap(),
        Path::new("run.sh")
    );
    assert_eq!(fs::read(a.join("d/link")).unwrap(), b"#!/bin/sh\n");
    // The DOS time 2020-09-13 12:26:40 is local time; compare in local time.
    let t = mtime(&a.join("d/secret"));
    let want = local_epoch(2020, 9, 13, 12, 26, 40);
    assert_eq!(t, want);
}

/// Seconds since the epoch of a local wall-clock time, as `date` (an oracle independent of
/// the agent's own conversion) computes it.
fn local_epoch(y: i32, mo: i32, d: i32, h: i32, mi: i32, s: i32) -> i64 {
    let out = std::process::Command::new("date")
        .arg("-d")
        .arg(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
        .arg("+%s")
        .output()
        .expect("run date");
    assert!(out.status.success(), "date failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("date prints seconds")
}

#[test]
fn tar_ownership_restored_only_when_asked() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: ownership restore not exercised");
        return;
    }
    let mut h = tar::Header::new_ustar();
    h.set_path("owned").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(4321);
    h.set_gid(4322);
    h.set_username("no-such-user-xyz").unwrap();
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let raw = b.into_inner().unwrap();
    for restore in [false, true] {
        let l = Layout::new();
        let o = UnpackOptions {
            restore_ownership: restore,
            ..opts()
        };
        unpack_reader(&raw[..], BundleType::Tar, &l.archive, &o).unwrap();
        let md = fs::metadata(l.archive.join("owned")).unwrap();
        if restore {
            assert_eq!((md.uid(), md.gid()), (4321, 4322));
        } else {
            assert_eq!(md.uid(), 0);
        }
    }
}

#[test]
fn directory_bundle_is_copied_with_links_modes_and_times() {
    use std::os::unix::fs::symlink;
    let l = Layout::new();
    let src = l.tmp.path().join("src");
    fs::create_dir_all(src.join("scripts")).unwrap();
    fs::write(src.join("appspec.yml"), "version: 0.0\n").unwrap();
    fs::write(src.join("scripts/start.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        src.join("scripts/start.sh"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    symlink(&l.sentinel, src.join("outside")).unwrap();
    symlink("start.sh", src.join("scripts/alias")).unwrap();
    let t = nix::sys::time::TimeSpec::new(1_234_567_890, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &src.join("appspec.yml"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    let r = copy_directory_bundle(&src, &l.archive, &opts()).unwrap();
    assert_eq!((r.files, r.dirs, r.symlinks), (2, 1, 2));
    assert_eq!(r.stripped_top_level, None);
    let a = &l.archive;
    assert_eq!(fs::read(a.join("appspec.yml")).unwrap(), b"version: 0.0\n");
    assert_eq!(mtime(&a.join("appspec.yml")), 1_234_567_890);
    assert_eq!(mode(&a.join("scripts/start.sh")), 0o750);
    assert_eq!(fs::read_link(a.join("outside")).unwrap(), l.sentinel);
    assert_eq!(
        fs::read_link(a.join("scripts/alias")).unwrap(),
        Path::new("start.sh")
    );
    // unpack_file with Directory delegates to the same copy.
    let l2 = Layout::new();
    let r2 = unpack_file(&src, BundleType::Directory, &l2.archive, &opts()).unwrap();
    assert_eq!(r2.files, 2);
    l.assert_sentinel_untouched();
}

#[test]
fn directory_bundle_refuses_a_fifo() {
    let l = Layout::new();
    let src = l.tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    nix::unistd::mkfifo(
        &src.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let err = copy_directory_bundle(&src, &l.archive, &opts()).unwrap_err();
    match err {
        BundleError::Refused { entry, reason, .. } => {
            assert_eq!(entry, "pipe");
            assert_eq!(reason, Unsafe::Special("fifo"));
        }
        other => panic!("{other}"),
    }
}

/// GitHub tarball shape: a pax global header carrying the commit, then one wrapper directory.
#[test]
fn github_style_tarball_with_pax_global_header() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let record = format!("52 comment={sha}\n");
    assert_eq!(record.len(), 52);
    let mut b = tar::Builder::new(Vec::new());
    let mut g = tar::Header::new_ustar();
    g.set_path("pax_global_header").unwrap();
    g.set_entry_type(EntryType::XGlobalHeader);
    g.set_size(record.len() as u64);
    g.set_mode(0o666);
    g.set_cksum();
    b.append(&g, record.as_bytes()).unwrap();
    let top = "octo-app-0123456";
    for (name, data) in [
        (format!("{top}/"), None),
        (format!("{top}/appspec.yml"), Some(&b"version: 0.0\n"[..])),
        (
            format!("{top}/{}/deep.txt", "n".repeat(120)),
            Some(&b"long"[..]),
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(if data.is_some() { 0o664 } else { 0o775 });
        h.set_entry_type(if data.is_some() {
            EntryType::Regular
        } else {
            EntryType::Directory
        });
        h.set_size(data.map_or(0, |d| d.len() as u64));
        b.append_data(&mut h, &name, data.unwrap_or(b"")).unwrap();
    }
    let gz = gzip(&b.into_inner().unwrap());
    let l = Layout::new();
    let r = unpack_reader_named(
        &gz[..],
        BundleType::Tar,
        Path::new("https://api.github.com/repos/o/a/tarball/x"),
        &l.archive,
        &opts(),
    )
    .unwrap();
    assert_eq!(r.stripped_top_level.as_deref(), Some(top));
    assert!(l.archive.join("appspec.yml").is_file());
    let deep = l.archive.join("n".repeat(120)).join("deep.txt");
    assert_eq!(fs::read(deep).unwrap(), b"long");
    assert!(!l.archive.join("pax_global_header").exists());
}

/// Returns at most 7 bytes per read, as a slow network might.
struct Trickle<'a>(&'a [u8]);
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn streams_from_a_reader_in_small_pieces() {
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let raw = tar_bytes(&[Raw::file("big.bin", &big), Raw::file("small", b"s")]);
    for bytes in [raw.clone(), gzip(&raw)] {
        let l = Layout::new();
        let kind = if bytes == raw {
            BundleType::Tar
        } else {
            BundleType::Tgz
        };
        let r = unpack_reader(Trickle(&bytes), kind, &l.archive, &opts()).unwrap();
        assert_eq!(r.bytes, big.len() as u64 + 1);
        assert_eq!(fs::read(l.archive.join("big.bin")).unwrap(), big);
    }
}

#[test]
fn truncated_and_corrupt_bundles_fail() {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let raw = tar_bytes(&[Raw::file("f", &big)]);
    let l = Layout::new();
    let err = unpack_reader(&raw[..60_000], BundleType::Tar, &l.archive, &opts()).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    let mut gz = gzip(&raw);
    let n = gz.len();
    gz[n - 6] ^= 0xff; // CRC/length trailer
    let l = Layout::new();
    let err = unpack_reader(&gz[..], BundleType::Tgz, &l.archive, &opts()).unwrap_err();
    assert!(matches!(err, BundleError::Read { .. }), "{err}");
}

#[test]
fn zip_is_not_streamable() {
    let l = Layout::new();
    let z = zip_bytes(&[Z::File("a", 0o644, b"a")]);
    let err = unpack_reader(&z[..], BundleType::Zip, &l.archive, &opts()).unwrap_err();
    assert!(
        err.to_string().contains("cannot be unpacked from a stream"),
        "{err}"
    );
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // The length prefix counts itself; find the fixed point.
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

#[test]
fn pax_local_header_sets_path_and_fractional_mtime() {
    let long = format!("{}/file.txt", "p".repeat(150));
    let mut pax = pax_record("path", long.as_bytes());
    pax.extend(pax_record("mtime", b"1700000000.25"));
    let raw = tar_bytes(&[
        Raw {
            kind: EntryType::XHeader,
            ..Raw::file("PaxHeaders/x", &pax)
        },
        Raw {
            mode: 0o600,
            mtime: 5,
            ..Raw::file("short-name-replaced-by-pax", b"pax")
        },
    ]);
    let l = Layout::new();
    unpack_reader(&raw[..], BundleType::Tar, &l.archive, &opts()).unwrap();
    let p = l.archive.join(&long);
    assert_eq!(fs::read(&p).unwrap(), b"pax");
    let md = fs::metadata(&p).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_700_000_000, 250_000_000));
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
    assert!(!l.archive.join("short-name-replaced-by-pax").exists());
}

#[test]
fn existing_files_in_the_archive_dir_are_overwritten() {
    // docs/behaviour/bundles.md#zip-extraction: re-extraction over a pre-existing file replaces it.
    let l = Layout::new();
    fs::create_dir_all(&l.archive).unwrap();
    fs::write(l.archive.join("a"), b"old").unwrap();
    let z = zip_bytes(&[Z::File("a", 0o644, b"new"), Z::File("b", 0o644, b"b")]);
    let b = write(&l.bundle("bundle.tar"), &z);
    let r = unpack_file(&b, BundleType::Zip, &l.archive, &opts()).unwrap();
    assert_eq!(r.files, 2);
    assert_eq!(fs::read(l.archive.join("a")).unwrap(), b"new");
    assert_eq!(fs::read_dir(&l.archive).unwrap().count(), 2);
}

#[test]
fn zip_errors_name_the_entry() {
    // Mark the member as compression method 93 (zstd), which this build does not read.
    let mut z = zip_bytes(&[Z::File("scripts/a.sh", 0o755, b"echo hi")]);
    let cd = z.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    z[cd + 10] = 93;
    z[cd + 11] = 0;
    let l = Layout::new();
    let b = write(&l.bundle("bundle.tar"), &z);
    let err = unpack_file(&b, BundleType::Zip, &l.archive, &opts()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("\"scripts/a.sh\"") && msg.contains("not supported"),
        "{msg}"
    );
}

#[test]
fn directory_bundle_of_many_directories_is_copied_whole() {
    // Enough directories for every copying thread to get some; directory times are set
    // after all of them finished, so writing children cannot disturb them.
    let l = Layout::new();
    let src = l.tmp.path().join("src");
    let t = nix::sys::time::TimeSpec::new(1_500_000_000, 0);
    let mut want_files = 0;
    for d in 0..40 {
        let dir = src.join(format!("d{d:02}")).join("inner");
        fs::create_dir_all(&dir).unwrap();
        for f in 0..(d % 7 + 1) {
            let body = format!("{d}/{f}").repeat(d * 50 + 1);
            fs::write(dir.join(format!("f{f}")), body).unwrap();
            want_files += 1;
        }
        fs::set_permissions(dir.join("f0"), fs::Permissions::from_mode(0o700)).unwrap();
        for p in [dir.clone(), dir.parent().unwrap().to_path_buf()] {
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &p,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
    }
    let r = copy_directory_bundle(&src, &l.archive, &opts()).unwrap();
    assert_eq!((r.files, r.dirs), (want_files, 80));
    for d in 0..40 {
        let dir = l.archive.join(format!("d{d:02}")).join("inner");
        for f in 0..(d % 7 + 1) {
            let body = format!("{d}/{f}").repeat(d * 50 + 1);
            assert_eq!(fs::read_to_string(dir.join(format!("f{f}"))).unwrap(), body);
        }
        assert_eq!(mode(&dir.join("f0")), 0o700);
        assert_eq!(mtime(&dir), 1_500_000_000, "{}", dir.display());
        assert_eq!(mtime(dir.parent().unwrap()), 1_500_000_000);
    }
    l.assert_sentinel_untouched();
}
