//! Proxies end to end (docs/proxies.md): `codedeploy-agent run` against the emulator and moto
//! (SigV4 on) through a real squid with basic authentication on loopback. Squid's access log
//! proves which requests went through it: the command service's `POST http://<emulator>/` and
//! S3's `GET http://<moto>/<bucket>/<key>`.

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/squid.rs"]
mod squid;

use codedeploy_emulator::{CommandState, DeploymentStatus};
use common::*;
use daemon_support::moto::skip;
use daemon_support::*;
use squid::Squid;
use std::fs;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);
/// A password with characters that must be percent-encoded in a URL.
const PASSWORD: &str = "p@ss:w0rd/x";
const PASSWORD_IN_URL: &str = "p%40ss%3Aw0rd%2Fx";

/// A one-file bundle whose AfterInstall hook leaves a mark; uploaded, returns the request.
fn small_deployment(w: &World) -> codedeploy_emulator::DeploymentRequest {
    let b = w.path().join("bundle");
    let dest = w.path().join("dest");
    write(
        &b.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: hello.txt\n    destination: {}\n\
             hooks:\n  AfterInstall:\n    - location: mark.sh\n",
            dest.display()
        ),
        false,
    );
    write(&b.join("hello.txt"), "hello through the proxy\n", false);
    write(
        &b.join("mark.sh"),
        &format!("#!/bin/sh\ntouch {}/marked\n", dest.display()),
        true,
    );
    let zip = w.path().join("bundle.zip");
    make_zip(&b, &zip);
    let (version, etag) = w.upload("bundle.zip", fs::read(&zip).unwrap());
    w.s3_request("bundle.zip", "zip", &version, &etag)
}

fn emulator_target(w: &World) -> String {
    format!("POST {}/", w.emu.endpoint())
}

fn s3_target(w: &World) -> String {
    format!("GET {}/{}/bundle.zip", w.moto.endpoint, w.moto.bucket)
}

fn assert_no_password(w: &World) {
    let log = w.agent_log();
    for secret in [PASSWORD, PASSWORD_IN_URL, "wrong-pass"] {
        assert!(!log.contains(secret), "the password is in the log:\n{log}");
    }
}

#[test]
fn daemon_polls_and_downloads_through_an_authenticating_proxy() {
    let Some(w) = World::new() else { return };
    let Some(proxy) = Squid::start_or_skip("agent", PASSWORD) else {
        return;
    };
    w.write_config(&[&format!("proxy_uri: {}", proxy.url_with(PASSWORD_IN_URL))]);
    let req = small_deployment(&w);
    let _agent = w.agent();
    let id = w.deploy(req);
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
    assert!(w.path().join("dest/marked").is_file());
    let polls = proxy.requests(&emulator_target(&w));
    assert!(
        polls.iter().any(|l| l.contains(" agent ")),
        "no authenticated command-service request in squid's log:\n{}",
        proxy.access_log()
    );
    let gets = proxy.requests(&s3_target(&w));
    // The bundle comes as ranged GETs (206), or one plain GET (200).
    assert!(
        gets.iter()
            .any(|l| (l.contains("/206 ") || l.contains("/200 ")) && l.contains(" agent ")),
        "the bundle did not come through squid:\n{}",
        proxy.access_log()
    );
    assert_no_password(&w);
}

#[test]
fn wrong_credentials_name_the_proxy_and_never_the_password() {
    let Some(w) = World::new() else { return };
    let Some(proxy) = Squid::start_or_skip("agent", PASSWORD) else {
        return;
    };
    w.write_config(&[&format!("proxy_uri: {}", proxy.url_with("wrong-pass"))]);
    let _agent = w.agent();
    let wanted = format!(
        "proxy {} refused the credentials of user \"agent\"",
        proxy.host_port()
    );
    assert!(
        eventually(Duration::from_secs(60), || w.agent_log().contains(&wanted)),
        "no clear error naming the proxy:\n{}",
        w.agent_log()
    );
    assert!(
        w.agent_log().contains("PollHostCommand"),
        "{}",
        w.agent_log()
    );
    assert!(
        proxy.access_log().contains("TCP_DENIED/407"),
        "{}",
        proxy.access_log()
    );
    assert_no_password(&w);
}

#[test]
fn s3_through_a_refusing_proxy_fails_the_download_naming_it_while_commands_go_direct() {
    let Some(w) = World::new() else { return };
    let Some(proxy) = Squid::start_or_skip("agent", PASSWORD) else {
        return;
    };
    w.write_config(&[
        &format!("s3_proxy_uri: {}", proxy.url_with("wrong-pass")),
        "command_proxy_uri: none",
    ]);
    let req = small_deployment(&w);
    let _agent = w.agent();
    let id = w.deploy(req);
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Failed, "{}", w.agent_log());
    let cmds = w.commands(&id);
    let failed = cmds
        .iter()
        .find(|c| c.state == CommandState::Failed)
        .expect("a failed command");
    assert_eq!(failed.name, "DownloadBundle");
    let message = diagnostics(failed)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains(&format!("proxy {} refused", proxy.host_port()))
            && message.contains("s3_proxy_uri"),
        "{message}"
    );
    assert!(!message.contains("wrong-pass"), "{message}");
    assert!(
        proxy
            .requests(&s3_target(&w))
            .iter()
            .any(|l| l.contains("TCP_DENIED/407")),
        "{}",
        proxy.access_log()
    );
    assert!(
        proxy.requests(&emulator_target(&w)).is_empty(),
        "command_proxy_uri: none still used the proxy:\n{}",
        proxy.access_log()
    );
    assert_no_password(&w);
}

#[test]
fn command_service_through_its_own_proxy_while_s3_goes_direct() {
    let Some(w) = World::new() else { return };
    let Some(proxy) = Squid::start_or_skip("agent", PASSWORD) else {
        return;
    };
    w.write_config(&[
        &format!("proxy_uri: {}", proxy.url_with(PASSWORD_IN_URL)),
        "s3_proxy_uri: none",
    ]);
    let req = small_deployment(&w);
    let _agent = w.agent();
    let id = w.deploy(req);
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
    assert!(
        !proxy.requests(&emulator_target(&w)).is_empty(),
        "{}",
        proxy.access_log()
    );
    assert!(
        proxy.requests(&s3_target(&w)).is_empty(),
        "s3_proxy_uri: none still used the proxy:\n{}",
        proxy.access_log()
    );
}

#[test]
fn environment_proxy_is_used_and_no_proxy_bypasses_it() {
    let Some(w) = World::new() else { return };
    let Some(proxy) = Squid::start_or_skip("agent", PASSWORD) else {
        return;
    };
    // S3 by the name `localhost`, so NO_PROXY can exempt it while the emulator (127.0.0.1)
    // still goes through the proxy of the environment.
    let s3_by_name = w.moto.endpoint.replace("127.0.0.1", "localhost");
    w.write_config(&[&format!("s3_endpoint_override: {s3_by_name}")]);
    let req = small_deployment(&w);
    let _agent = w.agent_with(&[
        ("http_proxy", &proxy.url_with(PASSWORD_IN_URL)),
        ("NO_PROXY", "localhost"),
    ]);
    let id = w.deploy(req);
    let d = w.wait_done(&id, LONG);
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{}", w.agent_log());
    assert!(
        proxy
            .requests(&emulator_target(&w))
            .iter()
            .any(|l| l.contains(" agent ")),
        "http_proxy was not used:\n{}",
        proxy.access_log()
    );
    assert!(
        !proxy.access_log().contains("localhost"),
        "NO_PROXY did not exempt S3:\n{}",
        proxy.access_log()
    );
    assert_no_password(&w);
}
