//! Shared helpers for the bundle tests: a deployment-dir layout with a sentinel directory next
//! to the archive dir, and builders for well-formed and hostile tar/tgz/zip archives.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use codedeploy_agent::bundle::UnpackOptions;
use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};
use zip::write::SimpleFileOptions;

pub struct Layout {
    pub tmp: tempfile::TempDir,
    pub deployment: PathBuf,
    pub archive: PathBuf,
    pub sentinel: PathBuf,
}

impl Layout {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let deployment = tmp.path().join("g").join("d-1");
        fs::create_dir_all(&deployment).unwrap();
        let archive = deployment.join("deployment-archive");
        let sentinel = tmp.path().join("g").join("sentinel");
        fs::create_dir_all(&sentinel).unwrap();
        fs::write(sentinel.join("file"), b"original").unwrap();
        Self {
            tmp,
            deployment,
            archive,
            sentinel,
        }
    }

    pub fn bundle(&self, name: &str) -> PathBuf {
        self.deployment.join(name)
    }

    /// The sentinel dir holds exactly its original file with its original content.
    pub fn assert_sentinel_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.sentinel)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["file"], "sentinel dir changed");
        assert_eq!(fs::read(self.sentinel.join("file")).unwrap(), b"original");
        // Nothing landed in the deployment dir or beside it either.
        let mut beside: Vec<_> = fs::read_dir(self.sentinel.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        beside.sort();
        assert_eq!(beside, ["d-1", "sentinel"]);
    }
}

pub fn opts() -> UnpackOptions {
    UnpackOptions {
        max_total_bytes: 1 << 30,
        reject_setuid: false,
        restore_ownership: false,
        reserve: None,
    }
}

/// One raw tar member; the name and link are written into the header verbatim, bypassing the
/// tar crate's own path checks (so hostile names can be built).
pub struct Raw<'a> {
    pub name: &'a [u8],
    pub kind: EntryType,
    pub link: &'a [u8],
    pub mode: u32,
    pub mtime: u64,
    pub data: &'a [u8],
}

impl<'a> Raw<'a> {
    pub fn file(name: &'a str, data: &'a [u8]) -> Self {
        Raw {
            name: name.as_bytes(),
            kind: EntryType::Regular,
            link: b"",
            mode: 0o644,
            mtime: 1_600_000_000,
            data,
        }
    }
    pub fn dir(name: &'a str) -> Self {
        Raw {
            kind: EntryType::Directory,
            mode: 0o755,
            ..Raw::file(name, b"")
        }
    }
    pub fn symlink(name: &'a str, target: &'a str) -> Self {
        Raw {
            kind: EntryType::Symlink,
            link: target.as_bytes(),
            mode: 0o777,
            ..Raw::file(name, b"")
        }
    }
    pub fn hardlink(name: &'a str, target: &'a str) -> Self {
        Raw {
            kind: EntryType::Link,
            link: target.as_bytes(),
            ..Raw::file(name, b"")
        }
    }
}

pub fn tar_bytes(members: &[Raw<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..m.name.len()].copy_from_slice(m.name);
            g.linkname[..m.link.len()].copy_from_slice(m.link);
        }
        h.set_entry_type(m.kind);
        h.set_mode(m.mode);
        h.set_mtime(m.mtime);
        h.set_size(m.data.len() as u64);
        if m.kind == EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.append(&h, m.data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// One zip member: a file, a directory, a symlink, or a raw Unix mode (type bits included).
pub enum Z<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    RawMode(&'a str, u32, &'a [u8]),
}

pub fn zip_bytes(members: &[Z<'_>]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::from_date_and_time(2020, 9, 13, 12, 26, 40).unwrap());
    for m in members {
        match m {
            Z::File(name, mode, data) => {
                w.start_file(*name, base.unix_permissions(*mode)).unwrap();
                w.write_all(data).unwrap();
            }
            Z::Dir(name) => w.add_directory(*name, base).unwrap(),
            Z::Symlink(name, target) => w.add_symlink(*name, *target, base).unwrap(),
            Z::RawMode(name, mode, data) => {
                w.start_file(*name, base.external_attributes(mode << 16))
                    .unwrap();
                w.write_all(data).unwrap();
            }
        }
    }
    w.finish().unwrap().into_inner()
}

/// `n` bytes that do not compress (xorshift64 from `seed`), so an archive is as large as its
/// content.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = (0x9e37_79b9_7f4a_7c15 ^ seed).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tar bundle `app/` with an empty appspec, `marker.txt` and `big.bin`.
pub fn app_tar(marker: &[u8], big: &[u8]) -> Vec<u8> {
    tar_bytes(&[
        Raw::dir("app/"),
        Raw::file("app/appspec.yml", b"version: 0.0\nos: linux\n"),
        Raw::file("app/marker.txt", marker),
        Raw::file("app/big.bin", big),
    ])
}
