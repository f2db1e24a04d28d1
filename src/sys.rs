//! The one home of `unsafe` in the crate: safe wrappers over the few system calls that
//! neither `std` nor `nix` offers in the form the agent needs.
//!
//! Why unsafe is allowed here and only here: the crate denies `unsafe_code` (Cargo.toml
//! `[lints]`), so every raw call is visible in this one small file, each block carries a
//! `SAFETY:` comment (clippy `undocumented_unsafe_blocks` is denied), and the callers stay
//! safe code. Where `nix` or `std` wraps a call (kill, waitpid, raise, copy_file_range,
//! flock, getrusage) the callers use that instead of adding a wrapper here.
//!
//! Invariants: no wrapper hands out a raw pointer or keeps one past its call; every struct
//! passed to the kernel is owned by the wrapper and fully initialised before the call.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Calendar fields of a moment in the local time zone (month 1..=12, day 1..=31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalFields {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl LocalFields {
    /// 1970-01-01 00:00:00, shown when the C library cannot represent a time.
    pub const EPOCH: Self = Self {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
}

/// `secs` since the epoch in the local time zone (localtime_r); `None` when the C library
/// cannot represent it.
pub fn localtime(secs: i64) -> Option<LocalFields> {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone pointer);
    // localtime_r writes only into that struct, which we own, and reads `t`, which we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        tm
    };
    let field = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    Some(LocalFields {
        year: tm.tm_year + 1900,
        month: field(tm.tm_mon + 1),
        day: field(tm.tm_mday),
        hour: field(tm.tm_hour),
        minute: field(tm.tm_min),
        second: field(tm.tm_sec),
    })
}

/// Seconds since the epoch of a wall-clock time in the local time zone (mktime, with the
/// zone's daylight-saving rule deciding); `None` when it cannot be represented.
pub fn mktime_local(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    let int = |v: u32| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
    // SAFETY: an all-zero `tm` is a valid value; every field mktime reads is set below
    // before the call, and mktime only reads and normalises the struct we own.
    let t = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = year - 1900;
        tm.tm_mon = int(month) - 1;
        tm.tm_mday = int(day);
        tm.tm_hour = int(hour);
        tm.tm_min = int(minute);
        tm.tm_sec = int(second);
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    (t != -1).then_some(t)
}

/// How a child ended, as waitid reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal (any number, realtime signals included).
    Signal(i32),
}

/// Waits for child `pid` to exit *without reaping it* (waitid with WNOWAIT), so its pid stays
/// reserved until it is reaped. Interrupted waits are retried. `nix::sys::wait::waitid`
/// is not used because it refuses signal numbers it has no name for.
pub fn wait_exit_unreaped(pid: i32) -> io::Result<ChildExit> {
    let id = libc::id_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ECHILD))?;
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value; waitid writes only into it, and
        // si_status is read only after waitid succeeded for an exited child (WEXITED), for
        // which the kernel fills that field.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            if libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) == 0 {
                Some((info.si_code, info.si_status()))
            } else {
                None
            }
        };
        match r {
            Some((libc::CLD_EXITED, status)) => return Ok(ChildExit::Code(status)),
            Some((_, status)) => return Ok(ChildExit::Signal(status)),
            None => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
}

/// Asks the kernel to page out the clean pages of `[start, end)` of this process's address
/// space now (MADV_PAGEOUT). Failure (older kernels answer EINVAL) is ignored: the pages
/// simply stay.
///
/// The range must be a whole private, read-only, file-backed mapping of this process (from
/// /proc/self/maps); see `memory`.
pub fn page_out_mapping(start: usize, end: usize) {
    // SAFETY: MADV_PAGEOUT neither unmaps nor changes memory contents: it only drops clean
    // pages, which fault back in from their file; an address range that is not mapped makes
    // the call fail with ENOMEM and nothing else.
    unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            end.saturating_sub(start),
            libc::MADV_PAGEOUT,
        );
    }
}

/// Sets glibc malloc's trim threshold: free memory above this at the top of a heap goes
/// back to the kernel at once. Setting it also stops glibc from raising the threshold by
/// itself after large blocks are freed (its dynamic mmap threshold), which otherwise lets a
/// burst of buffers stay resident long after it ended. Not glibc: nothing to do.
pub fn set_malloc_trim_threshold(bytes: i32) {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; any value is accepted or refused
    // (returns 0), and it is called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, bytes);
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = bytes;
}

/// Identity a child takes before exec (runas).
#[derive(Debug, Clone)]
pub struct ChildIds {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// Makes `cmd`'s child, between fork and exec, first write "0" to `cgroup_procs_fd` (joining
/// that cgroup before it runs anything) and then take `ids` (supplementary groups, group,
/// user, in that order so it can still change them). Either failing fails the spawn with
/// the error.
pub fn before_exec(cmd: &mut Command, cgroup_procs_fd: Option<i32>, ids: Option<ChildIds>) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it calls write, setgroups, setgid and setuid
    // (all async-signal-safe) on data moved in before the fork, allocates nothing, and
    // takes no locks. The descriptor is kept open by the caller until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = cgroup_procs_fd {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(ids) = &ids {
                if libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) != 0
                    || libc::setgid(ids.gid) != 0
                    || libc::setuid(ids.uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_round_trips_through_mktime() {
        let now = 1_600_000_000;
        let f = localtime(now).expect("representable");
        let back = mktime_local(f.year, f.month, f.day, f.hour, f.minute, f.second);
        assert_eq!(back, Some(now));
        assert!((1..=12).contains(&f.month) && (1..=31).contains(&f.day));
    }

    #[test]
    fn an_exited_child_is_seen_but_not_reaped() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        assert_eq!(wait_exit_unreaped(pid).unwrap(), ChildExit::Code(3));
        // Still a zombie: a second look sees the same exit, then reaping succeeds.
        assert_eq!(wait_exit_unreaped(pid).unwrap(), ChildExit::Code(3));
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }

    #[test]
    fn a_killed_child_reports_its_signal() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "kill -9 $$"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        assert_eq!(
            wait_exit_unreaped(pid).unwrap(),
            ChildExit::Signal(libc::SIGKILL)
        );
        child.wait().unwrap();
    }
}
