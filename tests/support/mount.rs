//! Small file systems for the disk-full and read-only tests: a tmpfs mounted on a temp
//! directory for the test's lifetime and unmounted in Drop (also on panic). Mounting needs
//! root (CAP_SYS_ADMIN); where it is refused the tests skip with a message naming what is
//! missing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` (e.g. `size=64m`, `size=8m,nr_inodes=64`); Err names
    /// why it could not be mounted.
    pub fn mount(options: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "codedeploy-test"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount(8): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (needs root with CAP_SYS_ADMIN): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir, mounted: true })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the file system read-only.
    pub fn remount_ro(&self) -> Result<(), String> {
        let out = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .output()
            .map_err(|e| format!("cannot run mount(8): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "remount,ro failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Bytes in use, as `statvfs` tells.
    pub fn used(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(self.path()).expect("statvfs");
        (st.blocks() - st.blocks_free()) as u64 * st.fragment_size() as u64
    }

    /// Every path under the mount, relative, sorted.
    pub fn listing(&self) -> Vec<PathBuf> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).expect("under base").to_path_buf());
                if e.file_type().expect("type").is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it (a failing test's open file): detach it anyway.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
        self.mounted = false;
    }
}

/// Mounts a tmpfs or prints why the test is skipped and returns None.
pub fn tmpfs_or_skip(test: &str, options: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(options) {
        Ok(t) => Some(t),
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            None
        }
    }
}
