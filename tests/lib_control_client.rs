//! The host-command client against a loopback fake service: protocol headers, SigV4,
//! bodies, error parsing, timeouts, proxy and the PutHostCommandComplete retry.

#[path = "support/control.rs"]
mod control_support;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use codedeploy_agent::control::{
    complete_until_accepted, Backoff, ClientSettings, CommandClient, CommandStatus, ControlError,
    Envelope, SessionFileCredentials,
};
use control_support::{FakeServer, Reply, Request};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn settings(endpoint: &str) -> ClientSettings {
    ClientSettings {
        endpoint: endpoint.into(),
        region: "us-east-1".into(),
        signing_name: "codedeploy-commands".into(),
        target_prefix: "CodeDeployCommandService_v20141006".into(),
        agent_version: "OFFICIAL_1.8.1-rs_0.1.0".into(),
        proxy: Default::default(),
        read_timeout: Duration::from_secs(80),
        credentials: SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )),
    }
}

fn via(url: &str) -> codedeploy_agent::proxy::Configured {
    codedeploy_agent::proxy::Configured {
        key: "command_proxy_uri",
        setting: codedeploy_agent::proxy::Setting::parse(url).unwrap(),
    }
}

fn op(r: &Request) -> String {
    r.header("x-amz-target")
        .unwrap_or_default()
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A well-behaved service for the four operations.
fn service(r: &Request) -> Reply {
    match op(r).as_str() {
        "PollHostCommand" => Reply::json(
            200,
            r#"{"HostCommand":{"HostCommandIdentifier":"hc-1","HostIdentifier":"arn:aws:ec2:us-east-1:1:instance/i-1","DeploymentExecutionId":"a/b/c/d","CommandName":"Install","Nonce":42}}"#,
        ),
        "GetDeploymentSpecification" => Reply::json(
            200,
            r#"{"DeploymentSystem":"CodeDeploy","DeploymentSpecification":{"GenericEnvelope":{"Format":"PKCS7/JSON","Payload":"P"}}}"#,
        ),
        "PutHostCommandAcknowledgement" => Reply::json(200, r#"{"CommandStatus":"InProgress"}"#),
        "PutHostCommandComplete" => Reply::json(200, "{}"),
        _ => Reply::json(400, r#"{"__type":"UnknownOperationException"}"#),
    }
}

#[tokio::test]
async fn requests_carry_protocol_headers_and_sigv4() {
    let server = FakeServer::start(service).await;
    let client = CommandClient::new(settings(&server.url())).unwrap();
    let cmd = client
        .poll_host_command("arn:aws:ec2:us-east-1:1:instance/i-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cmd.host_command_identifier, "hc-1");
    assert_eq!(cmd.deployment_execution_id, "a/b/c/d");
    assert_eq!(cmd.command_name, "Install");
    assert_eq!(cmd.nonce, Some(42));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/"));
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(
        r.header("x-amz-target"),
        Some("CodeDeployCommandService_v20141006.PollHostCommand")
    );
    assert_eq!(
        r.header("x-amz-codedeploy-agent-version"),
        Some("OFFICIAL_1.8.1-rs_0.1.0")
    );
    assert!(r.header("x-amz-date").is_some());
    assert_eq!(r.header("x-amz-security-token"), None);
    let auth = r.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(
        auth.contains("/us-east-1/codedeploy-commands/aws4_request"),
        "{auth}"
    );
    for h in [
        "content-type",
        "host",
        "x-amz-codedeploy-agent-version",
        "x-amz-date",
        "x-amz-target",
    ] {
        assert!(auth.contains(h), "{h} not signed: {auth}");
    }
    assert_eq!(
        r.json(),
        serde_json::json!({"HostIdentifier": "arn:aws:ec2:us-east-1:1:instance/i-1"})
    );
}

#[tokio::test]
async fn secure_model_and_session_token() {
    let server = FakeServer::start(service).await;
    let mut s = settings(&server.url());
    s.signing_name = "codedeploy-commands-secure".into();
    s.target_prefix = "CodeDeployCommandService".into();
    s.region = "eu-west-1".into();
    s.credentials = SharedCredentialsProvider::new(Credentials::new(
        "ASIA1",
        "s",
        Some("TOKEN-1".into()),
        None,
        "t",
    ));
    let client = CommandClient::new(s).unwrap();
    let spec = client
        .get_deployment_specification("a/b/c/d", "arn:h")
        .await
        .unwrap();
    assert_eq!(spec.deployment_system.as_deref(), Some("CodeDeploy"));
    assert_eq!(spec.generic_envelope.unwrap().payload, "P");
    let r = &server.requests()[0];
    assert_eq!(
        r.header("x-amz-target"),
        Some("CodeDeployCommandService.GetDeploymentSpecification")
    );
    assert_eq!(r.header("x-amz-security-token"), Some("TOKEN-1"));
    let auth = r.header("authorization").unwrap();
    assert!(
        auth.contains("ASIA1/")
            && auth.contains("/eu-west-1/codedeploy-commands-secure/aws4_request"),
        "{auth}"
    );
    assert!(auth.contains("x-amz-security-token"), "{auth}");
    assert_eq!(
        r.json(),
        serde_json::json!({"DeploymentExecutionId": "a/b/c/d", "HostIdentifier": "arn:h"})
    );
}

#[tokio::test]
async fn acknowledge_and_complete_bodies() {
    let server = FakeServer::start(service).await;
    let client = CommandClient::new(settings(&server.url())).unwrap();
    let noop = Envelope {
        format: "JSON".into(),
        payload: r#"{"IsCommandNoop":false}"#.into(),
    };
    let status = client
        .put_host_command_acknowledgement("hc-1", Some(&noop))
        .await
        .unwrap();
    assert_eq!(status, Some(CommandStatus::InProgress));
    let diag = Envelope {
        format: "JSON".into(),
        payload: r#"{"error_code":0,"script_name":"","message":"Succeeded: ","log":""}"#.into(),
    };
    client
        .put_host_command_complete("hc-1", CommandStatus::Succeeded, Some(&diag))
        .await
        .unwrap();
    client
        .put_host_command_complete("hc-2", CommandStatus::Failed, None)
        .await
        .unwrap();
    let reqs = server.requests();
    assert_eq!(
        reqs[0].json(),
        serde_json::json!({"HostCommandIdentifier": "hc-1", "Diagnostics": {"Format": "JSON", "Payload": "{\"IsCommandNoop\":false}"}})
    );
    assert_eq!(reqs[1].json()["CommandStatus"], "Succeeded");
    assert_eq!(
        reqs[1].json()["Diagnostics"]["Payload"],
        diag.payload.as_str()
    );
    assert_eq!(
        reqs[2].json(),
        serde_json::json!({"HostCommandIdentifier": "hc-2", "CommandStatus": "Failed"})
    );
}

#[tokio::test]
async fn idle_poll_is_none() {
    let server = FakeServer::start(|_: &Request| Reply::json(200, "{}")).await;
    let client = CommandClient::new(settings(&server.url())).unwrap();
    assert_eq!(client.poll_host_command("h").await.unwrap(), None);
}

#[tokio::test]
async fn error_answers_are_classified() {
    let server = FakeServer::start(|r: &Request| match r.header("x-amz-codedeploy-agent-version").unwrap_or_default() {
        "hash" => Reply::json(400, r#"{"__type":"com.amazonaws.codedeploy.commands#ClientException","message":"bad host"}"#),
        "plain" => Reply::json(400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        "header" => Reply::json(403, "{}").with_header("x-amzn-ErrorType", "AccessDeniedException:http://internal.amazon.com/coral/"),
        "server" => Reply::json(500, r#"{"__type":"ServerException","message":"oops"}"#),
        "html" => Reply::text(502, "<html>Bad Gateway</html>"),
        _ => Reply::json(429, "{}"),
    })
    .await;
    let call = |version: &str| {
        let mut s = settings(&server.url());
        s.agent_version = version.into();
        async move {
            CommandClient::new(s)
                .unwrap()
                .poll_host_command("h")
                .await
                .unwrap_err()
        }
    };
    let e = call("hash").await;
    assert!(
        matches!(&e, ControlError::Client { status: 400, type_, message, .. } if type_ == "ClientException" && message == "bad host"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "PollHostCommand: request refused (HTTP 400, ClientException): bad host"
    );
    let e = call("plain").await;
    assert!(e.is_throttling() && e.is_retryable(), "{e:?}");
    let e = call("header").await;
    assert_eq!(e.error_type(), Some("AccessDeniedException"));
    assert!(!e.is_retryable());
    let e = call("server").await;
    assert!(
        matches!(e, ControlError::Server { status: 500, .. }) && e.is_retryable(),
        "{e:?}"
    );
    let e = call("html").await;
    assert!(
        matches!(&e, ControlError::Server { status: 502, message, .. } if message.contains("Bad Gateway")),
        "{e:?}"
    );
    let e = call("429").await;
    assert!(e.is_throttling(), "{e:?}");
}

#[tokio::test]
async fn read_timeout_and_refused_connections_are_network_errors() {
    let server = FakeServer::start(|_: &Request| {
        let mut r = Reply::json(200, "{}");
        r.delay = Some(Duration::from_secs(30));
        r
    })
    .await;
    let mut s = settings(&server.url());
    s.read_timeout = Duration::from_millis(300);
    let e = CommandClient::new(s)
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ControlError::Network { .. }) && e.is_retryable(),
        "{e:?}"
    );
    drop(server);

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = CommandClient::new(settings(&format!("http://127.0.0.1:{port}")))
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    assert!(matches!(e, ControlError::Network { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("PollHostCommand: network error"),
        "{e}"
    );
}

/// An answer longer than the agent reads (8 MiB) is refused, whether its Content-Length says so
/// or it streams without one (chunked), and the client stops reading it.
#[tokio::test]
async fn oversized_answers_are_refused() {
    let limit = codedeploy_agent::control::MAX_SERVICE_ANSWER;
    let big = "x".repeat(limit + 1);
    let server = FakeServer::start(move |_: &Request| Reply::json(200, &big)).await;
    let e = CommandClient::new(settings(&server.url()))
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    assert!(matches!(e, ControlError::Decode { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with("PollHostCommand: cannot decode the answer: HTTP 200: the answer is longer than the 8388608 bytes the agent reads"),
        "{text}"
    );
    assert!(
        text.contains(&format!("at least {} bytes", limit + 1)),
        "{text}"
    );

    // Chunked, without end: the client must stop by itself.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU32::new(0));
    let counter = sent.clone();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut sock, _) = listener.accept().unwrap();
        // Bounded: a client that stopped reading without closing fails the test below.
        sock.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 8192];
        let _ = sock.read(&mut buf);
        let _ = sock.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, "y".repeat(64 << 10));
        // Bounded: 4x the limit at most, then the server gives up.
        for _ in 0..(4 * limit / (64 << 10)) {
            if let Err(e) = sock.write_all(chunk.as_bytes()) {
                return Some(e.kind());
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
        None
    });
    let e = CommandClient::new(settings(&format!("http://127.0.0.1:{port}")))
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    assert!(matches!(e, ControlError::Decode { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("the answer is longer than the 8388608 bytes the agent reads"),
        "{e}"
    );
    // Joined off the runtime's thread: the client's connection task must run to close.
    let ended = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    let chunks = sent.load(Ordering::SeqCst);
    // The client closed the connection (the server's write broke), rather than reading on
    // (all sent) or leaving it open unread (the write timed out).
    assert!(
        matches!(
            ended,
            Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
        ),
        "{ended:?} after {chunks} chunks of 64 KiB"
    );
}

#[tokio::test]
async fn missing_credentials_are_reported_before_sending() {
    let server = FakeServer::start(service).await;
    let mut s = settings(&server.url());
    s.credentials =
        SharedCredentialsProvider::new(SessionFileCredentials::new("/nonexistent/credentials"));
    let e = CommandClient::new(s)
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    assert!(matches!(e, ControlError::Credentials { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/credentials"), "{e}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn proxy_uri_with_credentials() {
    let proxy = FakeServer::start(service).await;
    let mut s = settings("http://codedeploy-commands.us-east-1.example.invalid");
    // Percent-encoded in the URL, sent decoded: the password is "s3cret".
    s.proxy = via(&format!("http://agent:s3%63ret@{}", proxy.addr));
    let client = CommandClient::new(s).unwrap();
    assert!(client.poll_host_command("h").await.unwrap().is_some());
    let r = &proxy.requests()[0];
    assert_eq!(
        r.target,
        "http://codedeploy-commands.us-east-1.example.invalid/"
    );
    // base64("agent:s3cret")
    assert_eq!(
        r.header("proxy-authorization"),
        Some("Basic YWdlbnQ6czNjcmV0")
    );
    assert!(r
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256"));
    // A 407 from the proxy (forwarded http:// request) names it and the key, not the password.
    let refusing =
        FakeServer::start(|_: &Request| Reply::json(407, "proxy authentication required")).await;
    let mut s = settings("http://codedeploy-commands.us-east-1.example.invalid");
    s.proxy = via(&format!("http://agent:s3cret@{}", refusing.addr));
    let e = CommandClient::new(s)
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, ControlError::Network { .. }), "{e:?}");
    assert!(
        m.contains(&format!(
            "proxy {} refused the credentials of user \"agent\"",
            refusing.addr
        )) && m.contains("command_proxy_uri")
            && !m.contains("s3cret"),
        "{m}"
    );
}

#[tokio::test]
async fn complete_is_retried_until_taken_and_sent_once() {
    let failures = Arc::new(AtomicU32::new(0));
    let f = failures.clone();
    let server = FakeServer::start(move |_: &Request| match f.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::json(503, r#"{"__type":"ServerException","message":"busy"}"#),
        1 => Reply::json(
            400,
            r#"{"__type":"ThrottlingException","message":"slow down"}"#,
        ),
        _ => Reply::json(200, "{}"),
    })
    .await;
    let client = CommandClient::new(settings(&server.url())).unwrap();
    let backoff = Backoff::with_unit(Duration::from_millis(1));
    complete_until_accepted(
        &client,
        "hc-9",
        CommandStatus::Failed,
        None,
        &backoff,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "two refused, one taken");
    assert!(reqs
        .iter()
        .all(|r| r.json()["HostCommandIdentifier"] == "hc-9"));
    assert_eq!(backoff.failures(), 0, "success resets the shared backoff");
}

#[tokio::test]
async fn complete_gives_up_on_client_errors_and_after_max_wait() {
    let server = FakeServer::start(|r: &Request| {
        if r.json()["HostCommandIdentifier"] == "denied" {
            Reply::json(400, r#"{"__type":"AccessDeniedException","message":"no"}"#)
        } else {
            Reply::json(500, "{}")
        }
    })
    .await;
    let client = CommandClient::new(settings(&server.url())).unwrap();
    let backoff = Backoff::with_unit(Duration::from_millis(1));
    let e = complete_until_accepted(
        &client,
        "denied",
        CommandStatus::Failed,
        None,
        &backoff,
        Duration::from_secs(60),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), Some("AccessDeniedException"));
    assert_eq!(server.requests().len(), 1);
    let e = complete_until_accepted(
        &client,
        "busy",
        CommandStatus::Failed,
        None,
        &backoff,
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ControlError::Server { .. }), "{e:?}");
    let sent = server.requests().len() - 1;
    assert!(sent >= 2, "retried at least once, sent {sent}");
    assert!(
        backoff.failures() > 0,
        "failures are shared with the poll loop"
    );
}

#[test]
fn client_and_futures_can_move_between_workers() {
    fn send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let client = CommandClient::new(settings("http://127.0.0.1:9")).unwrap();
    let backoff = Backoff::new();
    send_sync(&client);
    send_sync(&backoff);
    // Futures are only built, never polled: nothing is sent.
    send(client.poll_host_command("h"));
    send(client.get_deployment_specification("a/b/c/d", "h"));
    send(client.put_host_command_acknowledgement("id", None));
    send(client.put_host_command_complete("id", CommandStatus::Succeeded, None));
    send(complete_until_accepted(
        &client,
        "id",
        CommandStatus::Failed,
        None,
        &backoff,
        Duration::from_secs(1),
    ));
    let cfg = codedeploy_agent::config::Config::default();
    send(codedeploy_agent::control::resolve_identity(&cfg, None));
}
