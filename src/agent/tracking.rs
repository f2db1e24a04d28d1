//! Ongoing-command tracking files (docs/behaviour/layout.md#tracking-files):
//! `<root>/ongoing-deployment/<DeploymentId>` holds the HostCommandIdentifier of a command the
//! agent took, so that a restart can report it (docs/behaviour/protocol.md#crash-recovery). See
//! docs/crash-recovery.md.
//!
//! Beyond the official agent, a command is tracked from the moment it is polled (as
//! `pending-<hash of its id>` until its deployment id is known, then under the deployment id)
//! until the service has *accepted* its completion, and its result is added to the file
//! (second and third line: status and diagnostics payload) before it is reported. So after a
//! crash at any point, recovery reports every command once: its recorded result if it had
//! finished, code 7 otherwise. Recovery then removes every tracking file, whether or not the
//! service accepted those reports (each is retried within the completion budget first), so a
//! restart loop cannot report a command twice.
//!
//! Invariants: every write is atomic (`state::write_atomic`); a command found under two
//! names (a crash between writing the deployment's file and removing the pending one) is
//! reported once; files older than 24 h are stale and ignored.

use crate::control::CommandStatus;
use crate::diagnostics::Diagnostics;
use crate::state::{write_atomic, StateError};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
const PENDING_PREFIX: &str = "pending-";

#[derive(Debug, Clone)]
pub struct Tracker {
    dir: PathBuf,
    /// Serialises this process's writes and removals: the next command of a deployment can
    /// be polled (and recorded under the same name) while the previous one's `done` runs.
    lock: Arc<Mutex<()>>,
}

/// One tracked command: the file it is tracked in, and its identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    name: String,
    pub command_id: String,
}

/// A command found tracked at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub command_id: String,
    /// Set when the command had finished and its result was not yet accepted.
    pub result: Option<(CommandStatus, Diagnostics)>,
}

/// PURE: a file name for a command whose deployment is not known yet (its identifier may be
/// long and hold any character): FNV-1a of the identifier.
pub fn pending_name(command_id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in command_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{PENDING_PREFIX}{h:016x}")
}

/// PURE: the tracking file's text.
pub fn render(command_id: &str, result: Option<(&CommandStatus, &Diagnostics)>) -> String {
    match result {
        None => command_id.to_string(),
        Some((status, d)) => format!("{command_id}\n{}\n{}\n", status.as_str(), d.to_payload()),
    }
}

/// PURE: reads a tracking file's text (the official form is the identifier alone).
pub fn parse(text: &str) -> Option<Interrupted> {
    let mut lines = text.lines();
    let command_id = lines.next()?.trim().to_string();
    if command_id.is_empty() {
        return None;
    }
    let result = match (lines.next(), lines.next()) {
        (Some(s), Some(p)) => match CommandStatus::parse(s.trim()) {
            st @ (CommandStatus::Succeeded | CommandStatus::Failed) => {
                Diagnostics::from_payload(p).map(|d| (st, d))
            }
            _ => None,
        },
        _ => None,
    };
    Some(Interrupted { command_id, result })
}

/// PURE: one report per command, newest first; a copy with a result wins over one without.
pub fn merge(mut found: Vec<(SystemTime, Interrupted)>) -> Vec<Interrupted> {
    found.sort_by_key(|(mtime, i)| (std::cmp::Reverse(*mtime), i.result.is_none()));
    let mut out: Vec<Interrupted> = Vec::new();
    for (_, i) in found {
        match out.iter_mut().find(|o| o.command_id == i.command_id) {
            Some(o) if o.result.is_none() && i.result.is_some() => o.result = i.result,
            Some(_) => {}
            None => out.push(i),
        }
    }
    out
}

impl Tracker {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock: Arc::default(),
        }
    }
    fn guard(&self) -> MutexGuard<'_, ()> {
        // A panic while holding it left no half-done state worth refusing: files are atomic.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Records a command as soon as it is polled, before its deployment is known.
    pub fn received(&self, command_id: &str) -> Result<Entry, StateError> {
        let e = Entry {
            name: pending_name(command_id),
            command_id: command_id.to_string(),
        };
        let _g = self.guard();
        write_atomic(&self.file(&e.name), render(command_id, None).as_bytes())?;
        Ok(e)
    }

    /// Moves the record under the deployment's id, the official name.
    pub fn identify(&self, entry: &mut Entry, deployment_id: &str) -> Result<(), StateError> {
        if entry.name == deployment_id {
            return Ok(());
        }
        self.begin(deployment_id, &entry.command_id)?;
        let old = std::mem::replace(&mut entry.name, deployment_id.to_string());
        let _g = self.guard();
        self.remove(&old);
        Ok(())
    }

    /// Writes the record of `host_command_id` under `deployment_id`, the official name (the
    /// command is not executing yet: the acknowledgement comes after).
    pub fn begin(&self, deployment_id: &str, host_command_id: &str) -> Result<(), StateError> {
        let _g = self.guard();
        write_atomic(
            &self.file(deployment_id),
            render(host_command_id, None).as_bytes(),
        )
    }

    /// Tracks a command again that a reboot paused (docs/reboot.md): it is being resumed, so
    /// a crash from here on is reported as any interrupted command.
    pub fn resumed(&self, deployment_id: &str, command_id: &str) -> Result<Entry, StateError> {
        self.begin(deployment_id, command_id)?;
        Ok(Entry {
            name: deployment_id.to_string(),
            command_id: command_id.to_string(),
        })
    }

    /// Adds the command's result, before it is reported.
    pub fn finished(
        &self,
        entry: &Entry,
        status: &CommandStatus,
        diagnostics: &Diagnostics,
    ) -> Result<(), StateError> {
        let _g = self.guard();
        write_atomic(
            &self.file(&entry.name),
            render(&entry.command_id, Some((status, diagnostics))).as_bytes(),
        )
    }

    /// Removes the record once the service accepted the completion, unless the file records
    /// another command by now: the service may hand out the deployment's next command as soon
    /// as it accepts this completion, and that command is recorded under the same name.
    pub fn done(&self, entry: &Entry) {
        let _g = self.guard();
        let newer = fs::read_to_string(self.file(&entry.name))
            .ok()
            .and_then(|text| parse(&text))
            .is_some_and(|i| i.command_id != entry.command_id);
        if !newer {
            self.remove(&entry.name);
        }
    }

    /// Removes the record of `deployment_id`; a missing file is only worth a warning.
    pub fn end(&self, deployment_id: &str) {
        let _g = self.guard();
        self.remove(deployment_id)
    }

    fn remove(&self, name: &str) {
        let f = self.file(name);
        if let Err(e) = fs::remove_file(&f) {
            tracing::warn!(
                "the tracking file {} does not exist or cannot be removed: {e}",
                f.display()
            );
        }
    }

    /// The commands that were tracked when the agent last stopped, newest first, each once;
    /// stale files are skipped.
    pub fn interrupted(&self, now: SystemTime) -> Vec<Interrupted> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let found = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                let mtime = meta.modified().ok()?;
                if now.duration_since(mtime).unwrap_or_default() > STALE_AFTER {
                    return None;
                }
                let text = fs::read_to_string(e.path()).ok()?;
                Some((mtime, parse(&text)?))
            })
            .collect();
        merge(found)
    }

    /// Removes every tracking file (after they were reported).
    pub fn clear(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::new("remove", &self.dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[Interrupted]) -> Vec<&str> {
        v.iter().map(|i| i.command_id.as_str()).collect()
    }

    #[test]
    fn begin_end_and_interrupted() {
        let t = tempfile::tempdir().unwrap();
        let tr = Tracker::new(t.path().join("ongoing-deployment"));
        assert!(tr.interrupted(SystemTime::now()).is_empty());
        tr.begin("d-1", "cmd-1").unwrap();
        assert_eq!(
            fs::read_to_string(t.path().join("ongoing-deployment/d-1")).unwrap(),
            "cmd-1"
        );
        tr.begin("d-2", "cmd-2").unwrap();
        let old = SystemTime::now() - Duration::from_secs(10);
        let f = fs::File::options()
            .write(true)
            .open(t.path().join("ongoing-deployment/d-1"))
            .unwrap();
        f.set_modified(old).unwrap();
        assert_eq!(ids(&tr.interrupted(SystemTime::now())), ["cmd-2", "cmd-1"]);
        // A day later both are stale.
        assert!(tr
            .interrupted(SystemTime::now() + STALE_AFTER + Duration::from_secs(60))
            .is_empty());
        tr.end("d-2");
        assert_eq!(ids(&tr.interrupted(SystemTime::now())), ["cmd-1"]);
        tr.clear().unwrap();
        assert!(!tr.dir().exists());
        tr.end("d-404");
    }

    #[test]
    fn done_keeps_the_next_command_of_the_deployment() {
        let t = tempfile::tempdir().unwrap();
        let tr = Tracker::new(t.path().join("ongoing-deployment"));
        let mut before = tr.received("cmd-AfterInstall").unwrap();
        tr.identify(&mut before, "d-9").unwrap();
        // The service hands out the next command once it accepts the completion, and the
        // poller records it before the first command's `done` runs.
        let mut next = tr.received("cmd-ApplicationStart").unwrap();
        tr.identify(&mut next, "d-9").unwrap();
        tr.done(&before);
        assert_eq!(
            ids(&tr.interrupted(SystemTime::now())),
            ["cmd-ApplicationStart"]
        );
        tr.done(&next);
        assert!(tr.interrupted(SystemTime::now()).is_empty());
    }

    #[test]
    fn a_command_is_tracked_from_the_poll_to_the_accepted_completion() {
        let t = tempfile::tempdir().unwrap();
        let tr = Tracker::new(t.path().join("ongoing-deployment"));
        let cmd = "WyJjb20uYW1h/+=long-opaque-id";
        let mut e = tr.received(cmd).unwrap();
        let pending = tr.interrupted(SystemTime::now());
        assert_eq!(ids(&pending), [cmd]);
        assert_eq!(pending[0].result, None);
        tr.identify(&mut e, "d-7").unwrap();
        let names: Vec<_> = fs::read_dir(tr.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["d-7"], "the pending name is gone");
        let d = Diagnostics::success();
        tr.finished(&e, &CommandStatus::Succeeded, &d).unwrap();
        let found = tr.interrupted(SystemTime::now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].result, Some((CommandStatus::Succeeded, d)));
        tr.done(&e);
        assert!(tr.interrupted(SystemTime::now()).is_empty());
    }

    #[test]
    fn parse_official_and_extended_files() {
        assert_eq!(
            parse("cmd-1"),
            Some(Interrupted {
                command_id: "cmd-1".into(),
                result: None
            })
        );
        assert_eq!(parse(""), None);
        let d = Diagnostics::unknown("boom");
        let text = render("cmd-2", Some((&CommandStatus::Failed, &d)));
        assert_eq!(
            parse(&text).unwrap().result,
            Some((CommandStatus::Failed, d))
        );
        // A torn or foreign result is no result: the command is reported as interrupted.
        assert_eq!(parse("cmd-3\nSucceeded\n{\"error_co").unwrap().result, None);
        assert_eq!(parse("cmd-3\nInProgress\n{}").unwrap().result, None);
    }

    #[test]
    fn merge_reports_each_command_once_preferring_a_result() {
        let now = SystemTime::now();
        let i = |id: &str, r: bool| Interrupted {
            command_id: id.into(),
            result: r.then(|| (CommandStatus::Succeeded, Diagnostics::success())),
        };
        let merged = merge(vec![
            (now, i("a", false)),
            (now - Duration::from_secs(1), i("a", true)),
            (now - Duration::from_secs(5), i("b", false)),
        ]);
        assert_eq!(ids(&merged), ["a", "b"]);
        assert!(merged[0].result.is_some());
        assert_eq!(pending_name("x"), pending_name("x"));
        assert_ne!(pending_name("x"), pending_name("y"));
        assert!(pending_name(&"z".repeat(2000)).len() < 40);
    }
}
