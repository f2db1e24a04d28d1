//! Keeps systemd's STATUS= line current between the agent's own steps: while a script runs
//! (its elapsed time) and while the agent stops (what it waits for), the line is sent again
//! every [`REFRESH_EVERY`]; an idle agent's line is left as it is.
//!
//! Invariant: the refresher only reads the status file's state; what to show is decided by
//! `status::needs_refresh` and `status::status_line` (pure, tested there).

use crate::notify;
use crate::status::StatusFile;
use std::sync::Arc;
use std::time::Duration;

/// How often a running clock is re-sent: `systemctl status` then reads at most this stale.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Starts the refresher on the current runtime; abort the handle when the agent exits.
pub fn spawn(status: Arc<StatusFile>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if status.needs_refresh() {
                notify::status(&status.line());
            }
        }
    })
}
