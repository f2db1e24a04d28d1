//! Fault injection: rules that make the next N matching calls fail in a chosen way.
//!
//! A rule matches on operation and optionally on the calling host; each matching call uses up
//! one of its `count`, and a spent rule is removed, so exactly the targeted calls change.
//! Faults apply after authentication, like a throttle or fault of the real service.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault")]
pub enum FaultKind {
    /// HTTP 500 `ServerException`.
    ServerError,
    /// HTTP 400 `ThrottlingException` "Rate exceeded".
    Throttle,
    /// The call is answered normally after a delay.
    Slow { delay_ms: u64 },
    /// The connection is closed without an answer.
    Drop,
    /// GetDeploymentSpecification answers a PKCS#7 spec whose signed content has one byte
    /// changed after signing, as a tampering proxy would (other operations are unaffected).
    TamperSpec,
    /// PollHostCommand answers again the host's most recently dispatched command that is not
    /// yet completed, with the same identifier. Used up only by a poll that re-delivered; a
    /// poll with nothing to re-deliver proceeds normally and leaves the rule in place.
    Redeliver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Operation name (e.g. `PollHostCommand`); `None` matches every operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// Calling host; `None` matches every host.
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many matching calls the rule still affects.
    pub count: u32,
}

impl FaultRule {
    pub fn new(operation: &str, kind: FaultKind, count: u32) -> Self {
        FaultRule {
            operation: Some(operation.to_string()),
            host_id: None,
            kind,
            count,
        }
    }
}

/// One injected fault as it was applied: when, to which call. Tests read these to see when
/// an agent retried (the spacing of its attempts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultHit {
    pub at_ms: u64,
    pub operation: String,
    pub host_id: String,
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// Fault hits kept (the oldest go first), so a long benchmark's memory stays bounded.
pub const FAULT_HITS_KEPT: usize = 10_000;

/// PURE: appends `hit`, dropping the oldest beyond [`FAULT_HITS_KEPT`].
pub fn record_hit(hits: &mut std::collections::VecDeque<FaultHit>, hit: FaultHit) {
    if hits.len() >= FAULT_HITS_KEPT {
        hits.pop_front();
    }
    hits.push_back(hit);
}

/// PURE: finds the first rule matching the call, uses it up once, and returns its fault.
/// `Redeliver` rules are left alone: they apply only through [`take_redeliver`].
pub fn take(rules: &mut Vec<FaultRule>, operation: &str, host_id: &str) -> Option<FaultKind> {
    take_if(rules, operation, host_id, |k| k != FaultKind::Redeliver)
}

/// PURE: uses up one matching `Redeliver` rule for a poll of `host_id`; the caller asks only
/// when it has a command to re-deliver, so a rule is spent only by a real re-delivery.
pub fn take_redeliver(rules: &mut Vec<FaultRule>, host_id: &str) -> bool {
    take_if(rules, "PollHostCommand", host_id, |k| {
        k == FaultKind::Redeliver
    })
    .is_some()
}

fn take_if(
    rules: &mut Vec<FaultRule>,
    operation: &str,
    host_id: &str,
    kind: impl Fn(FaultKind) -> bool,
) -> Option<FaultKind> {
    let i = rules.iter().position(|r| {
        r.count > 0
            && kind(r.kind)
            && r.operation.as_deref().is_none_or(|o| o == operation)
            && r.host_id.as_deref().is_none_or(|h| h == host_id)
    })?;
    let kind = rules[i].kind;
    rules[i].count -= 1;
    if rules[i].count == 0 {
        rules.remove(i);
    }
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_hits_are_bounded() {
        let mut hits = std::collections::VecDeque::new();
        for i in 0..FAULT_HITS_KEPT as u64 + 5 {
            record_hit(
                &mut hits,
                FaultHit {
                    at_ms: i,
                    operation: "PollHostCommand".into(),
                    host_id: "h".into(),
                    kind: FaultKind::Throttle,
                },
            );
        }
        assert_eq!(hits.len(), FAULT_HITS_KEPT);
        assert_eq!(hits.front().map(|h| h.at_ms), Some(5));
    }

    #[test]
    fn rules_are_used_up_exactly() {
        let mut rules = vec![FaultRule::new("PollHostCommand", FaultKind::Throttle, 2)];
        assert_eq!(take(&mut rules, "PutHostCommandComplete", "h"), None);
        assert_eq!(
            take(&mut rules, "PollHostCommand", "h"),
            Some(FaultKind::Throttle)
        );
        assert_eq!(
            take(&mut rules, "PollHostCommand", "h"),
            Some(FaultKind::Throttle)
        );
        assert_eq!(take(&mut rules, "PollHostCommand", "h"), None);
        assert!(rules.is_empty());
    }

    #[test]
    fn redeliver_rules_are_taken_only_on_request() {
        let mut rules = vec![
            FaultRule::new("PollHostCommand", FaultKind::Redeliver, 1),
            FaultRule::new("PollHostCommand", FaultKind::Throttle, 1),
        ];
        assert_eq!(
            take(&mut rules, "PollHostCommand", "h"),
            Some(FaultKind::Throttle),
            "ordinary faults pass over Redeliver"
        );
        assert_eq!(take(&mut rules, "PollHostCommand", "h"), None);
        assert_eq!(rules.len(), 1);
        let mut other_op = vec![FaultRule::new(
            "PutHostCommandComplete",
            FaultKind::Redeliver,
            1,
        )];
        assert!(!take_redeliver(&mut other_op, "h"));
        assert!(take_redeliver(&mut rules, "h"));
        assert!(!take_redeliver(&mut rules, "h"));
        assert!(rules.is_empty());
        let json: FaultRule = serde_json::from_str(
            r#"{"operation":"PollHostCommand","fault":"Redeliver","count":2}"#,
        )
        .unwrap();
        assert_eq!(json.kind, FaultKind::Redeliver);
    }

    #[test]
    fn host_filter_and_json_form() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"operation":null,"host_id":"b","fault":"Slow","delay_ms":5,"count":1}"#,
        )
        .unwrap();
        let mut rules = vec![rule];
        assert_eq!(take(&mut rules, "PollHostCommand", "a"), None);
        assert_eq!(
            take(&mut rules, "PollHostCommand", "b"),
            Some(FaultKind::Slow { delay_ms: 5 })
        );
    }
}
