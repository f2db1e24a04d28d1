//! The latest `deploy-local` results, for `status`: each finished local deployment leaves
//! `<pid_dir>/local-result-<deployment-id>.json`, and the newest [`KEEP`] are kept.
//!
//! Invariants: no locks: each run writes only its own file (atomically, after its last
//! event), and pruning removes only files older than the newest [`KEEP`], so two runs
//! pruning at once at worst both remove the same file. Like the running status file, a
//! result is written only where pid_dir exists (a developer's machine without the installed
//! agent gets no agent directories from a local run), and a failed write never fails the
//! deployment (it is logged). Readable by everyone: ids, events and messages, nothing secret.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Results kept in pid_dir.
pub const KEEP: usize = 10;
const PREFIX: &str = "local-result-";
const SUFFIX: &str = ".json";

/// How one local deployment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalResult {
    pub deployment_id: String,
    pub group_id: String,
    /// The application name, which for deploy-local defaults to the bundle's location.
    pub application: String,
    /// `Succeeded`, or `Failed in <event>: <code> <message>`.
    pub result: String,
    /// Unix seconds.
    pub started_at: u64,
    pub finished_at: u64,
    /// Unix milliseconds of the end, which orders runs that end within one second.
    #[serde(default)]
    pub finished_at_ms: u64,
    /// Process id of the run.
    pub pid: u32,
}

impl LocalResult {
    pub fn succeeded(&self) -> bool {
        self.result == "Succeeded"
    }
}

fn file_name(deployment_id: &str) -> String {
    format!("{PREFIX}{deployment_id}{SUFFIX}")
}

/// Writes `result` into `pid_dir` (when it exists) and prunes old results. The path
/// written, or `None` when there is no pid_dir or the write failed (logged).
pub fn record(pid_dir: &Path, result: &LocalResult) -> Option<PathBuf> {
    if !pid_dir.is_dir() {
        return None;
    }
    let path = pid_dir.join(file_name(&result.deployment_id));
    let written = serde_json::to_vec_pretty(result)
        .map_err(|e| e.to_string())
        .and_then(|b| crate::state::write_atomic(&path, &b).map_err(|e| e.to_string()));
    if let Err(e) = written {
        tracing::warn!("cannot record the local deployment's result: {e}");
        return None;
    }
    for old in to_prune(read_all(pid_dir), KEEP) {
        let _ = std::fs::remove_file(pid_dir.join(file_name(&old.deployment_id)));
    }
    Some(path)
}

/// The newest `n` results, newest first.
pub fn latest(pid_dir: &Path, n: usize) -> Vec<LocalResult> {
    let mut all = read_all(pid_dir);
    newest_first(&mut all);
    all.truncate(n);
    all
}

fn read_all(pid_dir: &Path) -> Vec<LocalResult> {
    let Ok(entries) = std::fs::read_dir(pid_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PREFIX) && name.ends_with(SUFFIX)
        })
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// PURE: newest first (by the second, then the millisecond, which files of older agents
/// lack); equal times by deployment id, so the order is stable.
fn newest_first(results: &mut [LocalResult]) {
    results.sort_by(|a, b| {
        (b.finished_at, b.finished_at_ms, &b.deployment_id).cmp(&(
            a.finished_at,
            a.finished_at_ms,
            &a.deployment_id,
        ))
    });
}

/// Unix milliseconds now (0 if the clock is before 1970).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// PURE: the results beyond the newest `keep`.
fn to_prune(mut results: Vec<LocalResult>, keep: usize) -> Vec<LocalResult> {
    newest_first(&mut results);
    results.split_off(keep.min(results.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, finished_at: u64, outcome: &str) -> LocalResult {
        LocalResult {
            deployment_id: id.into(),
            group_id: "g".into(),
            application: "/srv/app".into(),
            result: outcome.into(),
            started_at: finished_at.saturating_sub(5),
            finished_at,
            finished_at_ms: finished_at * 1000,
            pid: 1,
        }
    }

    #[test]
    fn prune_keeps_the_newest() {
        let all = vec![
            result("d-1", 10, "Succeeded"),
            result("d-3", 30, "Succeeded"),
            result("d-2", 20, "Failed in Install: 5 x"),
        ];
        let gone: Vec<String> = to_prune(all.clone(), 2)
            .into_iter()
            .map(|r| r.deployment_id)
            .collect();
        assert_eq!(gone, ["d-1"]);
        assert!(to_prune(all, 5).is_empty());
    }

    #[test]
    fn runs_ending_in_one_second_are_ordered_by_the_millisecond() {
        let mut first = result("d-Z", 10, "Failed in Install: 5 x");
        first.finished_at_ms = 10_100;
        let mut second = result("d-A", 10, "Succeeded");
        second.finished_at_ms = 10_900;
        let mut all = vec![first, second];
        newest_first(&mut all);
        assert_eq!(all[0].deployment_id, "d-A");
    }

    #[test]
    fn record_and_read_back_newest_first() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(
            record(&t.path().join("absent"), &result("d-x", 1, "Succeeded")),
            None
        );
        assert!(!t.path().join("absent").exists());
        for i in 0..(KEEP as u64 + 3) {
            let outcome = if i % 2 == 0 {
                "Succeeded"
            } else {
                "Failed in Install: 5 x"
            };
            assert!(record(t.path(), &result(&format!("d-{i:02}"), 100 + i, outcome)).is_some());
        }
        let kept = latest(t.path(), 100);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].deployment_id, format!("d-{:02}", KEEP + 2));
        assert!(kept[0].succeeded());
        assert!(!kept[1].succeeded());
        assert_eq!(latest(t.path(), 3).len(), 3);
        std::fs::write(t.path().join("local-result-bad.json"), "{").unwrap();
        assert_eq!(
            latest(t.path(), 100).len(),
            KEEP,
            "a torn or foreign file is skipped"
        );
    }
}
