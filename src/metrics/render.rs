//! PURE: a [`Snapshot`] in the Prometheus text exposition format (version 0.0.4), as the
//! node_exporter textfile collector reads it. docs/metrics.md lists every metric.
//!
//! Invariants: every metric family is written once, HELP and TYPE first, even with no samples
//! yet (a dashboard finds the name from the agent's start); label values are escaped as the
//! format requires; series come in a stable (sorted) order, so two renders of the same data
//! are the same bytes.

use super::model::{GroupKey, Histogram, Snapshot};
use std::fmt::Write;

/// The prefix of every metric name.
pub const PREFIX: &str = "codedeploy_agent_";

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{a="x",b="y"}` (empty for no labels).
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn group_labels(k: &GroupKey) -> Vec<(&str, &str)> {
    vec![
        ("application", k.application.as_str()),
        ("group", k.group.as_str()),
    ]
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.0, "# TYPE {PREFIX}{name} {kind}");
    }
    fn sample(&mut self, name: &str, l: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{PREFIX}{name}{} {value}", labels(l));
    }
    fn histogram(&mut self, name: &str, l: &[(&str, &str)], h: &Histogram) {
        let bounds: Vec<String> = h
            .bounds
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()])
            .collect();
        for (le, n) in bounds.iter().zip(h.cumulative()) {
            let mut with_le = l.to_vec();
            with_le.push(("le", le));
            self.sample(&format!("{name}_bucket"), &with_le, n);
        }
        self.sample(&format!("{name}_sum"), l, h.sum);
        self.sample(&format!("{name}_count"), l, h.count);
    }
}

/// The whole file.
pub fn render(s: &Snapshot) -> String {
    let mut o = Out(String::new());
    o.family(
        "build_info",
        "gauge",
        "The running agent's version (the value is always 1).",
    );
    o.sample("build_info", &[("version", &s.version)], 1);
    o.family(
        "start_time_seconds",
        "gauge",
        "When the agent started, in seconds since the Unix epoch.",
    );
    o.sample("start_time_seconds", &[], s.start_time);

    o.family(
        "deployments_total",
        "counter",
        "Deployments whose part on this host ended, by result: failed at the first failed lifecycle event, succeeded at the last event of its schedule.",
    );
    for ((k, outcome), n) in &s.deployments {
        let mut l = group_labels(k);
        l.push(("result", outcome.label()));
        o.sample("deployments_total", &l, n);
    }
    o.family(
        "last_deployment_timestamp_seconds",
        "gauge",
        "When the group's last deployment ended on this host, in seconds since the Unix epoch.",
    );
    for (k, last) in &s.last {
        o.sample(
            "last_deployment_timestamp_seconds",
            &group_labels(k),
            last.ended_at,
        );
    }
    o.family(
        "last_deployment_success",
        "gauge",
        "1 when the group's last deployment on this host succeeded, 0 when it failed.",
    );
    for (k, last) in &s.last {
        let mut l = group_labels(k);
        l.push(("deployment_id", &last.deployment_id));
        let ok = u8::from(last.outcome == super::model::Outcome::Succeeded);
        o.sample("last_deployment_success", &l, ok);
    }

    o.family(
        "lifecycle_events_total",
        "counter",
        "Lifecycle events this agent executed, by event and result.",
    );
    for ((k, event, outcome), n) in &s.events {
        let mut l = group_labels(k);
        l.push(("event", event));
        l.push(("result", outcome.label()));
        o.sample("lifecycle_events_total", &l, n);
    }
    o.family(
        "lifecycle_event_duration_seconds",
        "histogram",
        "How long each executed lifecycle event took, from its start to its result.",
    );
    for (event, h) in &s.event_seconds {
        o.histogram("lifecycle_event_duration_seconds", &[("event", event)], h);
    }

    o.family(
        "bundle_download_duration_seconds",
        "histogram",
        "How long each successful DownloadBundle took (download and unpack, one stream).",
    );
    o.histogram("bundle_download_duration_seconds", &[], &s.download_seconds);
    o.family(
        "bundle_bytes_total",
        "counter",
        "Bytes of every bundle downloaded successfully (their unpacked size).",
    );
    o.sample("bundle_bytes_total", &[], s.bundle_bytes_total);
    o.family(
        "bundle_size_bytes",
        "gauge",
        "The unpacked size of the group's last bundle downloaded.",
    );
    for (k, bytes) in &s.last_bundle_bytes {
        o.sample("bundle_size_bytes", &group_labels(k), bytes);
    }

    o.family(
        "poll_errors_total",
        "counter",
        "Failed polls of the host-command service, by kind.",
    );
    for (kind, n) in &s.poll_errors {
        o.sample("poll_errors_total", &[("kind", kind)], n);
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::super::model::{Finished, Outcome, State};
    use super::*;
    use crate::lifecycle::DeploymentType;

    fn sample_state() -> State {
        let mut s = State::new("1.2.3", 1_700_000_000.5);
        let k = GroupKey {
            application: "shop".into(),
            group: "prod \"eu\"\\".into(),
        };
        for (event, outcome, bytes) in [
            ("DownloadBundle", Outcome::Succeeded, Some(2048)),
            ("ValidateService", Outcome::Failed, None),
        ] {
            s.record(&Finished {
                key: &k,
                deployment_id: "d-ABC",
                kind: DeploymentType::InPlace,
                event,
                outcome,
                seconds: 3.0,
                bundle_bytes: bytes,
                now: 1_700_000_100.0,
            });
        }
        s.poll_failed("throttled");
        s
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn every_family_has_help_and_type_and_the_prefix() {
        let text = render(&State::new("1.0", 5.0).snapshot);
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(types.len(), 11, "{text}");
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with(PREFIX), "{l}");
        }
        assert!(text.contains("codedeploy_agent_build_info{version=\"1.0\"} 1\n"));
        assert!(text.contains("codedeploy_agent_start_time_seconds 5\n"));
        assert!(text.contains("codedeploy_agent_poll_errors_total{kind=\"network\"} 0\n"));
        assert!(text.contains("codedeploy_agent_bundle_download_duration_seconds_count 0\n"));
    }

    #[test]
    fn a_failed_deployment_renders_its_series() {
        let text = render(&sample_state().snapshot);
        let g = "application=\"shop\",group=\"prod \\\"eu\\\"\\\\\"";
        for line in [
            format!("codedeploy_agent_deployments_total{{{g},result=\"failed\"}} 1"),
            format!("codedeploy_agent_last_deployment_timestamp_seconds{{{g}}} 1700000100"),
            format!("codedeploy_agent_last_deployment_success{{{g},deployment_id=\"d-ABC\"}} 0"),
            format!("codedeploy_agent_lifecycle_events_total{{{g},event=\"DownloadBundle\",result=\"succeeded\"}} 1"),
            "codedeploy_agent_lifecycle_event_duration_seconds_bucket{event=\"ValidateService\",le=\"1\"} 0".into(),
            "codedeploy_agent_lifecycle_event_duration_seconds_bucket{event=\"ValidateService\",le=\"5\"} 1".into(),
            "codedeploy_agent_lifecycle_event_duration_seconds_bucket{event=\"ValidateService\",le=\"+Inf\"} 1".into(),
            "codedeploy_agent_lifecycle_event_duration_seconds_sum{event=\"ValidateService\"} 3".into(),
            "codedeploy_agent_bundle_download_duration_seconds_count 1".into(),
            "codedeploy_agent_bundle_bytes_total 2048".into(),
            format!("codedeploy_agent_bundle_size_bytes{{{g}}} 2048"),
            "codedeploy_agent_poll_errors_total{kind=\"throttled\"} 1".into(),
            "codedeploy_agent_start_time_seconds 1700000000.5".into(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn rendering_is_stable() {
        let s = sample_state();
        assert_eq!(render(&s.snapshot), render(&s.snapshot.clone()));
    }
}
