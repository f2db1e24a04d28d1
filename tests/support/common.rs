//! Shared helpers of the black-box tests: temp deployment roots, bundle builders, running the
//! built binary, and finding processes by a marker so tests leave nothing behind.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_codedeploy-agent");

/// A temp directory with an agent configuration whose root and log dirs live inside it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Self { dir };
        fs::write(
            s.config(),
            format!(
                ":root_dir: '{}'\n:log_dir: '{}'\n:max_revisions: 5\n",
                s.root().display(),
                s.path().join("log").display()
            ),
        )
        .expect("write config");
        s
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn root(&self) -> PathBuf {
        self.path().join("deployment-root")
    }
    pub fn config(&self) -> PathBuf {
        self.path().join("agent.yml")
    }
    /// Runs `deploy-local` with this sandbox's config and the given extra arguments.
    pub fn deploy(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("deploy-local")
            .arg("-c")
            .arg(self.config())
            .args(args);
        cmd.output().expect("run codedeploy-agent")
    }
    pub fn group_dir(&self, group: &str) -> PathBuf {
        self.root().join(group)
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes a file, creating parents; `exec` sets mode 0755.
pub fn write(path: &Path, content: &str, exec: bool) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
    if exec {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// Copies a directory tree (files and directories only, modes kept).
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for entry in fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// Replaces text in every file of a tree.
pub fn rewrite_tree(dir: &Path, pairs: &[(&str, &str)]) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let p = entry.path();
        if entry.file_type().expect("type").is_dir() {
            rewrite_tree(&p, pairs);
            continue;
        }
        let Ok(mut s) = fs::read_to_string(&p) else {
            continue;
        };
        for (from, to) in pairs {
            s = s.replace(from, to);
        }
        let mode = fs::metadata(&p).expect("meta").permissions();
        fs::write(&p, s).expect("write");
        fs::set_permissions(&p, mode).expect("chmod");
    }
}

/// Builds a tgz of `dir`'s contents at `out`.
pub fn make_tgz(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-czf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
}

/// Builds a zip of `dir`'s contents at `out` (with Python's zipfile, keeping modes).
pub fn make_zip(dir: &Path, out: &Path) {
    let script = r#"
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for base, dirs, files in os.walk(src):
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(base, name)
            z.write(full, os.path.relpath(full, src))
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(out)
        .status()
        .expect("python3");
    assert!(status.success());
}

/// The appspec of a bundle that installs its `site/` directory into `dest`, and nothing else.
pub fn site_appspec(dest: impl AsRef<Path>) -> String {
    format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\n",
        dest.as_ref().display()
    )
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind")
}

/// PIDs of the processes in /proc for which `wanted` says yes (none if /proc is unreadable).
pub fn pids_where(wanted: impl Fn(i32) -> bool) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| wanted(*pid))
        .collect()
}

/// PIDs of processes (other than this one) whose command line contains `marker`.
pub fn pids_with_marker(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    pids_where(|pid| {
        pid != me
            && fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(marker))
    })
}

/// Kills every process carrying `marker` (test clean-up), returning how many there were.
pub fn kill_marker(marker: &str) -> usize {
    let pids = pids_with_marker(marker);
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    pids.len()
}

/// Kills the process named in a pid file, if any.
pub fn kill_pidfile(path: &Path) {
    if let Ok(s) = fs::read_to_string(path) {
        if let Ok(pid) = s.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// GET http://127.0.0.1:port/path with a bounded number of attempts; returns the status line.
pub fn http_get_status(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            return buf.lines().next().map(str::to_string);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// The seed app (tests/fixtures/seed-app, a copy of the founding document's app) copied to
/// `base/name` with its destination, pid file and port moved under `base`. Its server is
/// killed when this is dropped.
pub struct SeedApp {
    pub bundle: PathBuf,
    pub dest: PathBuf,
    pub pidfile: PathBuf,
    pub port: u16,
}

impl Drop for SeedApp {
    fn drop(&mut self) {
        kill_pidfile(&self.pidfile);
    }
}

pub fn seed_app(base: &Path, name: &str) -> SeedApp {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-app");
    let bundle = base.join(name);
    copy_tree(&src, &bundle);
    let dest = base.join("opt/myapp");
    let pidfile = base.join("run/myapp.pid");
    fs::create_dir_all(pidfile.parent().expect("parent")).expect("mkdir");
    let port = free_port();
    rewrite_tree(
        &bundle,
        &[
            ("/opt/myapp", dest.to_str().expect("utf-8 path")),
            ("/var/run/myapp.pid", pidfile.to_str().expect("utf-8 path")),
            ("8080", &port.to_string()),
        ],
    );
    SeedApp {
        bundle,
        dest,
        pidfile,
        port,
    }
}
