//! Which old deployment directories of a group to prune (docs/behaviour/layout.md#retention).
//!
//! Invariants: the current, the last successful and the most recent deployment are never
//! selected; after pruning at most `max_revisions` directories remain, counting the current
//! one, unless protected ones push the count above it. `max_revisions = 0` (which the
//! official agent refuses) keeps only the protected ones.

use std::ffi::{OsStr, OsString};

/// One deployment directory of a group: its name and modification time (any monotone
/// number, e.g. nanoseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionEntry {
    pub name: OsString,
    pub mtime: i128,
}

/// Names to delete, oldest first.
pub fn select_prunable(
    entries: &[RevisionEntry],
    current: &OsStr,
    last_successful: Option<&OsStr>,
    most_recent: Option<&OsStr>,
    max_revisions: u32,
) -> Vec<OsString> {
    let others: Vec<&RevisionEntry> = entries.iter().filter(|e| e.name != current).collect();
    // The current deployment takes one of the slots.
    let keep_others = (max_revisions as usize).saturating_sub(1);
    let extra = others.len().saturating_sub(keep_others);
    if extra == 0 {
        return Vec::new();
    }
    let mut candidates: Vec<&RevisionEntry> = others
        .into_iter()
        .filter(|e| Some(e.name.as_os_str()) != last_successful)
        .filter(|e| Some(e.name.as_os_str()) != most_recent)
        .collect();
    candidates.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
    candidates
        .into_iter()
        .take(extra)
        .map(|e| e.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<RevisionEntry> {
        (0..n)
            .map(|i| RevisionEntry {
                name: format!("d-{i}").into(),
                mtime: i as i128,
            })
            .collect()
    }

    fn sel(
        e: &[RevisionEntry],
        cur: &str,
        ls: Option<&str>,
        mr: Option<&str>,
        max: u32,
    ) -> Vec<String> {
        select_prunable(
            e,
            OsStr::new(cur),
            ls.map(OsStr::new),
            mr.map(OsStr::new),
            max,
        )
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
    }

    #[test]
    fn five_keeps_four_others_plus_current() {
        let e = entries(8);
        assert_eq!(sel(&e, "d-7", None, None, 5), ["d-0", "d-1", "d-2"]);
        // The current one need not exist yet (pruning runs before it is created).
        assert_eq!(
            sel(&e, "d-new", None, None, 5),
            ["d-0", "d-1", "d-2", "d-3"]
        );
        assert!(sel(&entries(4), "d-9", None, None, 5).is_empty());
    }

    #[test]
    fn protected_are_skipped_and_next_oldest_go() {
        let e = entries(8);
        assert_eq!(
            sel(&e, "d-7", Some("d-0"), Some("d-2"), 5),
            ["d-1", "d-3", "d-4"]
        );
    }

    #[test]
    fn one_keeps_only_current_and_protected() {
        let e = entries(4);
        assert_eq!(sel(&e, "d-3", None, None, 1), ["d-0", "d-1", "d-2"]);
        assert_eq!(sel(&e, "d-3", Some("d-1"), None, 1), ["d-0", "d-2"]);
    }

    #[test]
    fn zero_keeps_only_protected() {
        let e = entries(4);
        assert_eq!(sel(&e, "d-3", None, None, 0), ["d-0", "d-1", "d-2"]);
        assert_eq!(sel(&e, "d-3", Some("d-0"), Some("d-1"), 0), ["d-2"]);
        assert!(sel(&[], "d-3", None, None, 0).is_empty());
    }

    #[test]
    fn ties_break_by_name() {
        let e = vec![
            RevisionEntry {
                name: "b".into(),
                mtime: 1,
            },
            RevisionEntry {
                name: "a".into(),
                mtime: 1,
            },
        ];
        assert_eq!(sel(&e, "c", None, None, 2), ["a"]);
    }
}
