//! PURE: the fleet metrics as plain data, and how one finished lifecycle event changes them.
//!
//! Invariants: counters only grow; a deployment is counted in `deployments` at most once, when
//! its end on this host is known (see [`ends_deployment`]); memory is bounded by the number of
//! (application, group) pairs and event names this host has seen, never by the number of
//! deployments (only each group's current deployment is remembered).

use crate::lifecycle::DeploymentType;
use std::collections::BTreeMap;

/// Upper bounds (seconds) of the lifecycle-event duration buckets: hooks run from well under
/// a second to the one-hour script maximum.
pub const EVENT_BUCKETS: &[f64] = &[
    0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Upper bounds (seconds) of the bundle download buckets.
pub const DOWNLOAD_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0];

/// The kinds a failed poll is counted under; each is written (0 at first) so a rate works
/// from the agent's start.
pub const POLL_ERROR_KINDS: &[&str] = &[
    "throttled",
    "server",
    "client",
    "network",
    "decode",
    "credentials",
    "other",
];

/// How a lifecycle event, or a whole deployment, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    /// The `result` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

/// A deployment group as labels: group names are unique only within their application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub application: String,
    pub group: String,
}

/// A histogram with fixed bucket bounds; `counts[i]` holds the observations in bucket `i`
/// alone (not cumulative), the last entry those above every bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// The cumulative count of each bound, then of `+Inf` (the `_bucket` series).
    pub fn cumulative(&self) -> Vec<u64> {
        self.counts
            .iter()
            .scan(0u64, |acc, c| {
                *acc += c;
                Some(*acc)
            })
            .collect()
    }
}

/// The last deployment of a group that ended on this host.
#[derive(Debug, Clone, PartialEq)]
pub struct LastDeployment {
    pub deployment_id: String,
    /// Unix seconds.
    pub ended_at: f64,
    pub outcome: Outcome,
}

/// Every metric the agent writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: String,
    /// Unix seconds.
    pub start_time: f64,
    pub deployments: BTreeMap<(GroupKey, Outcome), u64>,
    pub last: BTreeMap<GroupKey, LastDeployment>,
    pub events: BTreeMap<(GroupKey, String, Outcome), u64>,
    pub event_seconds: BTreeMap<String, Histogram>,
    pub download_seconds: Histogram,
    pub bundle_bytes_total: u64,
    pub last_bundle_bytes: BTreeMap<GroupKey, u64>,
    pub poll_errors: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    pub fn new(version: &str, start_time: f64) -> Self {
        Self {
            version: version.to_string(),
            start_time,
            deployments: BTreeMap::new(),
            last: BTreeMap::new(),
            events: BTreeMap::new(),
            event_seconds: BTreeMap::new(),
            download_seconds: Histogram::new(DOWNLOAD_BUCKETS),
            bundle_bytes_total: 0,
            last_bundle_bytes: BTreeMap::new(),
            poll_errors: POLL_ERROR_KINDS.iter().map(|k| (*k, 0)).collect(),
        }
    }
}

/// PURE: whether `event` succeeding is the end of its deployment on this host. The agent never
/// hears that a deployment is over; it knows which events come last for each role (the
/// service's schedule, docs/behaviour/commands.md#lifecycle-events): AfterAllowTraffic ends
/// every schedule it is in; ValidateService ends an in-place deployment without a load
/// balancer (one behind a load balancer began with the block-traffic events and goes on to
/// the allow-traffic ones); AfterBlockTraffic ends a blue/green original's part (a blue/green
/// replacement never receives it).
pub fn ends_deployment(kind: DeploymentType, saw_block_traffic: bool, event: &str) -> bool {
    match event {
        "AfterAllowTraffic" => true,
        "ValidateService" => kind == DeploymentType::InPlace && !saw_block_traffic,
        "AfterBlockTraffic" => kind == DeploymentType::BlueGreen,
        _ => false,
    }
}

/// One finished (executed) lifecycle event, as the collector records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished<'a> {
    pub key: &'a GroupKey,
    pub deployment_id: &'a str,
    pub kind: DeploymentType,
    pub event: &'a str,
    pub outcome: Outcome,
    pub seconds: f64,
    /// Set for a DownloadBundle that succeeded: the bytes the bundle unpacked to.
    pub bundle_bytes: Option<u64>,
    /// Unix seconds.
    pub now: f64,
}

/// What the collector remembers of a group's current deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub deployment_id: String,
    pub saw_block_traffic: bool,
    /// Already counted in `deployments` (its end is known).
    pub counted: bool,
}

/// The snapshot plus each group's current deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub snapshot: Snapshot,
    pub current: BTreeMap<GroupKey, Progress>,
}

impl State {
    pub fn new(version: &str, start_time: f64) -> Self {
        Self {
            snapshot: Snapshot::new(version, start_time),
            current: BTreeMap::new(),
        }
    }

    /// Records one finished event: its counter and duration, the bundle figures of a
    /// download, and the deployment's end when this event decides it (its first failure, or
    /// the success of its last event, [`ends_deployment`]).
    pub fn record(&mut self, f: &Finished<'_>) {
        let s = &mut self.snapshot;
        *s.events
            .entry((f.key.clone(), f.event.to_string(), f.outcome))
            .or_default() += 1;
        s.event_seconds
            .entry(f.event.to_string())
            .or_insert_with(|| Histogram::new(EVENT_BUCKETS))
            .observe(f.seconds);
        if let (Some(bytes), Outcome::Succeeded) = (f.bundle_bytes, f.outcome) {
            s.download_seconds.observe(f.seconds);
            s.bundle_bytes_total = s.bundle_bytes_total.saturating_add(bytes);
            s.last_bundle_bytes.insert(f.key.clone(), bytes);
        }
        let progress = self
            .current
            .entry(f.key.clone())
            .or_insert_with(|| Progress {
                deployment_id: f.deployment_id.to_string(),
                saw_block_traffic: false,
                counted: false,
            });
        if progress.deployment_id != f.deployment_id {
            *progress = Progress {
                deployment_id: f.deployment_id.to_string(),
                saw_block_traffic: false,
                counted: false,
            };
        }
        let ended = match f.outcome {
            Outcome::Failed => true,
            Outcome::Succeeded => ends_deployment(f.kind, progress.saw_block_traffic, f.event),
        };
        if matches!(f.event, "BeforeBlockTraffic" | "AfterBlockTraffic") {
            progress.saw_block_traffic = true;
        }
        if ended && !progress.counted {
            progress.counted = true;
            *s.deployments.entry((f.key.clone(), f.outcome)).or_default() += 1;
            s.last.insert(
                f.key.clone(),
                LastDeployment {
                    deployment_id: f.deployment_id.to_string(),
                    ended_at: f.now,
                    outcome: f.outcome,
                },
            );
        }
    }

    /// Counts one failed poll under `kind` (one of [`POLL_ERROR_KINDS`]).
    pub fn poll_failed(&mut self, kind: &'static str) {
        *self.snapshot.poll_errors.entry(kind).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentType::*;

    fn key() -> GroupKey {
        GroupKey {
            application: "app".into(),
            group: "prod".into(),
        }
    }

    fn run(state: &mut State, id: &str, kind: DeploymentType, events: &[(&str, Outcome)]) {
        let k = key();
        for (i, (event, outcome)) in events.iter().enumerate() {
            state.record(&Finished {
                key: &k,
                deployment_id: id,
                kind,
                event,
                outcome: *outcome,
                seconds: 2.0,
                bundle_bytes: (*event == "DownloadBundle").then_some(1000),
                now: 100.0 + i as f64,
            });
        }
    }

    const OK: Outcome = Outcome::Succeeded;
    const BAD: Outcome = Outcome::Failed;

    fn in_place(last: Outcome) -> Vec<(&'static str, Outcome)> {
        vec![
            ("ApplicationStop", OK),
            ("DownloadBundle", OK),
            ("BeforeInstall", OK),
            ("Install", OK),
            ("AfterInstall", OK),
            ("ApplicationStart", OK),
            ("ValidateService", last),
        ]
    }

    #[test]
    fn the_end_of_each_schedule_is_known() {
        assert!(ends_deployment(InPlace, false, "ValidateService"));
        assert!(!ends_deployment(InPlace, true, "ValidateService"));
        assert!(ends_deployment(InPlace, true, "AfterAllowTraffic"));
        assert!(!ends_deployment(InPlace, true, "AfterBlockTraffic"));
        assert!(ends_deployment(BlueGreen, false, "AfterBlockTraffic"));
        assert!(!ends_deployment(BlueGreen, false, "ValidateService"));
        assert!(ends_deployment(BlueGreen, false, "AfterAllowTraffic"));
        assert!(!ends_deployment(InPlace, false, "Install"));
    }

    #[test]
    fn an_in_place_deployment_counts_once_at_its_last_event() {
        let mut s = State::new("1.0", 1.0);
        run(&mut s, "d-1", InPlace, &in_place(OK));
        let snap = &s.snapshot;
        assert_eq!(snap.deployments.get(&(key(), OK)), Some(&1));
        assert_eq!(snap.deployments.get(&(key(), BAD)), None);
        let last = &snap.last[&key()];
        assert_eq!(
            (last.deployment_id.as_str(), last.outcome, last.ended_at),
            ("d-1", OK, 106.0)
        );
        assert_eq!(snap.events.len(), 7);
        assert_eq!(snap.event_seconds["Install"].count, 1);
        assert_eq!(snap.download_seconds.count, 1);
        assert_eq!(snap.bundle_bytes_total, 1000);
        assert_eq!(snap.last_bundle_bytes[&key()], 1000);
    }

    #[test]
    fn a_load_balanced_deployment_ends_at_after_allow_traffic() {
        let mut s = State::new("1.0", 1.0);
        let mut events = vec![("BeforeBlockTraffic", OK), ("AfterBlockTraffic", OK)];
        events.extend(in_place(OK));
        run(&mut s, "d-1", InPlace, &events);
        assert!(
            s.snapshot.deployments.is_empty(),
            "not over at ValidateService"
        );
        run(
            &mut s,
            "d-1",
            InPlace,
            &[("BeforeAllowTraffic", OK), ("AfterAllowTraffic", OK)],
        );
        assert_eq!(s.snapshot.deployments.get(&(key(), OK)), Some(&1));
    }

    #[test]
    fn a_failure_ends_the_deployment_and_is_counted_once() {
        let mut s = State::new("1.0", 1.0);
        run(&mut s, "d-1", InPlace, &in_place(BAD));
        // A repeated failure report of the same deployment (a retried event) counts no more.
        run(&mut s, "d-1", InPlace, &[("ValidateService", BAD)]);
        assert_eq!(s.snapshot.deployments.get(&(key(), BAD)), Some(&1));
        assert_eq!(s.snapshot.last[&key()].outcome, BAD);
        assert_eq!(
            s.snapshot
                .events
                .get(&(key(), "ValidateService".into(), BAD)),
            Some(&2)
        );
        // The next deployment of the group is counted on its own.
        run(&mut s, "d-2", InPlace, &in_place(OK));
        assert_eq!(s.snapshot.deployments.get(&(key(), OK)), Some(&1));
        assert_eq!(s.snapshot.last[&key()].deployment_id, "d-2");
        assert_eq!(s.current.len(), 1, "one remembered deployment per group");
    }

    #[test]
    fn a_failed_download_adds_no_bundle_figures() {
        let mut s = State::new("1.0", 1.0);
        run(&mut s, "d-1", InPlace, &[("DownloadBundle", BAD)]);
        assert_eq!(s.snapshot.download_seconds.count, 0);
        assert_eq!(s.snapshot.bundle_bytes_total, 0);
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_last() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 100.0] {
            h.observe(v);
        }
        assert_eq!(h.cumulative(), vec![2, 3, 4]);
        assert_eq!(h.count, 4);
        assert_eq!(h.sum, 104.5);
    }

    #[test]
    fn poll_errors_start_at_zero_for_every_kind() {
        let mut s = State::new("1.0", 1.0);
        assert!(s.snapshot.poll_errors.values().all(|n| *n == 0));
        s.poll_failed("network");
        assert_eq!(s.snapshot.poll_errors["network"], 1);
        assert_eq!(s.snapshot.poll_errors.len(), POLL_ERROR_KINDS.len());
    }
}
