//! TEST AID: named points in the daemon where a crash test can freeze the agent, so that it
//! can be SIGKILLed at exactly that phase (see docs/crash-recovery.md for the table of phases
//! and tests/bin_daemon_phases.rs for the test that walks it).
//!
//! `CODEDEPLOY_FAILPOINT=<name>` or `<name>:<qualifier>` (for example `hook:AfterInstall`)
//! arms one point; when the agent first reaches it, it writes its pid to
//! `CODEDEPLOY_FAILPOINT_FILE` (when set) and stops itself with SIGSTOP. The test then kills
//! it, or sends SIGCONT, after which the agent carries on exactly as if nothing had happened.
//!
//! Invariants: without `CODEDEPLOY_FAILPOINT` every point is a read of a cached `None`; a
//! point never changes what the agent does, it only pauses it, and only once per process.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

pub const ENV: &str = "CODEDEPLOY_FAILPOINT";
pub const FILE_ENV: &str = "CODEDEPLOY_FAILPOINT_FILE";

struct Armed {
    point: String,
    marker: Option<PathBuf>,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
static FIRED: AtomicBool = AtomicBool::new(false);

fn armed() -> Option<&'static Armed> {
    ARMED
        .get_or_init(|| {
            let point = std::env::var(ENV).ok().filter(|p| !p.is_empty())?;
            Some(Armed {
                point,
                marker: std::env::var_os(FILE_ENV).map(PathBuf::from),
            })
        })
        .as_ref()
}

/// PURE: whether the armed text selects point `name` reached with `qualifier`.
pub fn selects(armed: &str, name: &str, qualifier: Option<&str>) -> bool {
    match armed.split_once(':') {
        None => armed == name,
        Some((n, q)) => n == name && Some(q) == qualifier,
    }
}

/// Point `name` (no qualifier).
pub fn hit(name: &str) {
    reach(name, None)
}

/// Point `name` reached for `qualifier` (an event or command name): selected by `name` and
/// by `name:qualifier`.
pub fn hit_for(name: &str, qualifier: &str) {
    reach(name, Some(qualifier))
}

fn reach(name: &str, qualifier: Option<&str>) {
    let Some(a) = armed() else { return };
    if !selects(&a.point, name, qualifier) || FIRED.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::warn!(point = %a.point, "failpoint reached: stopping (test aid)");
    if let Some(m) = &a.marker {
        let _ = std::fs::write(m, format!("{}\n", std::process::id()));
    }
    // SIGSTOP stops every thread of the process.
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        assert!(selects("download", "download", None));
        assert!(selects("hook", "hook", Some("AfterInstall")));
        assert!(selects("hook:AfterInstall", "hook", Some("AfterInstall")));
        assert!(!selects("hook:AfterInstall", "hook", Some("BeforeInstall")));
        assert!(!selects("hook:AfterInstall", "hook", None));
        assert!(!selects("download", "unpack", None));
    }
}
