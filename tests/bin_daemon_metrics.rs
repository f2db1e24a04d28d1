//! Fleet metrics (`metrics_textfile`, docs/metrics.md): the daemon against the emulator and
//! moto writes a node_exporter textfile that counts what happened, and `promtool` (Debian's
//! prometheus package) accepts it and the documented alert rule.

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;

use codedeploy_emulator::{DeploymentStatus, FaultKind, FaultRule};
use common::*;
use daemon_support::moto::skip;
use daemon_support::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(180);
const PROMTOOL_HOW: &str = "apt-get install prometheus (scripts/test does)";

/// A tgz whose ValidateService hook exits with `exit`.
fn bundle(w: &World, tag: &str, exit: u8) -> (String, String, String) {
    let dir = w.path().join(tag);
    write(
        &dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: before.sh\n  ValidateService:\n    - location: check.sh\n",
        false,
    );
    write(&dir.join("before.sh"), "#!/bin/sh\necho before\n", true);
    write(
        &dir.join("check.sh"),
        &format!("#!/bin/sh\necho checking\nexit {exit}\n"),
        true,
    );
    let tgz = w.path().join(format!("{tag}.tgz"));
    make_tgz(&dir, &tgz);
    let key = format!("{tag}.tgz");
    let (v, e) = w.upload(&key, fs::read(&tgz).unwrap());
    (key, v, e)
}

/// The value of the one sample `name{labels}` in `text`, if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn promtool(args: &[&str], stdin: Option<&Path>) -> std::process::Output {
    let mut c = Command::new("promtool");
    c.args(args);
    if let Some(p) = stdin {
        c.stdin(fs::File::open(p).expect("open for promtool"));
    }
    c.output().expect("run promtool")
}

#[test]
fn a_deployment_run_is_counted_in_the_textfile_and_promtool_accepts_it() {
    let Some(w) = World::new() else { return };
    let prom = w.path().join("textfile/codedeploy.prom");
    let key = format!("metrics_textfile: {}", prom.display());
    w.write_config(&[key.as_str(), "wait_after_throttle_error: 1"]);
    w.emu
        .inject_fault(FaultRule::new("PollHostCommand", FaultKind::Throttle, 1));
    let _agent = w.agent();
    // Written at start, before any command: the version and the start time.
    assert!(
        eventually(Duration::from_secs(30), || prom.is_file()),
        "no metrics file\n{}",
        w.agent_log()
    );
    let first = fs::read_to_string(&prom).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        first.contains(&format!(
            "codedeploy_agent_build_info{{version=\"{version}\"}} 1\n"
        )),
        "{first}"
    );
    assert!(value(&first, "codedeploy_agent_start_time_seconds").is_some_and(|t| t > 1.0e9));

    // 1: behind a load balancer, so it ends at AfterAllowTraffic (11 events), and succeeds.
    let (k, v, e) = bundle(&w, "good", 0);
    let mut req = w.s3_request(&k, "tgz", &v, &e);
    req.load_balancer = true;
    let app = req.application.clone();
    let good = w.deploy(req);
    assert_eq!(
        w.wait_done(&good, LONG).status,
        DeploymentStatus::Succeeded,
        "{}",
        w.agent_log()
    );
    let g = format!("application=\"{app}\",group=\"default\"");
    let ok = format!("codedeploy_agent_deployments_total{{{g},result=\"succeeded\"}}");
    assert!(
        eventually(Duration::from_secs(30), || value(
            &fs::read_to_string(&prom).unwrap_or_default(),
            &ok
        ) == Some(1.0)),
        "{}",
        fs::read_to_string(&prom).unwrap_or_default()
    );

    // 2: in place without a load balancer; its ValidateService fails.
    let (k, v, e) = bundle(&w, "bad", 3);
    let bad = w.deploy(w.s3_request(&k, "tgz", &v, &e));
    assert_eq!(w.wait_done(&bad, LONG).status, DeploymentStatus::Failed);
    let failed = format!("codedeploy_agent_deployments_total{{{g},result=\"failed\"}}");
    assert!(
        eventually(Duration::from_secs(30), || value(
            &fs::read_to_string(&prom).unwrap_or_default(),
            &failed
        ) == Some(1.0)),
        "{}",
        fs::read_to_string(&prom).unwrap_or_default()
    );
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(value(&text, &ok), Some(1.0), "still one success\n{text}");
    assert_eq!(
        value(
            &text,
            &format!("codedeploy_agent_last_deployment_success{{{g},deployment_id=\"{bad}\"}}")
        ),
        Some(0.0),
        "{text}"
    );
    let ended = value(
        &text,
        &format!("codedeploy_agent_last_deployment_timestamp_seconds{{{g}}}"),
    )
    .expect("last deployment time");
    let started = value(&text, "codedeploy_agent_start_time_seconds").unwrap();
    assert!(ended >= started, "{text}");
    for (event, result, n) in [
        ("AfterAllowTraffic", "succeeded", 1.0),
        ("BeforeInstall", "succeeded", 2.0),
        ("ValidateService", "succeeded", 1.0),
        ("ValidateService", "failed", 1.0),
    ] {
        let s = format!(
            "codedeploy_agent_lifecycle_events_total{{{g},event=\"{event}\",result=\"{result}\"}}"
        );
        assert_eq!(value(&text, &s), Some(n), "{s}\n{text}");
    }
    assert_eq!(
        value(
            &text,
            "codedeploy_agent_lifecycle_event_duration_seconds_count{event=\"ValidateService\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "codedeploy_agent_bundle_download_duration_seconds_count"
        ),
        Some(2.0),
        "{text}"
    );
    let size =
        value(&text, &format!("codedeploy_agent_bundle_size_bytes{{{g}}}")).expect("bundle size");
    assert!(size > 0.0, "{text}");
    assert!(value(&text, "codedeploy_agent_bundle_bytes_total").is_some_and(|b| b > size));
    assert!(
        value(
            &text,
            "codedeploy_agent_poll_errors_total{kind=\"throttled\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // Only the file itself is in its directory: the temporary is renamed, never left.
    let names: Vec<_> = fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["codedeploy.prom".to_string()]);

    if skip::require_tool("promtool", PROMTOOL_HOW).is_none() {
        return;
    }
    let out = promtool(&["check", "metrics"], Some(&prom));
    assert!(
        out.status.success(),
        "promtool check metrics refused the file:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alert rule docs/metrics.md shows: the yaml block after the `alert-rule` marker.
#[test]
fn the_documented_alert_rule_passes_promtool_check_rules() {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    let after = doc
        .split_once("<a id=\"alert-rule\"></a>")
        .expect("the alert-rule anchor")
        .1;
    let block = after
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a yaml block after the anchor")
        .0;
    assert!(block.contains("codedeploy_agent_"), "{block}");
    if skip::require_tool("promtool", PROMTOOL_HOW).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("codedeploy-rules.yml");
    fs::write(&rules, block).unwrap();
    let out = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}\n{block}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
