//! Instance metadata and identity against a loopback fake IMDS: v2 tokens, 401 refresh, v1
//! fall-back, disable_imds_v1, the identity document, role credentials; and the on-premises
//! identities with a session credentials file that changes under the running agent.

#[path = "support/control.rs"]
mod control_support;

use aws_credential_types::provider::ProvideCredentials;
use codedeploy_agent::config::onprem::OnPremises;
use codedeploy_agent::config::Config;
use codedeploy_agent::control::{resolve_identity, resolve_identity_with, EnvOverrides, Imds};
use control_support::{FakeServer, Reply, Request};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    v2: AtomicBool,
    v1: AtomicBool,
    issued: AtomicU32,
    valid: Mutex<Option<String>>,
    expiration: Mutex<String>,
}

fn imds_state(v2: bool, v1: bool) -> Arc<State> {
    let s = State::default();
    s.v2.store(v2, Ordering::SeqCst);
    s.v1.store(v1, Ordering::SeqCst);
    *s.expiration.lock().unwrap() = "2099-01-01T00:00:00Z".into();
    Arc::new(s)
}

fn answer(s: &State, r: &Request) -> Reply {
    if r.method == "PUT" && r.target == "/latest/api/token" {
        if !s.v2.load(Ordering::SeqCst) {
            return Reply::text(404, "");
        }
        if r.header("x-aws-ec2-metadata-token-ttl-seconds") != Some("21600") {
            return Reply::text(400, "missing ttl");
        }
        let n = s.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("tok-{n}");
        *s.valid.lock().unwrap() = Some(token.clone());
        return Reply::text(200, &token);
    }
    match r.header("x-aws-ec2-metadata-token") {
        Some(t) if s.valid.lock().unwrap().as_deref() != Some(t) => return Reply::text(401, ""),
        None if !s.v1.load(Ordering::SeqCst) => return Reply::text(401, ""),
        _ => {}
    }
    match r.target.as_str() {
        "/latest/meta-data" => Reply::text(200, "ami-id\ninstance-id\n"),
        "/latest/dynamic/instance-identity/document" => Reply::text(
            200,
            "\n  {\"accountId\":\"123456789012\",\"instanceId\":\"i-0abc\",\"region\":\"us-west-2 \"}\n\n",
        ),
        "/latest/meta-data/services/partition" => Reply::text(200, "aws"),
        "/latest/meta-data/services/domain" => Reply::text(200, "amazonaws.com\n"),
        "/latest/meta-data/iam/security-credentials/" => Reply::text(200, "my-role\n"),
        "/latest/meta-data/iam/security-credentials/my-role" => Reply::text(
            200,
            &format!(
                r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAROLE","SecretAccessKey":"rs","Token":"role-token","Expiration":"{}"}}"#,
                s.expiration.lock().unwrap()
            ),
        ),
        _ => Reply::text(404, ""),
    }
}

async fn fake(state: &Arc<State>) -> FakeServer {
    let s = state.clone();
    FakeServer::start(move |r: &Request| answer(&s, r)).await
}

fn imds(server: &FakeServer, disable_v1: bool) -> Imds {
    Imds::new(&server.url(), disable_v1)
        .unwrap()
        .with_retry_unit(Duration::from_millis(1))
}

#[tokio::test]
async fn v2_token_is_fetched_once_and_sent() {
    let state = imds_state(true, false);
    let server = fake(&state).await;
    let m = imds(&server, true);
    let doc = m.identity_document().await.unwrap();
    assert_eq!(
        (
            doc.region.as_str(),
            doc.account_id.as_str(),
            doc.instance_id.as_str()
        ),
        ("us-west-2", "123456789012", "i-0abc")
    );
    assert_eq!(m.domain().await.unwrap(), "amazonaws.com");
    assert!(m.available().await);
    let reqs = server.requests();
    assert_eq!(
        reqs.iter().filter(|r| r.method == "PUT").count(),
        1,
        "token cached"
    );
    assert!(reqs
        .iter()
        .filter(|r| r.method == "GET")
        .all(|r| r.header("x-aws-ec2-metadata-token") == Some("tok-1")));
}

#[tokio::test]
async fn revoked_token_is_replaced_after_401() {
    let state = imds_state(true, false);
    let server = fake(&state).await;
    let m = imds(&server, true);
    assert_eq!(m.partition().await.unwrap(), "aws");
    *state.valid.lock().unwrap() = Some("revoked-by-test".into());
    assert_eq!(m.partition().await.unwrap(), "aws");
    assert_eq!(state.issued.load(Ordering::SeqCst), 2);
    let last = server.requests().pop().unwrap();
    assert_eq!(last.header("x-aws-ec2-metadata-token"), Some("tok-2"));
}

#[tokio::test]
async fn v1_fallback_and_its_refusal() {
    let state = imds_state(false, true);
    let server = fake(&state).await;
    let doc = imds(&server, false).identity_document().await.unwrap();
    assert_eq!(doc.instance_id, "i-0abc");
    let gets: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].header("x-aws-ec2-metadata-token"), None);

    let before = server.requests().len();
    let e = imds(&server, true).identity_document().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("HTTP error from metadata service to get imdsv2 token."),
        "{e}"
    );
    let after: Vec<_> = server.requests().into_iter().skip(before).collect();
    assert!(
        !after.is_empty() && after.iter().all(|r| r.method == "PUT"),
        "no IMDSv1 read when disabled"
    );
}

/// A metadata answer longer than the agent reads (64 KiB) is refused, once, naming the path.
#[tokio::test]
async fn oversized_metadata_is_refused() {
    let limit = codedeploy_agent::control::MAX_METADATA_ANSWER;
    let big = format!("{{\"region\":\"{}\"}}", "x".repeat(limit));
    let len = big.len();
    let server = FakeServer::start(move |_: &Request| Reply::text(200, &big)).await;
    let m = Imds::new(&server.url(), false)
        .unwrap()
        .with_retry_unit(Duration::from_millis(1));
    let e = m.identity_document().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "instance metadata /latest/dynamic/instance-identity/document: the answer is longer than the {limit} bytes the agent reads (at least {len} bytes); refused"
        )
    );
    let gets = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 1, "not retried");
}

#[tokio::test]
async fn unreachable_metadata_is_a_bounded_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m = Imds::new(&format!("http://127.0.0.1:{port}"), false)
        .unwrap()
        .with_retry_unit(Duration::from_millis(1));
    assert!(!m.available().await);
    let e = m.identity_document().await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("instance metadata /latest/dynamic/instance-identity/document"),
        "{e}"
    );
}

#[tokio::test]
async fn ec2_identity_and_role_credentials() {
    let state = imds_state(true, true);
    let server = fake(&state).await;
    let m = imds(&server, false);
    let id = resolve_identity_with(&Config::default(), None, &m, &EnvOverrides::default())
        .await
        .unwrap();
    assert_eq!(
        id.host_identifier,
        "arn:aws:ec2:us-west-2:123456789012:instance/i-0abc"
    );
    assert_eq!(id.region, "us-west-2");
    assert_eq!(id.imds_domain.as_deref(), Some("amazonaws.com"));
    assert!(
        id.source.contains("EC2 instance profile role my-role"),
        "{}",
        id.source
    );
    let c = id.credentials.provide_credentials().await.unwrap();
    assert_eq!(
        (c.access_key_id(), c.session_token()),
        ("ASIAROLE", Some("role-token"))
    );
    let fetches = || {
        server
            .requests()
            .iter()
            .filter(|r| r.target == "/latest/meta-data/iam/security-credentials/my-role")
            .count()
    };
    id.credentials.provide_credentials().await.unwrap();
    assert_eq!(fetches(), 1, "valid credentials are cached");
    // Credentials about to expire are fetched again on the next use.
    *state.expiration.lock().unwrap() = "2020-01-01T00:00:00Z".into();
    let id = resolve_identity_with(
        &Config::default(),
        Some(&OnPremises::Inert),
        &m,
        &EnvOverrides::default(),
    )
    .await
    .unwrap();
    id.credentials.provide_credentials().await.unwrap();
    id.credentials.provide_credentials().await.unwrap();
    assert_eq!(fetches(), 3);
    // Environment overrides win (docs/behaviour/configuration.md#instance-metadata).
    let env = EnvOverrides {
        region: Some("eu-central-1".into()),
        host_identifier: Some("arn:custom".into()),
    };
    let id = resolve_identity_with(&Config::default(), None, &m, &env)
        .await
        .unwrap();
    assert_eq!(
        (id.region.as_str(), id.host_identifier.as_str()),
        ("eu-central-1", "arn:custom")
    );
}

#[tokio::test]
async fn metadata_endpoint_follows_the_environment() {
    let state = imds_state(true, false);
    let server = fake(&state).await;
    // Only this test in this binary reads these variables.
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url());
    std::env::remove_var("AWS_REGION");
    std::env::remove_var("AWS_HOST_IDENTIFIER");
    let cfg = Config {
        disable_imds_v1: true,
        ..Config::default()
    };
    let id = resolve_identity(&cfg, None).await.unwrap();
    assert_eq!(
        id.host_identifier,
        "arn:aws:ec2:us-west-2:123456789012:instance/i-0abc"
    );
    assert!(id.source.contains(&server.url()), "{}", id.source);
}

#[tokio::test]
async fn on_premises_static_keys() {
    let state = imds_state(true, true);
    let server = fake(&state).await;
    let op = OnPremises::IamUser {
        region: "us-east-1".into(),
        host_identifier: "arn:aws:iam::1:user/host".into(),
        access_key_id: "AKIAUSER".into(),
        secret_access_key: "sk".into(),
    };
    let id = resolve_identity_with(
        &Config::default(),
        Some(&op),
        &imds(&server, false),
        &EnvOverrides::default(),
    )
    .await
    .unwrap();
    assert_eq!(id.host_identifier, "arn:aws:iam::1:user/host");
    assert_eq!(id.region, "us-east-1");
    assert!(
        id.source.starts_with("on-premises IAM user"),
        "{}",
        id.source
    );
    assert_eq!(
        id.credentials
            .provide_credentials()
            .await
            .unwrap()
            .access_key_id(),
        "AKIAUSER"
    );
    assert!(
        server.requests().is_empty(),
        "on-premises hosts do not ask instance metadata"
    );
}

#[tokio::test]
async fn session_file_is_reread_when_it_changes() {
    let state = imds_state(true, true);
    let server = fake(&state).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let write = |ak: &str, tok: &str| {
        let tmp = dir.path().join("credentials.tmp");
        std::fs::write(&tmp, format!("[default]\naws_access_key_id = {ak}\naws_secret_access_key = secret\naws_session_token = {tok}\n")).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    let op = OnPremises::IamSession {
        region: "us-east-1".into(),
        host_identifier: "arn:aws:sts::1:assumed-role/r/host".into(),
        credentials_file: file.clone(),
    };
    let m = imds(&server, false);
    let e = resolve_identity_with(&Config::default(), Some(&op), &m, &EnvOverrides::default())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "Failed to load credentials from path {}",
            file.display()
        )),
        "{e}"
    );

    write("ASIAFIRST", "t1");
    let id = resolve_identity_with(&Config::default(), Some(&op), &m, &EnvOverrides::default())
        .await
        .unwrap();
    assert!(
        id.source.contains(&file.display().to_string()),
        "{}",
        id.source
    );
    let c = id.credentials.provide_credentials().await.unwrap();
    assert_eq!(
        (c.access_key_id(), c.session_token()),
        ("ASIAFIRST", Some("t1"))
    );
    write("ASIASECOND", "t2-longer");
    let c = id.credentials.provide_credentials().await.unwrap();
    assert_eq!(
        (c.access_key_id(), c.session_token()),
        ("ASIASECOND", Some("t2-longer"))
    );
    // A broken rewrite keeps the keys read before (still within their lifetime).
    std::fs::write(&file, "[default]\naws_access_key_id = half-writ").unwrap();
    let c = id.credentials.provide_credentials().await.unwrap();
    assert_eq!(c.access_key_id(), "ASIASECOND");
    write("ASIATHIRD", "t3");
    assert_eq!(
        id.credentials
            .provide_credentials()
            .await
            .unwrap()
            .access_key_id(),
        "ASIATHIRD"
    );
}
