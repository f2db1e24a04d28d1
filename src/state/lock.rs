//! The deployment-group lock: one deployment per group at a time, across processes. The
//! daemon's group worker (for each command) and `deploy-local` (for its whole run, rollback
//! included) take an exclusive `flock` on `<root>/deployment-instructions/<group>.lock`.
//!
//! Invariants:
//! * the kernel's lock is the only truth about who holds a group: `flock` goes away with the
//!   last descriptor of its holder, also when the holder is SIGKILLed, so a dead holder's
//!   lock is free at once and is simply taken;
//! * the file's text (pid, deployment, what, since) is written by each holder right after it
//!   got the lock and is only ever *shown*, never used to decide: a busy lock is described by
//!   the pid the kernel names in `/proc/locks`, and the text only when its pid is that pid
//!   (otherwise it is a dead holder's, or the new holder has not written its own yet);
//! * the descriptor is close-on-exec, so hook processes (and the daemons they leave) never
//!   inherit, and never keep, a group's lock.

use super::StateError;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often a waiting taker tries again.
const RETRY: Duration = Duration::from_millis(100);

/// Who holds (or wants) a group: written into the lock file once the lock is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub deployment_id: String,
    /// What the holder is doing: `deploy-local` or `agent: <command>`.
    pub what: String,
    /// Seconds since the epoch when the lock was taken.
    pub since: u64,
}

impl Holder {
    /// This process, for `deployment_id`, from now.
    pub fn me(deployment_id: &str, what: &str) -> Self {
        Self {
            pid: std::process::id(),
            deployment_id: deployment_id.to_string(),
            what: what.to_string(),
            since: unix_now(),
        }
    }

    /// The lock file's text: `key=value` lines. Values are single-line by construction.
    pub fn render(&self) -> String {
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        format!(
            "pid={}\ndeployment={}\nwhat={}\nsince={}\n",
            self.pid,
            one_line(&self.deployment_id),
            one_line(&self.what),
            self.since
        )
    }

    /// Reads a lock file's text; `None` when it is empty, torn or not ours.
    pub fn parse(text: &str) -> Option<Self> {
        let (mut pid, mut dep, mut what, mut since) = (None, None, None, None);
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "pid" => pid = v.trim().parse().ok(),
                "deployment" => dep = Some(v.to_string()),
                "what" => what = Some(v.to_string()),
                "since" => since = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Self {
            pid: pid?,
            deployment_id: dep?,
            what: what?,
            since: since?,
        })
    }
}

/// PURE: what to say about the holder of a busy lock. `kernel_pid` is the pid `/proc/locks`
/// names for the lock (None when it cannot be read); `recorded` is the file's text.
pub fn describe_holder(
    kernel_pid: Option<u32>,
    recorded: Option<&Holder>,
    now: u64,
    render_time: impl Fn(u64) -> String,
) -> String {
    let full = |h: &Holder| {
        format!(
            "pid {} ({}) for deployment {} since {} ({} s ago)",
            h.pid,
            h.what,
            h.deployment_id,
            render_time(h.since),
            now.saturating_sub(h.since)
        )
    };
    match (kernel_pid, recorded) {
        (Some(k), Some(h)) if h.pid == k => full(h),
        (Some(k), _) => format!("pid {k} (it has not recorded its deployment yet)"),
        // Without /proc/locks the text is all there is; say that it is unconfirmed.
        (None, Some(h)) => format!("{} (as recorded; not confirmed by the kernel)", full(h)),
        (None, None) => "another process (no holder recorded)".to_string(),
    }
}

/// PURE: the pid holding an exclusive flock on the file `(major, minor, inode)`, from the
/// text of `/proc/locks`. Waiters (`->` lines) are not holders.
pub fn flock_holder(proc_locks: &str, dev: (u64, u64), inode: u64) -> Option<u32> {
    proc_locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"->") || fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        // "<n>: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> <start> <end>"
        let pid: u32 = fields.get(4)?.parse().ok()?;
        let mut id = fields.get(5)?.split(':');
        let major = u64::from_str_radix(id.next()?, 16).ok()?;
        let minor = u64::from_str_radix(id.next()?, 16).ok()?;
        let ino: u64 = id.next()?.parse().ok()?;
        (major == dev.0 && minor == dev.1 && ino == inode).then_some(pid)
    })
}

/// Why a group could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("deployment group {group} is busy: it is held by {holder}{}", waited_text(*.waited))]
    Busy {
        group: String,
        holder: String,
        waited: Duration,
    },
    #[error("gave up waiting for deployment group {group}: the agent is stopping")]
    Cancelled { group: String },
    #[error(transparent)]
    Io(#[from] StateError),
}

fn waited_text(waited: Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        format!("; gave up after waiting {} s", waited.as_secs())
    }
}

/// A held group lock. Dropping it closes the descriptor, which releases the group; the
/// holder text stays behind (it is shown only while the kernel confirms its pid).
#[derive(Debug)]
pub struct GroupLock {
    #[allow(dead_code)] // held for its lock
    file: File,
    path: PathBuf,
}

impl GroupLock {
    /// Takes the lock at `path` for `holder`, waiting up to `wait` while another process
    /// holds it. `on_busy` hears once, at the first refusal, who the holder is (to print or
    /// log that this taker waits); `cancelled` is polled while waiting.
    pub fn acquire(
        path: &Path,
        group: &str,
        holder: &Holder,
        wait: Duration,
        on_busy: &mut dyn FnMut(&str),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Self, LockError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError::new("create directory", dir, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| StateError::new("open lock file", path, e))?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match try_flock(&file) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(StateError::new("lock", path, e).into()),
            }
            // Described when first refused and when giving up, not at every retry.
            if !told {
                on_busy(&describe_busy(&file));
                told = true;
            }
            if started.elapsed() >= wait {
                return Err(LockError::Busy {
                    group: group.to_string(),
                    holder: describe_busy(&file),
                    waited: wait,
                });
            }
            if cancelled() {
                return Err(LockError::Cancelled {
                    group: group.to_string(),
                });
            }
            std::thread::sleep(RETRY.min(wait.saturating_sub(started.elapsed())));
        }
        // Ours now: whatever the file says is a former holder's, replaced here.
        let text = holder.render();
        let written = file
            .set_len(0)
            .and_then(|()| file.write_all_at(text.as_bytes(), 0));
        if let Err(e) = written {
            // The lock holds without its text; a waiter then names the pid only.
            tracing::warn!(path = %path.display(), error = %e, "cannot record the lock's holder");
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock only if it is free right now; `Ok(None)` when someone holds it.
    pub fn try_acquire(path: &Path, holder: &Holder) -> Result<Option<Self>, LockError> {
        match Self::acquire(path, "", holder, Duration::ZERO, &mut |_| {}, &|| false) {
            Ok(l) => Ok(Some(l)),
            Err(LockError::Busy { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `Ok(true)` when the exclusive lock was taken, `Ok(false)` when someone else holds it.
fn try_flock(file: &File) -> io::Result<bool> {
    // std's try_lock is flock(LOCK_EX | LOCK_NB) on Linux, the lock other holders check.
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Who holds the lock on `file`, checked against the kernel.
fn describe_busy(file: &File) -> String {
    let mut buf = vec![0u8; 4096];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let recorded = Holder::parse(&text);
    let kernel = file.metadata().ok().and_then(|m| {
        let dev = m.dev();
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        flock_holder(
            &locks,
            (u64::from(libc::major(dev)), u64::from(libc::minor(dev))),
            m.ino(),
        )
    });
    describe_holder(kernel, recorded.as_ref(), unix_now(), render_local)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn render_local(secs: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    crate::hooks::LocalTime::at(t).seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pid: u32) -> Holder {
        Holder {
            pid,
            deployment_id: "d-ABC-local".into(),
            what: "deploy-local".into(),
            since: 1000,
        }
    }

    #[test]
    fn holder_text_round_trips_and_rejects_torn_text() {
        let x = h(42);
        assert_eq!(Holder::parse(&x.render()), Some(x.clone()));
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("pid=42\ndeployment=d\n"), None);
        let odd = Holder {
            deployment_id: "a\nb".into(),
            ..x
        };
        assert_eq!(Holder::parse(&odd.render()).unwrap().deployment_id, "a b");
    }

    #[test]
    fn the_kernel_decides_whose_text_is_shown() {
        let t = |s: u64| format!("T{s}");
        let rec = h(42);
        assert_eq!(
            describe_holder(Some(42), Some(&rec), 1030, t),
            "pid 42 (deploy-local) for deployment d-ABC-local since T1000 (30 s ago)"
        );
        // A dead holder's text, while pid 77 holds the lock and has not written its own.
        assert_eq!(
            describe_holder(Some(77), Some(&rec), 1030, t),
            "pid 77 (it has not recorded its deployment yet)"
        );
        assert!(describe_holder(None, Some(&rec), 1030, t).contains("not confirmed"));
        assert_eq!(
            describe_holder(None, None, 0, t),
            "another process (no holder recorded)"
        );
    }

    #[test]
    fn proc_locks_lines() {
        let text = "1: POSIX  ADVISORY  WRITE 10 08:01:555 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 4321 00:2f:777 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 99 00:2f:777 0 EOF\n\
                    3: FLOCK  ADVISORY  WRITE 11 fd:01:777 0 EOF\n";
        assert_eq!(flock_holder(text, (0, 0x2f), 777), Some(4321));
        assert_eq!(flock_holder(text, (0xfd, 1), 777), Some(11));
        assert_eq!(
            flock_holder(text, (8, 1), 555),
            None,
            "POSIX locks are not ours"
        );
        assert_eq!(flock_holder(text, (0, 0x2f), 778), None);
    }

    #[test]
    fn a_second_taker_is_refused_with_the_holder_and_gets_it_once_released() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("deployment-instructions/g.lock");
        let me = Holder::me("d-1", "deploy-local");
        let first =
            GroupLock::acquire(&p, "g", &me, Duration::ZERO, &mut |_| {}, &|| false).unwrap();
        // Another open file description of the same file conflicts, as another process would.
        let mut heard = String::new();
        let e = GroupLock::acquire(
            &p,
            "g",
            &Holder::me("d-2", "deploy-local"),
            Duration::from_millis(250),
            &mut |s| heard = s.to_string(),
            &|| false,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("deployment group g is busy"), "{msg}");
        assert!(
            msg.contains(&format!("pid {} (deploy-local) for deployment d-1", me.pid)),
            "{msg}"
        );
        assert!(msg.contains("gave up after waiting 0 s"), "{msg}");
        // Heard at the first refusal: the same holder (its age may have grown since).
        let whom = |s: &str| s.split(" since ").next().unwrap().to_string();
        assert_eq!(whom(&heard), whom(msg.split("held by ").nth(1).unwrap()));
        assert!(GroupLock::try_acquire(&p, &me).unwrap().is_none());
        drop(first);
        let second = GroupLock::try_acquire(&p, &Holder::me("d-3", "agent: Install"))
            .unwrap()
            .expect("free after release");
        let text = std::fs::read_to_string(second.path()).unwrap();
        assert_eq!(Holder::parse(&text).unwrap().deployment_id, "d-3");
    }

    #[test]
    fn waiting_stops_when_cancelled() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("g.lock");
        let _held = GroupLock::try_acquire(&p, &Holder::me("d-1", "x"))
            .unwrap()
            .unwrap();
        let started = Instant::now();
        let e = GroupLock::acquire(
            &p,
            "g",
            &Holder::me("d-2", "x"),
            Duration::from_secs(60),
            &mut |_| {},
            &|| true,
        )
        .unwrap_err();
        assert!(matches!(e, LockError::Cancelled { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
