//! Scripted hosts walking deployments over real HTTP: command sequences, specs, long poll,
//! fleet scheduling, rollback, blue/green, time-outs and stop.

#[path = "support/common.rs"]
mod common;
use codedeploy_emulator::{
    DeploymentConfig, DeploymentRequest, DeploymentStatus, Revision, RunStatus, SpecFormat,
};
use common::*;
use serde_json::json;
use std::time::Duration;

fn s3_request(group: &str) -> DeploymentRequest {
    let mut r = DeploymentRequest::s3(group, "bucket-1", "app/v1.tgz", "tgz");
    r.revision = Revision::S3 {
        bucket: "bucket-1".into(),
        key: "app/v1.tgz".into(),
        bundle_type: "tgz".into(),
        version: Some("v-123".into()),
        etag: Some("etag-abc".into()),
    };
    r
}

async fn wait_status(emu: &codedeploy_emulator::Emulator, id: &str) -> DeploymentStatus {
    for _ in 0..200 {
        let s = emu.deployment_status(id).unwrap();
        if s != DeploymentStatus::InProgress {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment {id} still in progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_walks_every_command_with_load_balancer_and_signed_spec() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(200, 60_000, dir.path());
    emu.register_host(
        "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
        "AKID1",
        "s1",
    )
    .unwrap();
    let h = Host::new(
        &emu,
        "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
        "AKID1",
        "s1",
    );
    let mut req = s3_request("default");
    req.load_balancer = true;
    req.file_exists_behavior = Some("OVERWRITE".into());
    let id = emu.create_deployment(req).unwrap();

    let mut names = Vec::new();
    while let Some(cmd) = h.poll().await {
        assert!(regex_like_execution_id(
            cmd["DeploymentExecutionId"].as_str().unwrap()
        ));
        assert_eq!(cmd["HostIdentifier"], h.host_id.as_str());
        let spec = verified_spec(&h.spec(&cmd).await, emu.ca_cert_path());
        assert_eq!(spec["DeploymentId"], id.as_str());
        assert_eq!(h.ack(&cmd).await, "InProgress");
        h.complete(&cmd, "Succeeded").await;
        names.push(cmd["CommandName"].as_str().unwrap().to_string());
        if names.len() == 1 {
            assert_eq!(spec["DeploymentCreator"], "user");
            assert_eq!(spec["DeploymentType"], "IN_PLACE");
            assert_eq!(spec["DeploymentGroupName"], "default");
            assert_eq!(spec["ApplicationName"], "app");
            assert!(spec["DeploymentGroupId"]
                .as_str()
                .unwrap()
                .starts_with("dg-"));
            assert_eq!(
                spec["AgentActionOverrides"]["AgentOverrides"]["FileExistsBehavior"],
                "OVERWRITE"
            );
            assert_eq!(
                spec["AllPossibleLifecycleEvents"].as_array().unwrap().len(),
                11
            );
            assert_eq!(
                spec["Revision"],
                json!({ "RevisionType": "S3", "S3Revision": { "Bucket": "bucket-1", "Key": "app/v1.tgz",
                        "BundleType": "tgz", "Version": "v-123", "ETag": "etag-abc" } })
            );
        }
    }
    assert_eq!(
        names,
        [
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
            "AfterAllowTraffic"
        ]
    );
    assert_eq!(
        emu.deployment_status(&id),
        Some(DeploymentStatus::Succeeded)
    );
    let history = emu.host_history(&h.host_id);
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "CompletedSucceeded").count(),
        11
    );
    assert_eq!(kinds.last(), Some(&"HostSucceeded"));
    assert!(history.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    emu.shutdown();
}

fn regex_like_execution_id(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(4, '/').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty()) && s.len() <= 129
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_load_balancer_seven_commands_and_failure_stops_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(200, 60_000, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    let h = Host::new(&emu, "h1", "AK1", "s1");
    let id = emu.create_deployment(s3_request("default")).unwrap();
    let mut names = Vec::new();
    while let Some(n) = h.step(Some("Install")).await {
        names.push(n);
    }
    assert_eq!(
        names,
        [
            "ApplicationStop",
            "DownloadBundle",
            "BeforeInstall",
            "Install"
        ]
    );
    assert_eq!(emu.deployment_status(&id), Some(DeploymentStatus::Failed));
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_answers_when_a_command_arrives_and_text_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(30_000, 60_000, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    let h = std::sync::Arc::new(Host::new(&emu, "h1", "AK1", "s1"));
    let poller = tokio::spawn({
        let h = h.clone();
        async move { h.poll().await }
    });
    // Let the poll reach the server and park before the deployment exists.
    for _ in 0..100 {
        if !poller.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(!poller.is_finished(), "idle poll must be held");
    let mut req = DeploymentRequest::s3("default", "b", "k", "zip");
    req.revision = Revision::GitHub {
        account: "acme".into(),
        repository: "web".into(),
        commit_id: "abc123".into(),
        bundle_type: Some("tar".into()),
    };
    req.github_access_token = Some("tok".into());
    req.spec_format = SpecFormat::TextJson;
    emu.create_deployment(req).unwrap();
    let cmd = poller
        .await
        .unwrap()
        .expect("the held poll returns the new command");
    assert_eq!(cmd["CommandName"], "ApplicationStop");
    let answer = h.spec(&cmd).await;
    let env = &answer["DeploymentSpecification"]["GenericEnvelope"];
    assert_eq!(env["Format"], "TEXT/JSON");
    let spec: serde_json::Value = serde_json::from_str(env["Payload"].as_str().unwrap()).unwrap();
    assert_eq!(spec["GitHubAccessToken"], "tok");
    assert_eq!(
        spec["Revision"],
        json!({ "RevisionType": "GitHub", "GitHubRevision": { "Account": "acme", "Repository": "web", "CommitId": "abc123",
                "Anonymous": false, "OAuthToken": "tok", "BundleType": "tar" } })
    );
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_signature_fails_after_one_content_byte_changes() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(200, 60_000, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    let h = Host::new(&emu, "h1", "AK1", "s1");
    emu.create_deployment(s3_request("default")).unwrap();
    let cmd = h.poll().await.unwrap();
    let answer = h.spec(&cmd).await;
    verified_spec(&answer, emu.ca_cert_path());
    let pem = answer["DeploymentSpecification"]["GenericEnvelope"]["Payload"]
        .as_str()
        .unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = openssl::base64::decode_block(&b64).unwrap();
    let at = der.windows(8).position(|w| w == b"bucket-1").unwrap();
    der[at] = b'B';
    let p7 = openssl::pkcs7::Pkcs7::from_der(&der).unwrap();
    let tampered = p7.to_pem().unwrap();
    let ca = std::fs::read(emu.ca_cert_path()).unwrap();
    assert!(codedeploy_emulator::pki::verify_pkcs7(&tampered, &ca).is_err());
    // A different CA does not vouch for the signer either.
    let other = codedeploy_emulator::pki::Pki::load_or_create(&dir.path().join("other")).unwrap();
    let other_ca = std::fs::read(other.ca_cert_path()).unwrap();
    assert!(codedeploy_emulator::pki::verify_pkcs7(pem.as_bytes(), &other_ca).is_err());
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_at_a_time_over_ten_hosts_with_two_failures() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(50, 60_000, dir.path());
    let hosts: Vec<Host> = (0..10)
        .map(|i| {
            let id = format!("h{i:02}");
            emu.register_host(&id, &format!("AK{i}"), "s").unwrap();
            Host::new(&emu, &id, &format!("AK{i}"), "s")
        })
        .collect();
    let mut req = s3_request("default");
    req.config = DeploymentConfig::HalfAtATime;
    let id = emu.create_deployment(req).unwrap();
    let failing = ["h01", "h03"];
    let first = emu.deployment(&id).unwrap();
    let running: Vec<&str> = first.phases[0]
        .runs
        .iter()
        .filter(|r| r.status == RunStatus::InProgress)
        .map(|r| r.host_id.as_str())
        .collect();
    assert_eq!(
        running,
        ["h00", "h01", "h02", "h03", "h04"],
        "first batch is half the fleet"
    );
    let mut rounds = 0;
    while emu.deployment_status(&id) == Some(DeploymentStatus::InProgress) {
        rounds += 1;
        assert!(rounds < 200);
        for h in &hosts {
            let fail = failing
                .contains(&h.host_id.as_str())
                .then_some("BeforeInstall");
            h.step(fail).await;
        }
        // The minimum of 5 healthy hosts holds at every step.
        let d = emu.deployment(&id).unwrap();
        let runs = &d.phases[0].runs;
        let healthy = runs
            .iter()
            .filter(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::Pending))
            .count();
        assert!(healthy >= 5, "healthy {healthy} below minimum: {runs:?}");
    }
    let d = emu.deployment(&id).unwrap();
    let by = |s: RunStatus| d.phases[0].runs.iter().filter(|r| r.status == s).count();
    assert_eq!((by(RunStatus::Succeeded), by(RunStatus::Failed)), (8, 2));
    assert_eq!(d.status, DeploymentStatus::Succeeded);
    let mut starts: Vec<u64> = d.phases[0]
        .runs
        .iter()
        .filter_map(|r| r.started_ms)
        .collect();
    starts.sort();
    assert_eq!(starts.len(), 10);
    assert!(emu.host("h01").unwrap().health == codedeploy_emulator::Health::Unhealthy);

    // Next deployment: unhealthy hosts go first, and 6 failures leave too few healthy hosts.
    let mut req = s3_request("default");
    req.config = DeploymentConfig::HalfAtATime;
    req.revision = Revision::S3 {
        bucket: "bucket-1".into(),
        key: "app/v2.tgz".into(),
        bundle_type: "tgz".into(),
        version: None,
        etag: None,
    };
    let id2 = emu.create_deployment(req).unwrap();
    let d2 = emu.deployment(&id2).unwrap();
    let order: Vec<&str> = d2.phases[0]
        .runs
        .iter()
        .map(|r| r.host_id.as_str())
        .take(2)
        .collect();
    assert_eq!(order, ["h01", "h03"]);
    for h in &hosts {
        h.step(Some("ApplicationStop")).await;
    }
    for _ in 0..20 {
        for h in &hosts {
            h.step(Some("ApplicationStop")).await;
        }
    }
    assert_eq!(emu.deployment_status(&id2), Some(DeploymentStatus::Failed));
    let d2 = emu.deployment(&id2).unwrap();
    assert!(
        d2.phases[0]
            .runs
            .iter()
            .any(|r| r.status == RunStatus::Skipped),
        "{:?}",
        d2.phases[0].runs
    );
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deployment_rolls_back_to_last_successful_revision() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(50, 60_000, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    let h = Host::new(&emu, "h1", "AK1", "s1");
    let good = emu.create_deployment(s3_request("default")).unwrap();
    while h.step(None).await.is_some() {}
    assert_eq!(
        emu.deployment_status(&good),
        Some(DeploymentStatus::Succeeded)
    );
    let mut bad = s3_request("default");
    bad.revision = Revision::S3 {
        bucket: "bucket-1".into(),
        key: "app/v2.tgz".into(),
        bundle_type: "tgz".into(),
        version: None,
        etag: None,
    };
    bad.auto_rollback = true;
    let bad_id = emu.create_deployment(bad).unwrap();
    while emu.deployment_status(&bad_id) == Some(DeploymentStatus::InProgress) {
        h.step(Some("AfterInstall")).await;
    }
    let failed = emu.deployment(&bad_id).unwrap();
    assert_eq!(failed.status, DeploymentStatus::Failed);
    let rb_id = failed.rolled_back_by.expect("a rollback deployment");
    let cmd = h.poll().await.expect("rollback command");
    let spec = verified_spec(&h.spec(&cmd).await, emu.ca_cert_path());
    assert_eq!(spec["DeploymentCreator"], "codeDeployRollback");
    assert_eq!(spec["DeploymentId"], rb_id.as_str());
    assert_eq!(spec["Revision"]["S3Revision"]["Key"], "app/v1.tgz");
    h.ack(&cmd).await;
    h.complete(&cmd, "Succeeded").await;
    while h.step(None).await.is_some() {}
    assert_eq!(
        emu.deployment_status(&rb_id),
        Some(DeploymentStatus::Succeeded)
    );
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_installs_replacements_then_blocks_originals() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(50, 60_000, dir.path());
    emu.register_host("blue", "AKB", "s").unwrap();
    emu.register(codedeploy_emulator::HostRegistration {
        host_id: "blue".into(),
        access_key: "AKB".into(),
        secret_key: "s".into(),
        session_token: None,
        group: "web".into(),
    })
    .unwrap();
    emu.register(codedeploy_emulator::HostRegistration {
        host_id: "green".into(),
        access_key: "AKG".into(),
        secret_key: "s".into(),
        session_token: None,
        group: "staging".into(),
    })
    .unwrap();
    let (blue, green) = (
        Host::new(&emu, "blue", "AKB", "s"),
        Host::new(&emu, "green", "AKG", "s"),
    );
    let mut req = s3_request("default");
    req.blue_green = Some(codedeploy_emulator::BlueGreen {
        replacement_hosts: vec!["green".into()],
    });
    let id = emu.create_deployment(req).unwrap();
    assert_eq!(
        blue.poll().await,
        None,
        "originals wait for the replacements"
    );
    let mut green_names = Vec::new();
    while let Some(n) = green.step(None).await {
        green_names.push(n);
    }
    assert_eq!(green_names.len(), 9);
    assert_eq!(
        green_names[7..],
        ["BeforeAllowTraffic", "AfterAllowTraffic"]
    );
    let cmd = blue.poll().await.unwrap();
    let spec = verified_spec(&blue.spec(&cmd).await, emu.ca_cert_path());
    assert_eq!(spec["DeploymentType"], "BLUE_GREEN");
    blue.ack(&cmd).await;
    blue.complete(&cmd, "Succeeded").await;
    assert_eq!(blue.step(None).await.as_deref(), Some("AfterBlockTraffic"));
    assert_eq!(cmd["CommandName"], "BeforeBlockTraffic");
    assert_eq!(wait_status(&emu, &id).await, DeploymentStatus::Succeeded);
    // Replacements join the group, originals leave it; other memberships stay.
    assert_eq!(emu.host("green").unwrap().groups, ["staging", "default"]);
    assert_eq!(emu.host("blue").unwrap().groups, ["web"]);
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_completes_times_out_and_stop_fails_acks() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(50, 300, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    let h = Host::new(&emu, "h1", "AK1", "s1");
    let id = emu.create_deployment(s3_request("default")).unwrap();
    let cmd = h.poll().await.unwrap();
    assert_eq!(h.ack(&cmd).await, "InProgress");
    assert_eq!(wait_status(&emu, &id).await, DeploymentStatus::Failed);
    let c = emu
        .command(cmd["HostCommandIdentifier"].as_str().unwrap())
        .unwrap();
    assert_eq!(c.failure_reason.as_deref(), Some("command timed out"));
    assert_eq!(h.ack(&cmd).await, "Failed");

    let dir2 = tempfile::tempdir().unwrap();
    let emu2 = start(50, 60_000, dir2.path());
    emu2.register_host("h1", "AK1", "s1").unwrap();
    let h2 = Host::new(&emu2, "h1", "AK1", "s1");
    let id2 = emu2.create_deployment(s3_request("default")).unwrap();
    let cmd = h2.poll().await.unwrap();
    emu2.stop_deployment(&id2).unwrap();
    assert_eq!(h2.ack(&cmd).await, "Failed");
    assert_eq!(
        emu2.deployment_status(&id2),
        Some(DeploymentStatus::Stopped)
    );
    assert_eq!(h2.poll().await, None);
    emu.shutdown();
    emu2.shutdown();
}
