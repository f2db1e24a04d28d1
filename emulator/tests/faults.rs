//! Fault injection changes exactly the calls it targets; the state file survives a restart.

#[path = "support/common.rs"]
mod common;
use codedeploy_emulator::{DeploymentRequest, FaultKind, FaultRule};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_hit_exactly_the_targeted_calls() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(100, 60_000, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    emu.register_host("h2", "AK2", "s2").unwrap();
    let (h1, h2) = (
        Host::new(&emu, "h1", "AK1", "s1"),
        Host::new(&emu, "h2", "AK2", "s2"),
    );
    let code = |v: &serde_json::Value| {
        v["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap()
            .to_string()
    };
    emu.create_deployment(DeploymentRequest::s3("default", "b", "k", "zip"))
        .unwrap();
    let cmd = h1.poll().await.expect("h1 goes first");

    emu.inject_fault(FaultRule::new(
        "PutHostCommandAcknowledgement",
        FaultKind::Throttle,
        2,
    ));
    let mut rule = FaultRule::new("PollHostCommand", FaultKind::ServerError, 1);
    rule.host_id = Some("h2".into());
    emu.inject_fault(rule);

    let ack = json!({ "HostCommandIdentifier": cmd["HostCommandIdentifier"] });
    // Other operations and other hosts are untouched.
    assert_eq!(
        h1.call("PollHostCommand", &json!({ "HostIdentifier": "h1" }))
            .await
            .0,
        200
    );
    h1.spec(&cmd).await;
    for _ in 0..2 {
        let (status, v) = h1.call("PutHostCommandAcknowledgement", &ack).await;
        assert_eq!(
            (status, code(&v).as_str(), v["message"].as_str()),
            (400, "ThrottlingException", Some("Rate exceeded"))
        );
    }
    assert_eq!(h1.ack(&cmd).await, "InProgress");
    let (status, v) = h2
        .call("PollHostCommand", &json!({ "HostIdentifier": "h2" }))
        .await;
    assert_eq!((status, code(&v).as_str()), (500, "ServerException"));
    assert_eq!(
        h2.call("PollHostCommand", &json!({ "HostIdentifier": "h2" }))
            .await
            .0,
        200
    );
    // The throttled acknowledgements never reached the service's logic.
    let acks = emu
        .host_history("h1")
        .iter()
        .filter(|e| e.kind == "Acknowledged")
        .count();
    assert_eq!(acks, 1);

    emu.inject_fault(FaultRule::new("PutHostCommandComplete", FaultKind::Drop, 1));
    let done = json!({ "HostCommandIdentifier": cmd["HostCommandIdentifier"], "CommandStatus": "Succeeded" });
    assert!(
        h1.raw(&h1.signing.clone(), "PutHostCommandComplete", &done)
            .await
            .is_err(),
        "connection dropped"
    );
    emu.inject_fault(FaultRule::new(
        "PutHostCommandComplete",
        FaultKind::Slow { delay_ms: 50 },
        1,
    ));
    assert_eq!(h1.call("PutHostCommandComplete", &done).await.0, 200);
    let completes = emu
        .host_history("h1")
        .iter()
        .filter(|e| e.kind == "CompletedSucceeded")
        .count();
    assert_eq!(completes, 1);
    assert!(
        h1.poll().await.is_some(),
        "next command after the slow completion"
    );
    // Every injected fault is counted in its second: 2 throttles, 1 server error, 1 drop,
    // 1 slow answer; h1's second to fourth faults are retries, h2's one is not.
    let log = emu.fault_log();
    assert_eq!(log.iter().map(|(_, n, _)| n).sum::<u32>(), 5, "{log:?}");
    assert_eq!(log.iter().map(|(_, _, r)| r).sum::<u32>(), 3, "{log:?}");
    assert!(log.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_and_ca_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = codedeploy_emulator::EmulatorConfig {
        pki_dir: Some(dir.path().join("pki")),
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let emu = codedeploy_emulator::Emulator::start(config.clone()).unwrap();
    emu.register_host("h1", "AK1", "s1").unwrap();
    let id = emu
        .create_deployment(DeploymentRequest::s3("default", "b", "k", "tar"))
        .unwrap();
    let ca = std::fs::read(emu.ca_cert_path()).unwrap();
    emu.shutdown();

    let emu = codedeploy_emulator::Emulator::start(config).unwrap();
    assert_eq!(std::fs::read(emu.ca_cert_path()).unwrap(), ca);
    assert!(emu.deployment(&id).is_some());
    let h = Host::new(&emu, "h1", "AK1", "s1");
    let cmd = h.poll().await.expect("queued command survives");
    assert_eq!(cmd["CommandName"], "ApplicationStop");
    emu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_hands_out_the_unfinished_command_again() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(100, 60_000, dir.path());
    emu.register_host("h1", "AK1", "s1").unwrap();
    let h = Host::new(&emu, "h1", "AK1", "s1");
    emu.create_deployment(DeploymentRequest::s3("default", "b", "k", "zip"))
        .unwrap();
    emu.inject_fault(FaultRule::new("PollHostCommand", FaultKind::Redeliver, 1));

    // Nothing dispatched yet: the poll proceeds normally and the rule stays.
    let cmd = h.poll().await.expect("first command");
    assert_eq!(cmd["CommandName"], "ApplicationStop");
    assert_eq!(emu.faults().len(), 1);
    let again = h.poll().await.expect("re-delivered");
    assert_eq!(again, cmd, "same identifier, nonce and execution id");
    assert!(emu.faults().is_empty(), "spent by the re-delivery");
    assert_eq!(h.poll().await, None, "the spent rule changes nothing more");

    assert_eq!(h.ack(&again).await, "InProgress");
    // Acknowledged commands are still unfinished and can come again.
    emu.inject_fault(FaultRule::new("PollHostCommand", FaultKind::Redeliver, 1));
    assert_eq!(h.poll().await.as_ref(), Some(&cmd));
    h.complete(&cmd, "Succeeded").await;
    let id = cmd["HostCommandIdentifier"].as_str().unwrap();
    let kinds: Vec<String> = emu
        .host_history("h1")
        .into_iter()
        .filter(|e| e.command.as_deref() == Some(id))
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "CommandReady",
            "Dispatched",
            "Redelivered",
            "Acknowledged",
            "Redelivered",
            "CompletedSucceeded"
        ]
    );
    let next = h.poll().await.expect("deployment moves on");
    assert_eq!(next["CommandName"], "DownloadBundle");
    assert_ne!(next["HostCommandIdentifier"], cmd["HostCommandIdentifier"]);
    emu.shutdown();
}
