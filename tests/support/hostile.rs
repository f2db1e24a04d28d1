//! Helpers of the hostile-corpus tests: a canary outside the bundle, bundles of every kind
//! built from one directory tree (links and byte names kept as they are), snapshots of trees
//! that never follow a link, and a search for the canary's marker.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file and a directory outside every bundle, holding a marker no bundle contains.
pub struct Canary {
    pub marker: String,
    pub file: PathBuf,
    pub dir: PathBuf,
}

impl Canary {
    /// `base/canary.txt` (mode 0600) and `base/hostdir/` (0700, with `secret` 0600 inside).
    pub fn plant(base: &Path) -> Self {
        let marker = format!(
            "CANARY-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let file = base.join("canary.txt");
        // YAML, so an agent that parsed it as an appspec would have values to quote.
        fs::write(&file, format!("version: {marker}\nos: {marker}\n")).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let dir = base.join("hostdir");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("secret"), format!("{marker}\n")).unwrap();
        fs::set_permissions(dir.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Self { marker, file, dir }
    }

    /// An executable script outside the bundle that leaves `ran` beside it when run.
    pub fn script(&self) -> PathBuf {
        let p = self.dir.parent().unwrap().join("canary.sh");
        let ran = self.dir.parent().unwrap().join("canary-ran");
        fs::write(
            &p,
            format!("#!/bin/sh\necho {} > {}\n", self.marker, ran.display()),
        )
        .unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn script_ran(&self) -> bool {
        self.dir.parent().unwrap().join("canary-ran").exists()
    }
}

/// One entry of a tree as seen without following links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(Vec<u8>),
    Other,
}

/// Every entry below `root` (relative names as bytes), never following a link; entries whose
/// first component is in `skip` are left out.
pub fn snapshot(root: &Path, skip: &[&str]) -> BTreeMap<Vec<u8>, Seen> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), skip, &mut out);
    out
}

fn walk(root: &Path, rel: &Path, skip: &[&str], out: &mut BTreeMap<Vec<u8>, Seen>) {
    let Ok(entries) = fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        if rel.as_os_str().is_empty() && skip.iter().any(|s| OsStr::new(s) == e.file_name()) {
            continue;
        }
        let m = fs::symlink_metadata(e.path()).unwrap();
        let mode = m.mode() & 0o7777;
        let seen = if m.file_type().is_symlink() {
            Seen::Link(
                fs::read_link(e.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if m.is_dir() {
            walk(root, &r, skip, out);
            Seen::Dir(mode)
        } else if m.is_file() {
            Seen::File(mode, fs::read(e.path()).unwrap())
        } else {
            Seen::Other
        };
        out.insert(r.as_os_str().as_bytes().to_vec(), seen);
    }
}

/// Paths of regular files below `root` (links not followed) whose content holds `marker`.
pub fn files_holding(root: &Path, marker: &str) -> Vec<String> {
    snapshot(root, &[])
        .into_iter()
        .filter_map(|(name, seen)| match seen {
            Seen::File(_, bytes) if contains(&bytes, marker) => {
                Some(String::from_utf8_lossy(&name).into_owned())
            }
            _ => None,
        })
        .collect()
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The bundle kinds `deploy-local -t` takes.
pub const KINDS: [&str; 4] = ["directory", "tar", "tgz", "zip"];

/// Packs the tree at `dir` as `kind` into `out_dir`; returns the path to pass to `-l`.
/// Links stay links and names stay bytes in every kind.
pub fn pack(dir: &Path, kind: &str, out_dir: &Path) -> PathBuf {
    let out = out_dir.join(format!("bundle.{kind}"));
    let tar = |flags: &str| {
        let st = Command::new("tar")
            .arg(flags)
            .arg(&out)
            .arg("-C")
            .arg(dir)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
    };
    match kind {
        "directory" => return dir.to_path_buf(),
        "tar" => tar("-cf"),
        "tgz" => tar("-czf"),
        "zip" => fs::write(&out, zip_tree(dir)).unwrap(),
        other => panic!("unknown kind {other}"),
    }
    out
}

/// A zip of the tree, symlinks stored as symlinks, names as their bytes. The zip crate takes
/// names as `str`, so a name that is not UTF-8 is written as a same-length placeholder and
/// patched afterwards (names are not checksummed; no UTF-8 flag is set for ASCII names).
pub fn zip_tree(dir: &Path) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut patches: Vec<(String, Vec<u8>)> = Vec::new();
    let base = SimpleFileOptions::default();
    for (rel, seen) in snapshot(dir, &[]) {
        let name = match String::from_utf8(rel.clone()) {
            Ok(s) => s,
            Err(_) => {
                let ph: String = (0..rel.len())
                    .map(|i| {
                        if i == 0 {
                            'Q'
                        } else {
                            char::from(b'a' + (patches.len() as u8))
                        }
                    })
                    .collect();
                patches.push((ph.clone(), rel.clone()));
                ph
            }
        };
        match seen {
            Seen::Dir(_) => w.add_directory(name, base).unwrap(),
            Seen::File(mode, bytes) => {
                w.start_file(name, base.unix_permissions(mode)).unwrap();
                w.write_all(&bytes).unwrap();
            }
            Seen::Link(target) => w
                .add_symlink(name, String::from_utf8(target).unwrap(), base)
                .unwrap(),
            Seen::Other => {}
        }
    }
    let mut bytes = w.finish().unwrap().into_inner();
    for (ph, real) in patches {
        let ph = ph.as_bytes();
        let mut i = 0;
        let mut n = 0;
        while i + ph.len() <= bytes.len() {
            if &bytes[i..i + ph.len()] == ph {
                bytes[i..i + ph.len()].copy_from_slice(&real);
                n += 1;
            }
            i += 1;
        }
        assert_eq!(
            n, 2,
            "placeholder in the local header and the central directory"
        );
    }
    bytes
}

/// `name` under `dir`, from bytes.
pub fn byte_path(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}
