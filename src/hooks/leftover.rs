//! The durable record of the hook a deployment group is running, and ending a hook whose
//! agent died (SIGKILL, OOM) while it ran. See docs/crash-recovery.md.
//!
//! The record (`<root>/deployment-instructions/<group>.running-hook`) is written before the
//! hook is spawned (its cgroup and environment token), rewritten once it runs (its process
//! group), and removed as soon as the hook has ended. Only the holder of the group's lock
//! writes it, so a record found by the *next* holder of the lock was left by a holder that
//! died mid-hook: that hook is ended (SIGTERM, grace, SIGKILL) before anything else of the
//! group runs.
//!
//! Invariants: only the recorded hook is ended, never a daemon left by a hook that had
//! finished (its record was removed when it finished; its cgroup and token are other ones);
//! a recorded cgroup is used only if it is a hook cgroup (`codedeploy-hooks/<deployment>.*`);
//! a recorded process group is signalled only while a member still carries the hook's token
//! (a process group id lives as long as any member, so it cannot have been reused then).

use super::contain::{Pen, HOOKS_CGROUP_DIR};
use super::env::HOOK_TOKEN_VAR;
use crate::state::StateError;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long to keep sending SIGKILL to fallback-tracked processes that are still there.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// What is known about a running hook, durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningHook {
    pub deployment_id: String,
    pub event: String,
    pub script: String,
    /// The agent process that started it.
    pub agent_pid: u32,
    /// `CODEDEPLOY_HOOK_ID` of every process of the hook.
    pub token: String,
    pub cgroup: Option<PathBuf>,
    /// Known once the hook runs (its leader's pid).
    pub pgid: Option<i32>,
}

impl RunningHook {
    pub fn render(&self) -> String {
        let one = |s: &str| s.replace(['\n', '\r'], " ");
        let mut s = format!(
            "deployment={}\nevent={}\nscript={}\nagent_pid={}\ntoken={}\n",
            one(&self.deployment_id),
            one(&self.event),
            one(&self.script),
            self.agent_pid,
            one(&self.token)
        );
        if let Some(c) = &self.cgroup {
            s.push_str(&format!("cgroup={}\n", one(&c.to_string_lossy())));
        }
        if let Some(p) = self.pgid {
            s.push_str(&format!("pgid={p}\n"));
        }
        s
    }

    /// `None` for text that is not a whole record.
    pub fn parse(text: &str) -> Option<Self> {
        let mut r = RunningHook {
            deployment_id: String::new(),
            event: String::new(),
            script: String::new(),
            agent_pid: 0,
            token: String::new(),
            cgroup: None,
            pgid: None,
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "deployment" => r.deployment_id = v.to_string(),
                "event" => r.event = v.to_string(),
                "script" => r.script = v.to_string(),
                "agent_pid" => r.agent_pid = v.parse().ok()?,
                "token" => r.token = v.to_string(),
                "cgroup" => r.cgroup = Some(PathBuf::from(v)),
                "pgid" => r.pgid = Some(v.parse().ok().filter(|p: &i32| *p > 1)?),
                _ => {}
            }
        }
        (!r.token.is_empty() && !r.deployment_id.is_empty()).then_some(r)
    }

    /// The recorded cgroup, if it is one of this agent's hook cgroups of this deployment.
    fn hook_cgroup(&self) -> Option<&Path> {
        let dir = self.cgroup.as_deref()?;
        let parent_ok = dir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == HOOKS_CGROUP_DIR);
        let name_ok = dir.file_name().is_some_and(|n| {
            n.to_string_lossy().starts_with(&format!(
                "{}.",
                super::contain::sanitize(&self.deployment_id)
            ))
        });
        (parent_ok && name_ok && dir.join("cgroup.procs").is_file()).then_some(dir)
    }
}

/// Writes (or rewrites) the record: a temporary file renamed over it, so a reader (the next
/// holder, after this process died at any instant) sees the old or the new record whole.
/// Not fsynced, unlike the other state files: it matters only while the hook's processes
/// live, and none outlive a power cut, while the two syncs per hook would cost more than
/// the rest of a short hook's start.
pub(crate) fn record(path: &Path, hook: &RunningHook) -> Result<(), StateError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| StateError::new("create directory", dir, e))?;
    }
    let written = fs::write(&tmp, hook.render()).and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StateError::new("write", path, e)
    })
}

/// Removes the record of a hook that has ended; a failure is logged (a stale record only
/// makes the next holder look for processes that are gone).
pub(crate) fn forget(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the running-hook record");
        }
    }
}

/// What ending a leftover hook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub hook: RunningHook,
    /// Processes found and signalled.
    pub ended: usize,
    /// Processes still alive after SIGKILL (stuck in the kernel, or untraceable).
    pub survivors: usize,
}

/// Ends the hook recorded at `path`, if any, and removes the record. The caller must hold
/// the group's lock (so the record's writer is gone). `grace` is the SIGTERM-to-SIGKILL wait.
pub fn end_leftover(path: &Path, grace: Duration) -> Result<Option<Leftover>, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::new("read", path, e)),
    };
    let Some(hook) = RunningHook::parse(&text) else {
        tracing::warn!(path = %path.display(), "ignoring an unreadable running-hook record");
        forget(path);
        return Ok(None);
    };
    let (ended, survivors) = match hook.hook_cgroup() {
        Some(dir) => {
            let mut pen = Pen::adopt(dir.to_path_buf(), &hook.token);
            let n = pen.members().len();
            let left = pen.terminate(grace);
            (n, left)
        }
        None => end_by_token(&hook, grace),
    };
    forget(path);
    Ok(Some(Leftover {
        hook,
        ended,
        survivors,
    }))
}

/// One process as the fallback sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub pgid: i32,
    pub has_token: bool,
}

/// PURE: the processes of a leftover hook without a cgroup: every carrier of its token, and
/// the members of its recorded process group while a token carrier is among them.
pub fn fallback_targets(procs: &[Proc], pgid: Option<i32>) -> Vec<i32> {
    let group_is_ours = pgid.is_some_and(|g| procs.iter().any(|p| p.pgid == g && p.has_token));
    procs
        .iter()
        .filter(|p| p.has_token || (group_is_ours && Some(p.pgid) == pgid))
        .map(|p| p.pid)
        .collect()
}

/// Every live process but this one: its group and whether it carries `token`.
pub(super) fn scan(token: &str) -> Vec<Proc> {
    let needle = format!("{HOOK_TOKEN_VAR}={token}\0").into_bytes();
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 1..];
            let pgid = rest.split_whitespace().nth(2)?.parse().ok()?;
            let has_token = fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
                .unwrap_or(false);
            Some(Proc {
                pid,
                pgid,
                has_token,
            })
        })
        .collect()
}

fn end_by_token(hook: &RunningHook, grace: Duration) -> (usize, usize) {
    let targets = || fallback_targets(&scan(&hook.token), hook.pgid);
    let first = targets();
    if first.is_empty() {
        return (0, 0);
    }
    let signal = |pids: &[i32], sig| {
        for &pid in pids {
            // Processes just confirmed to be the hook's; one already gone (ESRCH) is fine.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    };
    signal(&first, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end && !targets().is_empty() {
        sleep(POLL);
    }
    let end = Instant::now() + KILL_WAIT;
    loop {
        let left = targets();
        if left.is_empty() || Instant::now() >= end {
            return (first.len(), left.len());
        }
        signal(&left, nix::sys::signal::Signal::SIGKILL);
        sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> RunningHook {
        RunningHook {
            deployment_id: "d-1".into(),
            event: "AfterInstall".into(),
            script: "scripts/x.sh".into(),
            agent_pid: 77,
            token: "d-1.AfterInstall.0.77.5.0".into(),
            cgroup: Some("/sys/fs/cgroup/a b/codedeploy-hooks/d-1.AfterInstall.0".into()),
            pgid: Some(4242),
        }
    }

    #[test]
    fn record_round_trip_and_partial_text() {
        let h = hook();
        assert_eq!(RunningHook::parse(&h.render()), Some(h.clone()));
        let before_spawn = RunningHook {
            pgid: None,
            cgroup: None,
            ..h
        };
        assert_eq!(
            RunningHook::parse(&before_spawn.render()),
            Some(before_spawn)
        );
        assert_eq!(RunningHook::parse(""), None);
        assert_eq!(RunningHook::parse("deployment=d-1\n"), None);
        assert_eq!(
            RunningHook::parse("deployment=d\ntoken=t\npgid=1\n"),
            None,
            "init is never a hook's group"
        );
    }

    #[test]
    fn a_record_of_a_hook_with_no_process_left_is_just_removed() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("deployment-instructions/g.running-hook");
        let mut h = hook();
        h.cgroup = None;
        h.token = format!("no-such-token-{}", std::process::id());
        record(&path, &h).unwrap();
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        let left = end_leftover(&path, Duration::from_millis(100))
            .unwrap()
            .unwrap();
        assert_eq!((left.ended, left.survivors), (0, 0));
        assert_eq!(left.hook, h);
        assert!(!path.exists());
        assert_eq!(end_leftover(&path, Duration::ZERO).unwrap(), None);
        // Unreadable text is dropped, not acted on.
        fs::write(&path, "garbage").unwrap();
        assert_eq!(end_leftover(&path, Duration::ZERO).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn only_hook_cgroups_of_the_deployment_are_used() {
        let t = tempfile::tempdir().unwrap();
        let ok = t.path().join("codedeploy-hooks/d-1.AfterInstall.0.1");
        fs::create_dir_all(&ok).unwrap();
        fs::write(ok.join("cgroup.procs"), "").unwrap();
        let mut h = hook();
        h.cgroup = Some(ok.clone());
        assert_eq!(h.hook_cgroup(), Some(ok.as_path()));
        // Not below codedeploy-hooks, another deployment's, or not a cgroup at all.
        let elsewhere = t.path().join("system.slice");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join("cgroup.procs"), "").unwrap();
        h.cgroup = Some(elsewhere);
        assert_eq!(h.hook_cgroup(), None);
        h.cgroup = Some(t.path().join("codedeploy-hooks/d-10.AfterInstall.0"));
        assert_eq!(h.hook_cgroup(), None);
        h.cgroup = Some(t.path().join("codedeploy-hooks/d-1.gone"));
        assert_eq!(h.hook_cgroup(), None);
    }

    #[test]
    fn a_process_group_counts_only_while_a_token_carrier_is_in_it() {
        let p = |pid, pgid, has_token| Proc {
            pid,
            pgid,
            has_token,
        };
        // 10 leads the hook's group; 11 cleaned its environment but stayed in the group;
        // 20 escaped the group (setsid) with the token; 30 is unrelated.
        let procs = [
            p(10, 10, true),
            p(11, 10, false),
            p(20, 20, true),
            p(30, 30, false),
        ];
        assert_eq!(fallback_targets(&procs, Some(10)), vec![10, 11, 20]);
        // The recorded group has no token carrier left: its id may be someone else's now.
        let reused = [p(11, 10, false), p(30, 30, false)];
        assert!(fallback_targets(&reused, Some(10)).is_empty());
        assert_eq!(fallback_targets(&procs, None), vec![10, 20]);
    }
}
