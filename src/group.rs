//! Taking a deployment group for a deployment: its cross-process lock
//! ([`crate::state::lock`]), then ending the hook a former holder left running if it died
//! mid-hook ([`crate::hooks::end_leftover`]). `deploy-local` takes the group for its whole run
//! (rollback included), the daemon for each command it executes.
//!
//! Invariant: nothing of a group runs before its lock is held and its leftover hook, if any,
//! has been ended.

use crate::executor::Executor;
use crate::hooks;
use crate::state::lock::{GroupLock, Holder, LockError};
use crate::state::Layout;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Suffix of the running-hook records in `deployment-instructions/`.
const RECORD_SUFFIX: &str = ".running-hook";

/// Takes `group` for `holder`, waiting up to `wait` (the executor's cancel flag stops the
/// wait); `on_busy` hears who holds it when the first try fails.
pub fn take(
    executor: &Executor,
    group: &str,
    holder: &Holder,
    wait: Duration,
    on_busy: &mut dyn FnMut(&str),
) -> Result<GroupLock, LockError> {
    let cancelled = || {
        executor
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let lock = GroupLock::acquire(
        &executor.layout.group_lock_file(group),
        group,
        holder,
        wait,
        on_busy,
        &cancelled,
    )?;
    end_leftover(&executor.layout, group);
    Ok(lock)
}

/// Ends the hook a dead holder of `group` left running; the caller holds the group's lock.
fn end_leftover(layout: &Layout, group: &str) {
    let record = layout.running_hook_file(group);
    match hooks::end_leftover(&record, hooks::DEFAULT_KILL_GRACE) {
        Ok(None) => {}
        Ok(Some(l)) => tracing::warn!(
            group,
            deployment = %l.hook.deployment_id,
            event = %l.hook.event,
            script = %l.hook.script,
            former_agent_pid = l.hook.agent_pid,
            ended = l.ended,
            survivors = l.survivors,
            "ended a hook whose agent stopped while it ran"
        ),
        Err(e) => tracing::warn!(group, error = %e, "cannot read the running-hook record"),
    }
}

/// Crash recovery at the daemon's start: ends every hook recorded as running in a group
/// whose lock is free (its holder died). Groups a live process holds are left to it.
/// Returns the groups whose leftovers were looked at.
pub fn end_all_leftovers(layout: &Layout) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(layout.instructions_dir()) else {
        return Vec::new();
    };
    let mut groups: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(RECORD_SUFFIX)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
        })
        .collect();
    groups.sort();
    let me = Holder::me("", "agent: crash recovery");
    groups.retain(
        |g| match GroupLock::try_acquire(&layout.group_lock_file(g), &me) {
            Ok(Some(_lock)) => {
                end_leftover(layout, g);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(group = %g, error = %e, "cannot take the group to end its leftover hook");
                false
            }
        },
    );
    groups
}
