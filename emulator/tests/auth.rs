//! SigV4 and ownership checks over real HTTP, requests signed by the aws-sigv4 crate.

#[path = "support/common.rs"]
mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, SystemTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_signatures_pass_and_each_bad_kind_is_refused_as_aws_does() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(100, 60_000, dir.path());
    emu.register_host("host-a", "AKIDA", "secret-a").unwrap();
    emu.register_host("host-b", "AKIDB", "secret-b").unwrap();
    let h = Host::new(&emu, "host-a", "AKIDA", "secret-a");
    let input = json!({ "HostIdentifier": "host-a" });
    let code = |v: &serde_json::Value| {
        v["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap()
            .to_string()
    };

    // Good, under both target prefixes with their signing names.
    for prefix in [OLD, SECURE] {
        let s = Signing {
            target_prefix: prefix,
            ..h.signing.clone()
        };
        let (status, v) = h.raw(&s, "PollHostCommand", &input).await.unwrap();
        assert_eq!((status, v), (200, json!({})), "{prefix}");
    }

    let cases: Vec<(&str, Signing, u16, &str, &str)> = vec![
        (
            "wrong secret",
            Signing {
                secret_key: "nope".into(),
                ..h.signing.clone()
            },
            403,
            "InvalidSignatureException",
            "does not match",
        ),
        (
            "unknown key",
            Signing {
                access_key: "AKIDX".into(),
                ..h.signing.clone()
            },
            403,
            "UnrecognizedClientException",
            "security token included in the request is invalid",
        ),
        (
            "stale date",
            Signing {
                time: SystemTime::now() - Duration::from_secs(600),
                ..h.signing.clone()
            },
            403,
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            "future date",
            Signing {
                time: SystemTime::now() + Duration::from_secs(600),
                ..h.signing.clone()
            },
            403,
            "InvalidSignatureException",
            "not yet current",
        ),
        (
            "wrong service",
            Signing {
                service: Some("codedeploy-commands-secure".into()),
                ..h.signing.clone()
            },
            403,
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'codedeploy-commands'",
        ),
        (
            "secure prefix, old name",
            Signing {
                target_prefix: SECURE,
                service: Some("codedeploy-commands".into()),
                ..h.signing.clone()
            },
            403,
            "InvalidSignatureException",
            "'codedeploy-commands-secure'",
        ),
        (
            "wrong region",
            Signing {
                region: "eu-west-1".into(),
                ..h.signing.clone()
            },
            403,
            "InvalidSignatureException",
            "valid region",
        ),
    ];
    for (what, s, status, want, text) in cases {
        let (got, v) = h.raw(&s, "PollHostCommand", &input).await.unwrap();
        assert_eq!(got, status, "{what}: {v}");
        assert_eq!(code(&v), want, "{what}: {v}");
        assert!(v["message"].as_str().unwrap().contains(text), "{what}: {v}");
    }

    // Another host's identifier with host-a's credentials.
    let (status, v) = h
        .call("PollHostCommand", &json!({ "HostIdentifier": "host-b" }))
        .await;
    assert_eq!((status, code(&v).as_str()), (400, "ClientException"), "{v}");
    // Unknown operation.
    let (status, v) = h.call("DeleteEverything", &input).await;
    assert_eq!(
        (status, code(&v).as_str()),
        (400, "UnknownOperationException"),
        "{v}"
    );
    // Missing required member.
    let (status, v) = h.call("PollHostCommand", &json!({})).await;
    assert_eq!((status, code(&v).as_str()), (400, "ClientException"), "{v}");

    // No signature at all.
    let resp = h
        .http
        .request(
            http::Request::post(format!("{}/", emu.endpoint()))
                .header(
                    "x-amz-target",
                    "CodeDeployCommandService_v20141006.PollHostCommand",
                )
                .body(http_body_util::Full::new(bytes::Bytes::from("{}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    emu.shutdown();
}
