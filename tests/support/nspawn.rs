//! A real systemd for tests: a Debian 12 root made once with debootstrap and cached under
//! `target/nspawn/`, booted with `systemd-nspawn -b` on a throw-away copy, entered with
//! `nsenter -t <container PID 1> -a`.
//!
//! Invariants:
//! - The cached root is keyed on everything that shapes it (suite, variant, packages, mirror,
//!   recipe version); it is built under a lock into `*.partial` and renamed only when complete,
//!   so a test killed half-way never leaves a root that looks ready. It never goes into git.
//! - A booted [`Machine`] boots a copy; the cached root itself is never booted or changed.
//! - The container shares the host's network namespace (no `--private-network`), so the agent
//!   inside reaches the emulator and moto on the host's loopback.
//! - Dropping a [`Machine`] (also while a test panics) powers it off, kills whatever is left in
//!   its PID namespace and removes its copy; a run whose test process died is cleaned up by the
//!   next one (its `owner` file names the test's pid).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const SUITE: &str = "bookworm";
pub const VARIANT: &str = "minbase";
pub const INCLUDE: &str = "systemd,systemd-sysv,dbus,ca-certificates";
/// Bump when the recipe below changes in a way the other inputs do not show.
const RECIPE: &str = "1";
/// Where the test's shared directory appears inside the container.
pub const SHARED: &str = "/srv/cd-test";
const PATH_IN: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What keeps nspawn tests from running here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is missing, e.g. "systemd-nspawn".
    pub what: String,
    /// How to get it.
    pub how: String,
    /// True when only the machine decides (root, not nested); false for a tool that
    /// scripts/test installs.
    pub machine: bool,
}

/// Why nspawn tests cannot run here; `None` when they can.
pub fn skip_reason() -> Option<Missing> {
    let missing = |what: &str, how: &str, machine: bool| {
        Some(Missing {
            what: what.into(),
            how: how.into(),
            machine,
        })
    };
    if !nix::unistd::geteuid().is_root() {
        return missing(
            "root",
            "systemd-nspawn needs root: run the tests as root or with sudo",
            true,
        );
    }
    if let Some(c) = inside_container() {
        return missing(
            "a host outside containers",
            &format!("this runs inside a container ({c}) and nested systemd-nspawn is not supported: run on the host"),
            true,
        );
    }
    for (tool, pkg) in [
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("nsenter", "util-linux"),
        ("dpkg-deb", "dpkg"),
    ] {
        if !on_path(tool) {
            return missing(
                tool,
                &format!("apt-get install -y {pkg} (scripts/test does)"),
                false,
            );
        }
    }
    None
}

/// The kind of container this process runs in, if any (systemd's own markers).
fn inside_container() -> Option<String> {
    if let Ok(c) = std::env::var("container") {
        if !c.is_empty() {
            return Some(c);
        }
    }
    if let Ok(c) = fs::read_to_string("/run/systemd/container") {
        return Some(c.trim().to_string());
    }
    let env = fs::read("/proc/1/environ").unwrap_or_default();
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"container="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file())
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The Debian mirror apt uses here (first `URIs:` of a deb822 file or first `deb` line),
/// falling back to deb.debian.org.
pub fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(d) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        if let Some(m) = mirror_in(&text) {
            return m;
        }
    }
    "http://deb.debian.org/debian".into()
}

/// The first Debian (not security) archive URI in a sources file's text.
pub fn mirror_in(text: &str) -> Option<String> {
    for line in text.lines().map(str::trim) {
        let uri = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().next()
        } else if let Some(rest) = line.strip_prefix("deb ") {
            rest.split_whitespace().find(|w| !w.starts_with('['))
        } else {
            None
        };
        if let Some(u) = uri {
            if !u.contains("security") {
                return Some(u.trim_end_matches('/').to_string());
            }
        }
    }
    None
}

/// Directory of the cached root for the current inputs.
pub fn root_cache_dir() -> PathBuf {
    use sha2::Digest;
    let inputs = format!(
        "suite={SUITE}\nvariant={VARIANT}\ninclude={INCLUDE}\nmirror={}\nrecipe={RECIPE}\n",
        debian_mirror()
    );
    let h = sha2::Sha256::digest(inputs.as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    target_dir().join("nspawn").join(format!("root-{hex}"))
}

/// The cached Debian root, made first if needed (about 2.5 minutes and 270 MB).
pub fn cached_root() -> PathBuf {
    let dir = root_cache_dir();
    let rootfs = dir.join("rootfs");
    let ready = dir.join("ready");
    fs::create_dir_all(&dir).expect("create the root cache directory");
    let lock = fs::File::create(dir.join("lock")).expect("root cache lock file");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock the root cache");
    if ready.exists() && rootfs.join("usr/lib/systemd/systemd").exists() {
        return rootfs;
    }
    let partial = dir.join("rootfs.partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).expect("remove a partial root");
    }
    let _ = fs::remove_dir_all(&rootfs);
    let mirror = debian_mirror();
    eprintln!(
        "making the Debian root {} from {mirror} (once)",
        rootfs.display()
    );
    let out = Command::new("debootstrap")
        .args([
            &format!("--variant={VARIANT}"),
            &format!("--include={INCLUDE}"),
            SUITE,
        ])
        .arg(&partial)
        .arg(&mirror)
        .output()
        .expect("run debootstrap");
    assert!(
        out.status.success(),
        "debootstrap failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    finish_root(&partial);
    fs::rename(&partial, &rootfs).expect("rename the finished root");
    fs::write(&ready, format!("mirror={mirror}\n")).expect("mark the root ready");
    rootfs
}

/// What every booted copy needs that debootstrap does not do.
fn finish_root(root: &Path) {
    // No console login prompt to wait on; the tests enter with nsenter.
    let wants = root.join("etc/systemd/system/getty.target.wants");
    let _ = fs::remove_dir_all(&wants);
    // Downloaded .debs are not needed in the cache.
    if let Ok(d) = fs::read_dir(root.join("var/cache/apt/archives")) {
        for e in d.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Runs `cmd` for at most `within`, killing it (and its process group) if it takes longer.
pub fn run_bounded(mut cmd: Command, within: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn a bounded command");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(within).is_err() {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let mut out = waiter
        .join()
        .expect("waiter thread")
        .expect("wait for a bounded command");
    if !out.status.success() && out.stderr.is_empty() && out.stdout.is_empty() {
        out.stderr = format!("(no output; killed after {within:?}?)").into_bytes();
    }
    out
}

/// A booted container.
pub struct Machine {
    pub name: String,
    nspawn: Option<Child>,
    pub pid1: i32,
    pidns: String,
    run_dir: PathBuf,
    /// Host side of [`SHARED`].
    pub shared: PathBuf,
    pub boot_log: PathBuf,
    pub unified: bool,
}

impl Machine {
    /// Boots a copy of `base` (`unified`: SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1, pure cgroup v2)
    /// and waits until its systemd reports the system running (or degraded).
    pub fn boot(base: &Path, unified: bool) -> Machine {
        let runs = target_dir().join("nspawn").join("runs");
        fs::create_dir_all(&runs).expect("runs directory");
        clean_stale_runs(&runs);
        let name = format!(
            "cdtest-{}-{}",
            std::process::id(),
            if unified { "v2" } else { "hybrid" }
        );
        let run_dir = runs.join(&name);
        let _ = fs::remove_dir_all(&run_dir);
        fs::create_dir_all(&run_dir).expect("run directory");
        fs::write(run_dir.join("owner"), std::process::id().to_string()).expect("owner file");
        let root = run_dir.join("root");
        let cp = run_bounded(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg("--reflink=auto").arg(base).arg(&root);
                c
            },
            Duration::from_secs(300),
        );
        assert!(cp.status.success(), "copy the root: {}", text(&cp));
        let shared = run_dir.join("shared");
        fs::create_dir_all(&shared).expect("shared directory");
        let boot_log = run_dir.join("boot.log");
        let log = fs::File::create(&boot_log).expect("boot log");
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args(["-b", "--keep-unit", "--register=no", "--console=read-only"])
            .arg(format!("--machine={name}"))
            .arg("-D")
            .arg(&root)
            .arg(format!("--bind={}:{SHARED}", shared.display()))
            .env_remove("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .process_group(0);
        if unified {
            cmd.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1");
        }
        let child = cmd.spawn().expect("spawn systemd-nspawn");
        fs::write(run_dir.join("nspawn.pid"), child.id().to_string()).expect("nspawn pid file");
        let mut m = Machine {
            name,
            pid1: 0,
            pidns: String::new(),
            nspawn: Some(child),
            run_dir,
            shared,
            boot_log,
            unified,
        };
        let nspawn_pid = m.nspawn.as_ref().map(|c| c.id() as i32).unwrap_or(0);
        let until = Instant::now() + Duration::from_secs(60);
        while m.pid1 == 0 {
            if let Some(p) = container_init(nspawn_pid) {
                m.pid1 = p;
                m.pidns = fs::read_link(format!("/proc/{p}/ns/pid"))
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                break;
            }
            if let Some(Ok(Some(st))) = m.nspawn.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "systemd-nspawn exited ({st}) before booting: {}",
                    m.log_tail()
                );
            }
            assert!(
                Instant::now() < until,
                "no container PID 1 within 60 s: {}",
                m.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // `--wait` returns once start-up is over; "degraded" (a unit that cannot run in a
        // container failed) is good enough for these tests.
        let mut state = String::new();
        for _ in 0..3 {
            let out = m.sh_within(
                "systemctl is-system-running --wait",
                Duration::from_secs(120),
            );
            state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        assert!(
            state == "running" || state == "degraded",
            "container did not finish booting (state {state:?}): {}",
            m.log_tail()
        );
        m
    }

    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.boot_log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn enter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid1.to_string())
            .arg("-a")
            .env_clear()
            .env("PATH", PATH_IN)
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0");
        c
    }

    /// A shell command inside, bounded in time.
    pub fn sh_within(&self, script: &str, within: Duration) -> Output {
        let mut c = self.enter();
        c.args(["/bin/sh", "-c", script]);
        run_bounded(c, within)
    }

    pub fn sh(&self, script: &str) -> Output {
        self.sh_within(script, Duration::from_secs(120))
    }

    /// Runs `script` inside and returns its standard output; panics with both outputs if it fails.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "inside {}: `{script}` failed: {}",
            self.name,
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `script` inside without waiting; stdout piped. The caller kills it.
    pub fn spawn(&self, script: &str) -> Child {
        let mut c = self.enter();
        c.args(["/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn inside the container")
    }

    /// Writes a file into the shared directory; its path inside the container.
    pub fn put(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.shared.join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).expect("shared subdirectory");
        }
        let mut f = fs::File::create(&p).expect("shared file");
        f.write_all(bytes).expect("write shared file");
        format!("{SHARED}/{name}")
    }

    /// PIDs (host view) still in the container's PID namespace.
    pub fn leftovers(&self) -> Vec<i32> {
        pids_in_ns(&self.pidns)
    }

    /// Host PIDs of the container's processes whose command line contains `marker`.
    pub fn pids_with(&self, marker: &str) -> Vec<i32> {
        self.leftovers()
            .into_iter()
            .filter(|p| {
                fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(marker))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Powers the container off; kills whatever remains. Returns the processes that were
    /// still in its namespace afterwards (should be none).
    pub fn shutdown(&mut self) -> Vec<i32> {
        let Some(mut child) = self.nspawn.take() else {
            return Vec::new();
        };
        // systemd-nspawn turns SIGTERM into an orderly poweroff of the container.
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(30);
        let mut exited = false;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !exited {
            eprintln!("{}: no poweroff within 30 s; killing it", self.name);
            if self.pid1 > 0 {
                // SIGKILL to a PID namespace's init ends every process in it.
                let _ = kill(Pid::from_raw(self.pid1), Signal::SIGKILL);
            }
            let _ = nix::sys::signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        let until = Instant::now() + Duration::from_secs(10);
        let mut left = self.leftovers();
        while !left.is_empty() && Instant::now() < until {
            for p in &left {
                let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(200));
            left = self.leftovers();
        }
        let _ = fs::remove_dir_all(&self.run_dir);
        left
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let left = self.shutdown();
        if !left.is_empty() {
            eprintln!("{}: processes left after shutdown: {left:?}", self.name);
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The container's init: a descendant of `nspawn` that is PID 1 of its own namespace.
fn container_init(nspawn: i32) -> Option<i32> {
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let is_init = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .is_some_and(|ids| ids.len() >= 2 && ids.last() == Some(&"1"));
        if is_init && descends_from(pid, nspawn) {
            return Some(pid);
        }
    }
    None
}

fn parent(pid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn descends_from(mut pid: i32, ancestor: i32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match parent(pid) {
            Some(p) if p > 0 => pid = p,
            _ => return false,
        }
    }
    false
}

/// Host PIDs of the processes in the PID namespace `ns` (as `readlink /proc/P/ns/pid` shows it).
pub fn pids_in_ns(ns: &str) -> Vec<i32> {
    if ns.is_empty() {
        return Vec::new();
    }
    crate::common::pids_where(|pid| {
        fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l.to_string_lossy() == ns)
    })
}

/// Removes the runs of test processes that no longer exist, killing their containers first.
fn clean_stale_runs(runs: &Path) {
    let Ok(d) = fs::read_dir(runs) else {
        return;
    };
    for e in d.flatten() {
        let owner = fs::read_to_string(e.path().join("owner"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        if owner.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
            continue;
        }
        if let Some(n) = fs::read_to_string(e.path().join("nspawn.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            if let Some(init) = container_init(n) {
                let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(n), Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = fs::remove_dir_all(e.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_deb822_and_one_line_forms() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian/\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let line = "# c\ndeb [arch=amd64] http://m.example/debian bookworm main\n";
        assert_eq!(mirror_in(line).as_deref(), Some("http://m.example/debian"));
        assert_eq!(mirror_in("# nothing\n"), None);
    }
}
