//! A host in several deployment groups: registration adds groups, and deployments of
//! different groups run on the host at the same time, their commands interleaved.

#[path = "support/common.rs"]
mod common;
use codedeploy_emulator::client::AdminClient;
use codedeploy_emulator::{DeploymentRequest, DeploymentStatus, HostRegistration};
use common::*;
use serde_json::{json, Value};

fn reg(host: &str, key: &str, group: &str) -> HostRegistration {
    HostRegistration {
        host_id: host.into(),
        access_key: key.into(),
        secret_key: "s1".into(),
        session_token: None,
        group: group.into(),
    }
}

/// The deployment id inside `region/app/deployment/seq`.
fn deployment_of(cmd: &Value) -> String {
    let exec = cmd["DeploymentExecutionId"].as_str().unwrap();
    exec.split('/').nth(2).unwrap().to_string()
}

const IN_PLACE: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_again_with_the_same_keys_adds_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(100, 60_000, dir.path());
    let admin = AdminClient::new(&emu.admin_url());
    for group in ["A", "B", "A"] {
        admin
            .request(
                "POST",
                "/hosts",
                Some(&json!({ "host_id": "h1", "access_key": "AK1", "secret_key": "s1", "group": group })),
            )
            .await
            .unwrap();
    }
    let hosts = admin.request("GET", "/hosts", None).await.unwrap();
    assert_eq!(hosts[0]["groups"], json!(["A", "B"]));
    assert_eq!(emu.host("h1").unwrap().groups, ["A", "B"]);

    // New keys mean a re-registered instance: it starts over in the one group named.
    emu.register(reg("h1", "AK2", "C")).unwrap();
    assert_eq!(emu.host("h1").unwrap().groups, ["C"]);
    let old = Host::new(&emu, "h1", "AK1", "s1");
    let (status, v) = old
        .call("PollHostCommand", &json!({ "HostIdentifier": "h1" }))
        .await;
    assert_eq!(status, 403, "the replaced key no longer signs: {v}");
    let err = emu
        .create_deployment(DeploymentRequest::s3("A", "b", "k", "tgz"))
        .unwrap_err();
    assert!(err.to_string().contains("no hosts"), "{err}");
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_of_two_groups_interleave_on_one_host() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(100, 60_000, dir.path());
    emu.register(reg("h1", "AK1", "A")).unwrap();
    emu.register(reg("h1", "AK1", "B")).unwrap();
    emu.register(reg("h2", "AK2", "B")).unwrap();
    let h = Host::new(&emu, "h1", "AK1", "s1");
    let mut ra = DeploymentRequest::s3("A", "bucket", "a.tgz", "tgz");
    ra.application = "app-a".into();
    let a = emu.create_deployment(ra).unwrap();
    let mut rb = DeploymentRequest::s3("B", "bucket", "b.tgz", "tgz");
    rb.config = codedeploy_emulator::DeploymentConfig::AllAtOnce;
    let b = emu.create_deployment(rb).unwrap();

    let a1 = h.poll().await.expect("A's first command");
    assert_eq!(
        (deployment_of(&a1).as_str(), &a1["CommandName"]),
        (a.as_str(), &json!("ApplicationStop"))
    );
    let spec = verified_spec(&h.spec(&a1).await, emu.ca_cert_path());
    assert_eq!(
        (&spec["DeploymentId"], &spec["DeploymentGroupName"]),
        (&json!(a), &json!("A"))
    );
    assert_eq!(h.ack(&a1).await, "InProgress");

    // A's command stays open while B's commands keep coming.
    let mut seen: Vec<(String, String)> = vec![(a.clone(), "ApplicationStop".into())];
    for expected in ["ApplicationStop", "DownloadBundle"] {
        let cmd = h.poll().await.expect("B's next command");
        assert_eq!(
            (deployment_of(&cmd).as_str(), &cmd["CommandName"]),
            (b.as_str(), &json!(expected))
        );
        let spec = verified_spec(&h.spec(&cmd).await, emu.ca_cert_path());
        assert_eq!(spec["DeploymentGroupName"], "B");
        assert_eq!(h.ack(&cmd).await, "InProgress");
        h.complete(&cmd, "Succeeded").await;
        seen.push((b.clone(), expected.into()));
    }
    h.complete(&a1, "Succeeded").await;

    // Both ready commands (B's BeforeInstall, A's DownloadBundle) are handed out, one per poll.
    while let Some(cmd) = h.poll().await {
        h.spec(&cmd).await;
        assert_eq!(h.ack(&cmd).await, "InProgress");
        h.complete(&cmd, "Succeeded").await;
        seen.push((
            deployment_of(&cmd),
            cmd["CommandName"].as_str().unwrap().into(),
        ));
    }
    for d in [&a, &b] {
        let names: Vec<&str> = seen
            .iter()
            .filter(|(x, _)| x == d)
            .map(|(_, n)| n.as_str())
            .collect();
        assert_eq!(names, IN_PLACE, "deployment {d}");
    }
    let h2 = Host::new(&emu, "h2", "AK2", "s1");
    while h2.step(None).await.is_some() {}
    assert_eq!(emu.deployment_status(&a), Some(DeploymentStatus::Succeeded));
    assert_eq!(emu.deployment_status(&b), Some(DeploymentStatus::Succeeded));
    assert!(
        emu.deployment(&a).unwrap().phases[0]
            .runs
            .iter()
            .all(|r| r.host_id == "h1"),
        "h2 is only in B"
    );
    emu.shutdown();
}
