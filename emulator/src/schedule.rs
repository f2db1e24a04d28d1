//! PURE scheduling rules of the service: which lifecycle events a host receives, how many
//! hosts must stay healthy, which hosts to start next, and whether a failure rolls back.
//!
//! Invariants kept by [`decide`]: a healthy host is taken out of service only while the
//! healthy count stays at or above the minimum; unhealthy hosts (which cannot lower the
//! count) go first; when nothing can start and nothing runs, the phase ends.

use crate::model::{DeploymentConfig, Health, Revision, Role, RunStatus};

/// Events of an in-place host, in the service's order
/// (docs/behaviour/commands.md#lifecycle-events). The traffic events are sent only when the
/// deployment group is behind a load balancer.
pub fn lifecycle_events(role: Role, load_balancer: bool) -> Vec<&'static str> {
    const INSTALL: [&str; 7] = [
        "ApplicationStop",
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ];
    const BLOCK: [&str; 2] = ["BeforeBlockTraffic", "AfterBlockTraffic"];
    const ALLOW: [&str; 2] = ["BeforeAllowTraffic", "AfterAllowTraffic"];
    match role {
        Role::InPlace if load_balancer => [&BLOCK[..], &INSTALL[..], &ALLOW[..]].concat(),
        Role::InPlace => INSTALL.to_vec(),
        // Blue/green always involves traffic shifting: replacements get their traffic
        // allowed after installing, originals get theirs blocked.
        Role::Replacement => [&INSTALL[..], &ALLOW[..]].concat(),
        Role::Original | Role::RollbackReplacement => BLOCK.to_vec(),
        Role::RollbackOriginal => ALLOW.to_vec(),
    }
}

/// Every event name the service lists in `AllPossibleLifecycleEvents`.
pub const ALL_LIFECYCLE_EVENTS: [&str; 11] = [
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// Minimum number of hosts that must stay healthy out of `total`.
pub fn min_healthy(config: DeploymentConfig, total: usize) -> usize {
    match config {
        // All but one, so one host at a time is taken out of service.
        DeploymentConfig::OneAtATime => total.saturating_sub(1),
        DeploymentConfig::HalfAtATime => percent_up(total, 50),
        DeploymentConfig::AllAtOnce => 0,
        DeploymentConfig::HostCount(n) => n as usize,
        DeploymentConfig::FleetPercent(p) => percent_up(total, p as usize),
    }
}

fn percent_up(total: usize, percent: usize) -> usize {
    (total * percent).div_ceil(100)
}

/// Deployment order: unhealthy hosts first, then out-of-date ones, then current ones;
/// ties keep their given order. Returns indices into `hosts`.
pub fn deploy_order(hosts: &[(Health, Option<&Revision>)], target: &Revision) -> Vec<usize> {
    let rank = |(health, rev): &(Health, Option<&Revision>)| match (health, rev) {
        (Health::Unhealthy, _) => 0,
        (_, Some(r)) if *r == target => 2,
        _ => 1,
    };
    let mut idx: Vec<usize> = (0..hosts.len()).collect();
    idx.sort_by_key(|&i| rank(&hosts[i]));
    idx
}

/// The scheduler's view of one host in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub healthy_at_start: bool,
    pub status: RunStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start these slots (indices) now.
    Start(Vec<usize>),
    /// Hosts are running; nothing can start until one finishes.
    Wait,
    /// The phase is over; pending slots are to be skipped.
    Finished {
        succeeded: bool,
        reason: Option<String>,
    },
}

/// Decides the next step of a phase whose slots are in deployment order.
pub fn decide(slots: &[Slot], min_healthy: usize, require_all: bool) -> Decision {
    let count = |s: RunStatus| slots.iter().filter(|x| x.status == s).count();
    let (running, succeeded, failed) = (
        count(RunStatus::InProgress),
        count(RunStatus::Succeeded),
        count(RunStatus::Failed),
    );
    if require_all && failed > 0 {
        return if running > 0 {
            Decision::Wait
        } else {
            Decision::Finished {
                succeeded: false,
                reason: Some(format!("{failed} host(s) failed")),
            }
        };
    }
    let mut healthy = succeeded
        + slots
            .iter()
            .filter(|s| s.status == RunStatus::Pending && s.healthy_at_start)
            .count();
    let mut start = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        if slot.status != RunStatus::Pending {
            continue;
        }
        if !slot.healthy_at_start {
            start.push(i);
        } else if healthy > min_healthy {
            healthy -= 1;
            start.push(i);
        }
    }
    let pending = count(RunStatus::Pending);
    if !start.is_empty() {
        return Decision::Start(start);
    }
    if running > 0 {
        return Decision::Wait;
    }
    if pending > 0 {
        return Decision::Finished {
            succeeded: false,
            reason: Some(format!(
                "too few healthy hosts: {healthy} healthy, minimum {min_healthy}; {pending} host(s) not deployed"
            )),
        };
    }
    let ok = succeeded >= 1 && succeeded >= min_healthy;
    Decision::Finished {
        succeeded: ok,
        reason: (!ok).then(|| {
            format!("{succeeded} host(s) succeeded, {failed} failed, minimum healthy {min_healthy}")
        }),
    }
}

/// Which revision an automatic rollback deploys, if any: only failed deployments that are
/// not rollbacks themselves roll back, and only to a revision that once succeeded.
pub fn rollback_revision(
    auto_rollback: bool,
    failed: bool,
    is_rollback: bool,
    last_successful: Option<&Revision>,
) -> Option<Revision> {
    (auto_rollback && failed && !is_rollback)
        .then(|| last_successful.cloned())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(n: usize) -> Vec<Slot> {
        vec![
            Slot {
                healthy_at_start: true,
                status: RunStatus::Pending
            };
            n
        ]
    }

    #[test]
    fn minimums_follow_the_documented_examples() {
        assert_eq!(min_healthy(DeploymentConfig::HostCount(6), 9), 6);
        assert_eq!(min_healthy(DeploymentConfig::FleetPercent(40), 9), 4);
        assert_eq!(min_healthy(DeploymentConfig::HalfAtATime, 9), 5);
        assert_eq!(min_healthy(DeploymentConfig::OneAtATime, 10), 9);
        assert_eq!(min_healthy(DeploymentConfig::AllAtOnce, 10), 0);
    }

    #[test]
    fn batch_sizes_follow_the_minimum() {
        assert_eq!(
            decide(&slots(9), 4, false),
            Decision::Start((0..5).collect())
        );
        assert_eq!(decide(&slots(10), 9, false), Decision::Start(vec![0]));
        assert_eq!(decide(&slots(3), 0, false), Decision::Start(vec![0, 1, 2]));
    }

    #[test]
    fn unhealthy_hosts_start_without_lowering_the_count() {
        let mut s = slots(4);
        s[0].healthy_at_start = false;
        s[1].healthy_at_start = false;
        assert_eq!(decide(&s, 1, false), Decision::Start(vec![0, 1, 2]));
    }

    #[test]
    fn one_at_a_time_stops_on_first_failure_but_not_on_the_last() {
        let mut s = slots(3);
        s[0].status = RunStatus::Failed;
        assert!(matches!(
            decide(&s, 2, false),
            Decision::Finished {
                succeeded: false,
                ..
            }
        ));
        let mut s = slots(3);
        s[0].status = RunStatus::Succeeded;
        s[1].status = RunStatus::Succeeded;
        s[2].status = RunStatus::Failed;
        assert!(matches!(
            decide(&s, 2, false),
            Decision::Finished {
                succeeded: true,
                ..
            }
        ));
    }

    #[test]
    fn minimum_not_reachable_at_start_fails_at_once() {
        assert!(matches!(
            decide(&slots(4), 4, false),
            Decision::Finished {
                succeeded: false,
                ..
            }
        ));
    }

    #[test]
    fn all_at_once_needs_one_success() {
        let mut s = slots(2);
        s[0].status = RunStatus::Failed;
        s[1].status = RunStatus::Failed;
        assert!(matches!(
            decide(&s, 0, false),
            Decision::Finished {
                succeeded: false,
                ..
            }
        ));
        s[1].status = RunStatus::Succeeded;
        assert!(matches!(
            decide(&s, 0, false),
            Decision::Finished {
                succeeded: true,
                ..
            }
        ));
        assert!(matches!(
            decide(&s, 0, true),
            Decision::Finished {
                succeeded: false,
                ..
            }
        ));
    }

    #[test]
    fn waits_while_hosts_run() {
        let mut s = slots(4);
        s[0].status = RunStatus::InProgress;
        s[1].status = RunStatus::InProgress;
        assert_eq!(decide(&s, 2, false), Decision::Wait);
    }

    #[test]
    fn order_puts_unhealthy_then_stale_first() {
        let cur = Revision::GitHub {
            account: "a".into(),
            repository: "r".into(),
            commit_id: "1".into(),
            bundle_type: None,
        };
        let old = Revision::GitHub {
            account: "a".into(),
            repository: "r".into(),
            commit_id: "0".into(),
            bundle_type: None,
        };
        let hosts = [
            (Health::Healthy, Some(&cur)),
            (Health::Healthy, Some(&old)),
            (Health::Unhealthy, Some(&cur)),
            (Health::Unknown, None),
        ];
        assert_eq!(deploy_order(&hosts, &cur), vec![2, 1, 3, 0]);
    }

    #[test]
    fn lifecycle_orders() {
        assert_eq!(lifecycle_events(Role::InPlace, false).len(), 7);
        let lb = lifecycle_events(Role::InPlace, true);
        assert_eq!(lb.first(), Some(&"BeforeBlockTraffic"));
        assert_eq!(lb.last(), Some(&"AfterAllowTraffic"));
        assert_eq!(
            lifecycle_events(Role::Original, false),
            vec!["BeforeBlockTraffic", "AfterBlockTraffic"]
        );
    }

    #[test]
    fn rollback_only_for_failed_non_rollbacks_with_history() {
        let r = Revision::GitHub {
            account: "a".into(),
            repository: "r".into(),
            commit_id: "1".into(),
            bundle_type: None,
        };
        assert_eq!(
            rollback_revision(true, true, false, Some(&r)),
            Some(r.clone())
        );
        assert_eq!(rollback_revision(true, true, true, Some(&r)), None);
        assert_eq!(rollback_revision(false, true, false, Some(&r)), None);
        assert_eq!(rollback_revision(true, true, false, None), None);
    }
}
