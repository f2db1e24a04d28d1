//! Starting a hook process: where its script is (inside the archive only), making it
//! executable as the official agent does, and the fork/exec with the child-side steps.
//!
//! Invariants: the child joins its containment and drops privileges before it execs, using
//! only async-signal-safe system calls (everything is resolved in the parent); stdin is
//! /dev/null; the child leads a new process group.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::env::RunAs;
use crate::diagnostics::ErrorCode;
use crate::links::{disk::Revision, Node, Resolved};

/// `archive/location` with `.` and `..` resolved lexically (Ruby's `File.expand_path`), for
/// the missing-script message.
fn expand(archive: &Path, location: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in archive.join(location.trim_start_matches('/')).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Finds the script of `location` and makes sure it can run. Returns the path to exec.
///
/// The script must be a regular file inside the archive. Its location is walked with
/// [`crate::links`] (lstat and readlink only): a link leading outside the archive (absolute,
/// climbing out with `..`, or a chain ending outside) or to anything but a regular file is
/// refused without being opened, run or changed; the mode is fixed through an `O_NOFOLLOW`
/// descriptor, so a chmod never lands outside.
pub fn locate(archive: &Path, location: &str) -> Result<PathBuf, (ErrorCode, String)> {
    let joined = archive.join(location.trim_start_matches('/'));
    let missing = || {
        (
            ErrorCode::ScriptMissing,
            format!(
                "Script does not exist at specified location: {}",
                crate::names::Shown(&expand(archive, location))
            ),
        )
    };
    let not_regular = |what: String| {
        (
            ErrorCode::ScriptMissing,
            format!("Script at specified location: {location} is not a regular file{what}"),
        )
    };
    let rev = Revision::new(archive);
    let real = match rev
        .resolve(location.as_bytes(), true)
        .map_err(|_| missing())?
    {
        Resolved::Inside {
            real,
            node: Node::File,
        } => real,
        Resolved::Inside {
            node: Node::Missing,
            ..
        } => return Err(missing()),
        Resolved::Inside { .. } => return Err(not_regular(String::new())),
        Resolved::Loop { link } => {
            return Err(not_regular(format!(
                ": the symbolic link {} is part of a loop",
                crate::links::show(&link)
            )))
        }
        Resolved::Outside { via } => {
            let via = via.map_or_else(|| "..".into(), |l| l.describe());
            return Err((
                ErrorCode::ScriptMissing,
                format!(
                    "Script at specified location: {location} leads outside the deployment archive {} through the symbolic link {via}; it was not run (scripts must be regular files inside the revision)",
                    crate::names::Shown(archive)
                ),
            ));
        }
    };
    let path = rev.join(&real);
    let not_executable = |e: io::Error| {
        tracing::error!(path = %crate::names::Shown(&path), error = %e, "chmod +x failed");
        (
            ErrorCode::ScriptNotExecutable,
            format!("Unable to set script at specified location: {location} as executable"),
        )
    };
    match rev.open_file(&real) {
        Ok(f) => {
            let mode = f.metadata().map_err(|_| missing())?.permissions().mode();
            if mode & 0o111 == 0 {
                warn_not_executable(location);
                f.set_permissions(fs::Permissions::from_mode(mode | 0o111))
                    .map_err(not_executable)?;
            }
        }
        // Unreadable to us (not root, mode 000): the walk saw a regular file at a path with no
        // link, so the path calls below reach that file.
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            let meta = fs::symlink_metadata(&path).map_err(|_| missing())?;
            if !meta.is_file() {
                return Err(not_regular(String::new()));
            }
            if meta.permissions().mode() & 0o111 == 0 {
                warn_not_executable(location);
                let mode = meta.permissions().mode() | 0o111;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(not_executable)?;
            }
        }
        Err(_) => return Err(not_regular(String::new())),
    }
    Ok(joined)
}

fn warn_not_executable(location: &str) {
    tracing::warn!(
        "Script at specified location: {location} is not executable.  Trying to make it executable."
    );
}

/// What to start and how.
pub struct SpawnSpec<'a> {
    pub path: &'a Path,
    pub cwd: &'a Path,
    pub env: &'a [(OsString, OsString)],
    pub runas: Option<&'a RunAs>,
    /// An open `cgroup.procs` the child writes `0` to.
    pub cgroup_procs_fd: Option<i32>,
}

fn command(spec: &SpawnSpec<'_>, via_shell: bool) -> Command {
    let mut cmd = if via_shell {
        let mut c = Command::new("/bin/sh");
        c.arg(spec.path);
        c
    } else {
        Command::new(spec.path)
    };
    cmd.env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let ids = spec.runas.map(|u| crate::sys::ChildIds {
        uid: u.uid,
        gid: u.gid,
        groups: u.groups.clone(),
    });
    crate::sys::before_exec(&mut cmd, spec.cgroup_procs_fd, ids);
    cmd
}

/// Starts the hook. A script without a `#!` line (ENOEXEC) is run by `/bin/sh`, as Ruby's
/// spawn does for the official agent.
pub fn spawn(spec: &SpawnSpec<'_>) -> io::Result<Child> {
    match command(spec, false).spawn() {
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => command(spec, true).spawn(),
        other => other,
    }
}

/// Ruby-like rendering of a spawn error for the code-4 message:
/// `Errno::EACCES with message Permission denied - <path>`.
pub fn describe_spawn_error(e: &io::Error, path: &Path) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let errno = nix::errno::Errno::from_raw(n);
            format!(
                "Errno::{errno:?} with message {} - {}",
                errno.desc(),
                path.display()
            )
        }
        None => format!("{:?} with message {e}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_is_lexical() {
        assert_eq!(
            expand(Path::new("/a/arch"), "scripts/../x.sh"),
            PathBuf::from("/a/arch/x.sh")
        );
        assert_eq!(
            expand(Path::new("/a/arch"), "/s.sh"),
            PathBuf::from("/a/arch/s.sh")
        );
        assert_eq!(
            expand(Path::new("/a/arch"), "../../../etc/x"),
            PathBuf::from("/etc/x")
        );
    }

    #[test]
    fn spawn_errors_read_like_the_official_agent() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            describe_spawn_error(&e, Path::new("/x/s.sh")),
            "Errno::EACCES with message Permission denied - /x/s.sh"
        );
    }
}
