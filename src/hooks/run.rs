//! One script from start to verdict: spawn, collect output lines in arrival order, wait for
//! the process and both outputs against one deadline, and end everything on overrun.
//!
//! Invariants: only this thread writes the logs and calls the observer (reader and waiter
//! threads send messages), so entries keep arrival order; the agent never blocks past a
//! script's deadline plus the kill grace and bounded clean-up waits, even when a process it
//! cannot kill keeps a pipe open.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::contain::Pen;
use super::env::{hook_env, resolve_runas, HookVars};
use super::leftover::{self, RunningHook};
use super::log::{strip_ansi, HookLog};
use super::spawn::{describe_spawn_error, locate, spawn, SpawnSpec};
use super::{ExitStatusDescr, HookContext, HookFailure, HookProgress, ScriptReport, Stream};
use crate::appspec::model::Script;
use crate::diagnostics::ErrorCode;

/// Output lines longer than this are split, so a script printing without newlines cannot
/// exhaust the agent's memory.
const MAX_LINE: u64 = 64 * 1024;
/// After an overrun is dealt with, how long to keep collecting the last output.
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// How often a waiting script checks for the agent's shutdown request.
const CANCEL_POLL: Duration = Duration::from_millis(200);

enum Msg {
    Line(Stream, Vec<u8>),
    Eof(Stream),
    Exited(ExitStatusDescr),
}

fn read_lines(pipe: impl Read, stream: Stream, tx: Sender<Msg>) {
    let mut r = BufReader::new(pipe);
    loop {
        let mut line = Vec::new();
        match (&mut r).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if tx.send(Msg::Line(stream, line)).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Msg::Eof(stream));
}

/// Waits for the hook's leader to exit *without reaping it*: while it is a zombie its pid,
/// and so its process-group id, cannot be reused, which keeps `kill(-pgid)` safe until
/// [`reap`].
fn wait_exit(pid: i32) -> Option<ExitStatusDescr> {
    match crate::sys::wait_exit_unreaped(pid).ok()? {
        crate::sys::ChildExit::Code(c) => Some(ExitStatusDescr::Code(c)),
        crate::sys::ChildExit::Signal(s) => Some(ExitStatusDescr::Signal(s)),
    }
}

/// Reaps the leader; if it is somehow still alive (stuck in the kernel), a detached thread
/// reaps it later rather than holding up the agent.
fn reap(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(pid);
    if let Ok(WaitStatus::StillAlive) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        thread::spawn(move || waitpid(pid, None));
    }
}

/// Collected state of a running script.
struct Watch<'a> {
    location: &'a str,
    exit: Option<ExitStatusDescr>,
    stdout_open: bool,
    stderr_open: bool,
}

impl Watch<'_> {
    fn done(&self) -> bool {
        self.exit.is_some() && !self.stdout_open && !self.stderr_open
    }

    fn handle(&mut self, msg: Msg, log: &mut HookLog, observer: &mut dyn FnMut(HookProgress)) {
        match msg {
            Msg::Line(stream, line) => {
                let tag: &[u8] = match stream {
                    Stream::Stdout => b"[stdout]",
                    Stream::Stderr => b"[stderr]",
                };
                let mut entry = tag.to_vec();
                entry.extend_from_slice(&line);
                log.entry(&entry);
                observer(HookProgress::Output {
                    location: self.location.to_string(),
                    stream,
                    line: String::from_utf8_lossy(&strip_ansi(&line)).into_owned(),
                });
            }
            Msg::Eof(Stream::Stdout) => self.stdout_open = false,
            Msg::Eof(Stream::Stderr) => self.stderr_open = false,
            Msg::Exited(status) => self.exit = Some(status),
        }
    }
}

pub fn run_script(
    ctx: &HookContext,
    script: &Script,
    index: usize,
    count: usize,
    log: &mut HookLog,
    observer: &mut dyn FnMut(HookProgress),
) -> Result<ScriptReport, HookFailure> {
    let location = script.location.as_str();
    let started = Instant::now();
    let runas_suffix = script
        .runas
        .as_deref()
        .map(|u| format!(" run as user {u}"))
        .unwrap_or_default();
    let fail = |code, message: String, log: &HookLog, exit| HookFailure {
        code,
        script_name: location.to_string(),
        message,
        log_tail: log.tail(),
        exit,
    };
    let finished = |observer: &mut dyn FnMut(HookProgress), code, exit| {
        observer(HookProgress::ScriptFinished {
            location: location.to_string(),
            duration: started.elapsed(),
            exit,
            code,
        })
    };

    let path = match locate(&ctx.archive_dir, location) {
        Ok(p) => p,
        Err((code, message)) => {
            finished(observer, code, None);
            return Err(fail(code, message, log, None));
        }
    };
    log.entry(format!("Script - {location}\n").as_bytes());
    observer(HookProgress::ScriptStarted {
        location: location.to_string(),
        index: index + 1,
        count,
        timeout_secs: script.timeout_secs,
    });

    let spawn_failed = |observer: &mut dyn FnMut(HookProgress), log: &HookLog, why: String| {
        finished(observer, ErrorCode::ScriptFailed, None);
        fail(
            ErrorCode::ScriptFailed,
            format!(
                "Script at specified location: {location}{runas_suffix} failed with error {why}"
            ),
            log,
            None,
        )
    };
    let runas = match script.runas.as_deref().map(resolve_runas).transpose() {
        Ok(r) => r,
        Err(why) => return Err(spawn_failed(observer, log, why.to_string())),
    };
    let token = format!(
        "{}.{}.{}.{}.{}.{}",
        ctx.deployment_id,
        ctx.event,
        index,
        std::process::id(),
        now_nanos(),
        TOKEN_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let reboot_request = match &ctx.reboot_requests {
        None => None,
        Some(dir) => {
            let path = super::reboot_request_path(dir, &ctx.event, index);
            if let Err(why) = prepare_reboot_request(&path, runas.as_ref()) {
                return Err(spawn_failed(observer, log, why.to_string()));
            }
            Some(path)
        }
    };
    let env = hook_env(
        std::env::vars_os(),
        &HookVars {
            event: &ctx.event,
            deployment_id: &ctx.deployment_id,
            application_name: &ctx.application_name,
            deployment_group_name: &ctx.deployment_group_name,
            deployment_group_id: &ctx.deployment_group_id,
            revision_env: &ctx.revision_env,
            token: &token,
            reboot_request: reboot_request.as_deref(),
        },
        runas.as_ref(),
    );
    let name = format!("{}.{}.{}", ctx.deployment_id, ctx.event, index);
    let (mut pen, guard) = Pen::prepare(&ctx.containment, &name, &token);
    let mut record = RunningHook {
        deployment_id: ctx.deployment_id.clone(),
        event: ctx.event.clone(),
        script: location.to_string(),
        agent_pid: std::process::id(),
        token: token.clone(),
        cgroup: pen.cgroup().map(Path::to_path_buf),
        pgid: None,
    };
    // Written before the hook exists: an agent killed from here on leaves a record that
    // names everything the hook will start.
    if let Some(rec_path) = &ctx.running_record {
        if let Err(e) = leftover::record(rec_path, &record) {
            drop(guard);
            pen.finish();
            finished(observer, ErrorCode::UnknownError, None);
            return Err(fail(
                ErrorCode::UnknownError,
                format!("cannot record the running hook: {e}"),
                log,
                None,
            ));
        }
    }
    let spawned = spawn(&SpawnSpec {
        path: &path,
        cwd: &ctx.archive_dir,
        env: &env,
        runas: runas.as_ref(),
        cgroup_procs_fd: pen.procs_fd(),
    });
    drop(guard);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            pen.finish();
            if let Some(rec_path) = &ctx.running_record {
                leftover::forget(rec_path);
            }
            return Err(spawn_failed(observer, log, describe_spawn_error(&e, &path)));
        }
    };
    pen.started(child.id() as i32);
    if let Some(rec_path) = &ctx.running_record {
        record.pgid = Some(child.id() as i32);
        // The cgroup and token already find every process; the group id only helps the
        // fallback, so a failure here is not worth stopping the hook for.
        if let Err(e) = leftover::record(rec_path, &record) {
            tracing::warn!(error = %e, "cannot add the hook's process group to its record");
        }
    }
    crate::failpoint::hit_for("hook", &ctx.event);

    let (tx, rx) = channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        thread::spawn(move || read_lines(out, Stream::Stdout, tx));
    } else {
        let _ = tx.send(Msg::Eof(Stream::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        thread::spawn(move || read_lines(err, Stream::Stderr, tx));
    } else {
        let _ = tx.send(Msg::Eof(Stream::Stderr));
    }
    let pid = child.id() as i32;
    // The pid is managed by hand from here (see wait_exit); dropping Child neither waits nor
    // kills.
    drop(child);
    thread::spawn(move || {
        // Only fails if something else reaped our child (SIGCHLD ignored by the embedding
        // process); the status is then unknowable.
        let status = wait_exit(pid).unwrap_or_else(|| {
            tracing::error!(pid, "hook process status lost: was SIGCHLD ignored?");
            ExitStatusDescr::Code(-1)
        });
        let _ = tx.send(Msg::Exited(status));
    });

    let deadline = started + Duration::from_secs(u64::from(script.timeout_secs));
    let mut w = Watch {
        location,
        exit: None,
        stdout_open: true,
        stderr_open: true,
    };
    let cancelled = || {
        ctx.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    while !w.done() && !cancelled() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = (deadline - now).min(CANCEL_POLL);
        match rx.recv_timeout(wait) {
            Ok(msg) => w.handle(msg, log, observer),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }

    let overrun = if !w.done() && cancelled() {
        tracing::warn!(
            "Script at specified location: {location} stopped: the agent is shutting down"
        );
        Some((
            ErrorCode::UnknownError,
            format!(
                "Script at specified location: {location} was stopped because the agent is shutting down"
            ),
        ))
    } else if w.exit.is_none() {
        tracing::info!("Script at specified location: {location} timed out");
        Some((
            ErrorCode::ScriptTimedOut,
            format!(
                "Script at specified location: {location} failed to complete in {} seconds",
                script.timeout_secs
            ),
        ))
    } else if w.stdout_open || w.stderr_open {
        let which = if w.stdout_open { "STDOUT" } else { "STDERR" };
        tracing::error!("Script at specified location: {location} failed to close {which}");
        Some((
            ErrorCode::OutputsLeftOpen,
            format!("Script at specified location: {location} failed to close {which}"),
        ))
    } else {
        None
    };

    if let Some((code, message)) = overrun {
        let left = pen.terminate(ctx.kill_grace);
        if left > 0 {
            tracing::error!(location, left, "processes of a hook survived SIGKILL");
        }
        if let Some(rec_path) = &ctx.running_record {
            leftover::forget(rec_path);
        }
        // Keep what the dying processes still wrote, but never wait on an escaped holder.
        let end = Instant::now() + DRAIN_WAIT;
        while !w.done() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            match rx.recv_timeout(end - now) {
                Ok(msg) => w.handle(msg, log, observer),
                Err(_) => break,
            }
        }
        let exit = if code != ErrorCode::ScriptTimedOut {
            w.exit
        } else {
            None
        };
        reap(pid);
        finished(observer, code, exit);
        return Err(fail(code, message, log, exit));
    }

    // The hook has ended: what it leaves running from here on is its daemons, which a
    // crash recovery must not touch.
    if let Some(rec_path) = &ctx.running_record {
        leftover::forget(rec_path);
    }
    let survivors = pen.finish();
    reap(pid);
    let exit = w.exit.unwrap_or(ExitStatusDescr::Code(-1));
    finished(
        observer,
        if exit.success() {
            ErrorCode::Succeeded
        } else {
            ErrorCode::ScriptFailed
        },
        Some(exit),
    );
    if !exit.success() {
        let message = match exit {
            ExitStatusDescr::Code(c) => format!(
                "Script at specified location: {location}{runas_suffix} failed with exit code {c}"
            ),
            ExitStatusDescr::Signal(_) => format!(
                "Script at specified location: {location}{runas_suffix} was killed by {exit}"
            ),
        };
        return Err(fail(ErrorCode::ScriptFailed, message, log, Some(exit)));
    }
    if survivors > 0 {
        tracing::info!(location, survivors, "hook left processes running");
    }
    // Any kind of file counts (a hook may `touch`, `mkdir` or link it).
    let reboot_requested = reboot_request
        .as_deref()
        .is_some_and(|p| std::fs::symlink_metadata(p).is_ok());
    if reboot_requested {
        tracing::info!(location, "the hook asked for a reboot");
    }
    Ok(ScriptReport {
        location: location.to_string(),
        duration: started.elapsed(),
        exit,
        survivors,
        cgroup: pen.cgroup().map(|p| p.to_path_buf()),
        reboot_requested,
    })
}

/// Makes `path`'s directory (owned by the `runas` user, so that user can create the file)
/// and removes whatever is at `path`: a request left from an earlier run of this script
/// (before a crash, or a deployment id used again) must never cause a second reboot.
fn prepare_reboot_request(
    path: &Path,
    runas: Option<&super::RunAs>,
) -> Result<(), RebootRequestError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|source| RebootRequestError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    if let Some(u) = runas {
        nix::unistd::chown(
            dir,
            Some(nix::unistd::Uid::from_raw(u.uid)),
            Some(nix::unistd::Gid::from_raw(u.gid)),
        )
        .map_err(|source| RebootRequestError::Chown {
            dir: dir.to_path_buf(),
            user: u.name.clone(),
            source,
        })?;
    }
    let gone = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    gone.map_err(|source| RebootRequestError::RemoveOld {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a script's reboot-request file could not be made ready.
#[derive(Debug, thiserror::Error)]
enum RebootRequestError {
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot give {} to user {user}: {source}", .dir.display())]
    Chown {
        dir: std::path::PathBuf,
        user: String,
        source: nix::errno::Errno,
    },
    #[error("cannot remove the old reboot request {}: {source}", .path.display())]
    RemoveOld {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

static TOKEN_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}
