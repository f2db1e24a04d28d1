//! The revisions a deployment root keeps: the one owner of what DownloadBundle writes into a
//! deployment directory (cleared before a download and after a failed one), retention
//! (pruning old deployment directories by the pure rule `crate::plan::select_prunable`,
//! docs/behaviour/layout.md#retention) and the disk space the kept revisions take (`status`).
//!
//! Invariants: a revision is its whole deployment directory (extracted archive, `bundle.tar`
//! when `keep_bundle_archive` keeps it, logs), so retention counts and frees whole
//! directories; the current, the last successful and the most recent deployment are never
//! removed; measuring never follows a link and counts a hard-linked inode once.

mod archive;
mod prune;
mod usage;

pub use archive::clear_download;
pub use prune::{prune_old_revisions, record_most_recent, Pruned};
pub use usage::{kept_revisions, measure, GroupUsage, RevisionUsage, Usage};
