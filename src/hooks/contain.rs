//! Keeping track of every process one hook starts, so that a hook that times out (or leaves
//! its outputs open past its deadline) can be ended completely: SIGTERM to all, a grace
//! period, then SIGKILL to all. See docs/adr/0004-hook-containment.md.
//!
//! Two ways, chosen per hook:
//! * cgroup v2: one cgroup per hook, the child joins it before it execs, so nothing it
//!   starts (setsid and double forks included) can leave; killing is `cgroup.kill`.
//! * fallback (no writable cgroup v2): the hook's process group plus every process whose
//!   environment carries the hook's token ([`super::env::HOOK_TOKEN_VAR`]). A process that
//!   execs with a cleaned environment *and* leaves the process group escapes this.
//!
//! Invariants: a hook cgroup is created and joined under one process-wide lock together
//! with the sweep of empty old ones, and the sweep skips every cgroup a live `Pen` of this
//! process owns, so a cgroup is never removed (and its name reused) under a running hook;
//! killing never targets a process group id after the hook's leader was reaped (the runner
//! reaps only after containment is done, so the id cannot belong to someone else).

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Where hook cgroups go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Containment {
    /// `<cgroup2 mount>/<the agent's own cgroup>/codedeploy-hooks`, or the fallback when
    /// that cannot be created.
    #[default]
    Auto,
    /// Hook cgroups are created directly in this cgroup v2 directory.
    CgroupUnder(PathBuf),
    /// Never use cgroups.
    ProcessGroup,
}

/// The directory holding all hook cgroups under the agent's own cgroup.
pub const HOOKS_CGROUP_DIR: &str = "codedeploy-hooks";

/// How long to wait for the processes of a hook to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// How long a cgroup with no listed member may stay populated by exiting processes.
const EXITING_WAIT: Duration = Duration::from_secs(1);

/// The hook cgroups this process still owns (a `Pen` is alive for them). The sweep skips
/// them: one that is momentarily empty (its script done, the pen not yet finished) must not
/// be removed and re-created for another hook under the same name, or the first pen would
/// later remove or kill the second hook's cgroup.
static OWNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn owned() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    OWNED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Finds the agent's cgroup v2 directory from mountinfo and /proc/self/cgroup text.
pub fn own_cgroup_dir(mountinfo: &str, self_cgroup: &str) -> Option<PathBuf> {
    let own = self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_end();
    let (root, mount) = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = pre.split_whitespace().collect();
        Some((*f.get(3)?, *f.get(4)?))
    })?;
    // A cgroup namespace or bind mount may show only part of the tree.
    let rel = own
        .strip_prefix(root)
        .unwrap_or(own)
        .trim_start_matches('/');
    let rel = rel.replace("\\040", " ");
    let mut dir = PathBuf::from(mount.replace("\\040", " "));
    if !rel.is_empty() {
        dir.push(rel);
    }
    Some(dir)
}

/// `CODEDEPLOY_HOOK_CONTAINMENT=process-group` makes `Auto` use the fallback on a host
/// that has cgroup v2: a knob for testing the fallback end to end (and for an operator
/// whose cgroup set-up misbehaves). Any other value, or none, changes nothing.
pub const CONTAINMENT_ENV: &str = "CODEDEPLOY_HOOK_CONTAINMENT";

fn fallback_forced() -> bool {
    std::env::var_os(CONTAINMENT_ENV).is_some_and(|v| v == "process-group")
}

fn auto_parent() -> Option<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cg = fs::read_to_string("/proc/self/cgroup").ok()?;
    Some(own_cgroup_dir(&mi, &cg)?.join(HOOKS_CGROUP_DIR))
}

/// Makes `name` safe as one cgroup directory name.
pub(super) fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with("cgroup.") || s.is_empty() || s.starts_with('.') {
        format!("hook-{s}")
    } else {
        s
    }
}

/// Cgroups younger than this are left alone by [`sweep`]: another agent process (a
/// deploy-local beside the daemon) may have just created one and not yet moved its hook into it.
const SWEEP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// Removes empty hook cgroups left by earlier hooks whose survivors have since ended.
fn sweep(parent: &Path, owned: &[PathBuf]) {
    let Ok(rd) = fs::read_dir(parent) else { return };
    let now = std::time::SystemTime::now();
    for e in rd.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        let old_enough = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= SWEEP_MIN_AGE);
        if meta.is_dir() && old_enough && !owned.contains(&e.path()) {
            let _ = fs::remove_dir(e.path()); // EBUSY while populated: kept.
        }
    }
}

/// A hook's containment, set up before the spawn.
pub struct Pen {
    cgroup: Option<PathBuf>,
    procs: Option<File>,
    token: String,
    pgid: Option<i32>,
}

/// Held while the hook child is spawned: the sweep must not run in between.
pub struct SpawnGuard(#[allow(dead_code)] Option<std::sync::MutexGuard<'static, Vec<PathBuf>>>);

impl Pen {
    /// Prepares containment for one hook named `name` (deployment, event, index).
    pub fn prepare(mode: &Containment, name: &str, token: &str) -> (Self, SpawnGuard) {
        let parent = match mode {
            Containment::Auto if fallback_forced() => None,
            Containment::Auto => auto_parent(),
            Containment::CgroupUnder(p) => Some(p.clone()),
            Containment::ProcessGroup => None,
        };
        let mut guard = owned();
        let mut pen = Self {
            cgroup: None,
            procs: None,
            token: token.to_string(),
            pgid: None,
        };
        if let Some(parent) = parent {
            match create_cgroup(&parent, &sanitize(name), &guard) {
                Ok((dir, procs)) => {
                    guard.push(dir.clone());
                    pen.cgroup = Some(dir);
                    pen.procs = Some(procs);
                    return (pen, SpawnGuard(Some(guard)));
                }
                Err(e) => tracing::warn!(
                    parent = %parent.display(), error = %e,
                    "no cgroup for the hook; containing it by process group and environment token"
                ),
            }
        }
        (pen, SpawnGuard(None))
    }

    /// Takes over an existing hook cgroup whose hook outlived its agent (crash recovery):
    /// it is ended through the cgroup only, as its process group id is not known to be ours.
    pub(super) fn adopt(cgroup: PathBuf, token: &str) -> Self {
        Self {
            cgroup: Some(cgroup),
            procs: None,
            token: token.to_string(),
            pgid: None,
        }
    }

    /// The descriptor the child writes `0` to, joining the cgroup before it execs.
    pub fn procs_fd(&self) -> Option<i32> {
        use std::os::fd::AsRawFd;
        self.procs.as_ref().map(|f| f.as_raw_fd())
    }

    pub fn cgroup(&self) -> Option<&Path> {
        self.cgroup.as_deref()
    }

    /// Called once the child exists (its pid is its process group id). The caller keeps the
    /// leader unreaped while this pen may signal, so the group id stays ours.
    pub fn started(&mut self, pid: i32) {
        self.procs = None;
        self.pgid = Some(pid);
    }

    /// Processes of the hook still alive.
    pub fn members(&self) -> Vec<i32> {
        match &self.cgroup {
            Some(dir) => read_pids(&dir.join("cgroup.procs")),
            None => token_holders(&self.token),
        }
    }

    fn signal_all(&self, sig: Signal) {
        // Delivery failures (ESRCH: already gone) need no handling: what is left is checked
        // by the callers' emptiness waits.
        if let Some(pgid) = self.pgid {
            // The group id is ours: the leader is not reaped before the pen is done.
            let _ = killpg(Pid::from_raw(pgid), sig);
        }
        for pid in self.members() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// No live process left. A cgroup counts exited-but-unreaped processes (whose parent
    /// is gone to a non-reaping init) as absent, which `cgroup.events` reflects.
    fn is_empty(&self) -> bool {
        match &self.cgroup {
            Some(dir) => match fs::read_to_string(dir.join("cgroup.events")) {
                Ok(ev) => ev.lines().any(|l| l.trim() == "populated 0"),
                Err(_) => read_pids(&dir.join("cgroup.procs")).is_empty(),
            },
            None => token_holders(&self.token).is_empty(),
        }
    }

    fn wait_empty(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.is_empty() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            sleep(POLL);
        }
    }

    /// SIGTERM to every process, `grace` to exit, then SIGKILL to every one left.
    /// Returns the number of processes still alive afterwards (0 unless something is stuck
    /// in the kernel or escaped the fallback's tracking).
    pub fn terminate(&mut self, grace: Duration) -> usize {
        self.signal_all(Signal::SIGTERM);
        if self.wait_empty(grace) {
            self.remove_if_empty();
            return 0;
        }
        let killed_by_cgroup = self
            .cgroup
            .as_ref()
            .map(|d| fs::write(d.join("cgroup.kill"), "1").is_ok())
            .unwrap_or(false);
        if !killed_by_cgroup {
            // Kernels before 5.14 have no cgroup.kill: repeat until no one is left forking.
            let end = Instant::now() + KILL_WAIT;
            while !self.is_empty() && Instant::now() < end {
                self.signal_all(Signal::SIGKILL);
                sleep(POLL);
            }
        }
        let left = if self.wait_empty(KILL_WAIT) {
            0
        } else {
            self.members().len().max(1)
        };
        self.remove_if_empty();
        left
    }

    /// After a hook ended on its own: an empty cgroup goes, one with survivors (daemons the
    /// hook started) stays so they remain identifiable; a later sweep removes it.
    pub fn finish(&mut self) -> usize {
        let left = self.members().len();
        if left == 0 {
            // A process in the middle of exiting is no longer listed in cgroup.procs but
            // still keeps the cgroup populated (rmdir: EBUSY) for a moment.
            self.wait_empty(EXITING_WAIT);
        }
        self.remove_if_empty();
        left
    }

    fn remove_if_empty(&mut self) {
        if let Some(dir) = &self.cgroup {
            if fs::remove_dir(dir).is_ok() {
                owned().retain(|d| d != dir);
                self.cgroup = None;
            }
        }
    }
}

impl Drop for Pen {
    fn drop(&mut self) {
        if let Some(dir) = self.cgroup.take() {
            owned().retain(|d| d != &dir);
        }
    }
}

fn create_cgroup(parent: &Path, name: &str, owned: &[PathBuf]) -> io::Result<(PathBuf, File)> {
    fs::create_dir_all(parent)?;
    sweep(parent, owned);
    let mut n = 0u32;
    let dir = loop {
        let candidate = if n == 0 {
            parent.join(name)
        } else {
            parent.join(format!("{name}.{n}"))
        };
        match fs::create_dir(&candidate) {
            Ok(()) => break candidate,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(e),
        }
    };
    match OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
    {
        Ok(f) => Ok((dir, f)),
        Err(e) => {
            let _ = fs::remove_dir(&dir);
            Err(e)
        }
    }
}

fn read_pids(path: &Path) -> Vec<i32> {
    fs::read_to_string(path)
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Live processes whose initial environment holds `HOOK_TOKEN_VAR=<token>`.
fn token_holders(token: &str) -> Vec<i32> {
    super::leftover::scan(token)
        .into_iter()
        .filter(|p| p.has_token)
        .map(|p| p.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_hierarchy_in_hybrid_and_pure_layouts() {
        let hybrid = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_cgroup_dir(hybrid, "1:name=systemd:/\n0::/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure = "30 23 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            own_cgroup_dir(pure, "0::/system.slice/codedeploy-agent.service\n"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/codedeploy-agent.service"
            ))
        );
        assert_eq!(own_cgroup_dir("", "0::/\n"), None);
        assert_eq!(own_cgroup_dir(pure, "1:cpu:/\n"), None);
    }

    #[test]
    fn cgroup_names_are_single_safe_components() {
        assert_eq!(sanitize("d-1.ApplicationStart.0"), "d-1.ApplicationStart.0");
        assert_eq!(sanitize("a/b c"), "a_b_c");
        assert_eq!(sanitize("cgroup.procs"), "hook-cgroup.procs");
        assert_eq!(sanitize(".."), "hook-..");
    }
}
