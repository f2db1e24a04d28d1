//! `deploy-local` from an `s3://` location, black box against a real moto server with SigV4
//! on: the local run signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and AWS_REGION, and
//! reaches S3 through `s3_endpoint_override` (the one fetcher factory the daemon uses too);
//! a wrong secret is refused by S3 (its error code shown) and fails DownloadBundle. Skips with a message where moto
//! is not installed.
#[path = "support/common.rs"]
mod common;
#[path = "support/moto.rs"]
mod moto;

use aws_sdk_s3::primitives::ByteStream;
use codedeploy_agent::transfer::{s3_client, Tuning};
use common::*;
use std::fs;
use std::process::{Command, Output};

fn put(moto: &moto::Moto, key: &str, body: Vec<u8>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = s3_client(&moto.settings(), &Tuning::default()).unwrap();
    rt.block_on(
        client
            .put_object()
            .bucket(&moto.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send(),
    )
    .unwrap();
}

/// deploy-local of `location` with the sandbox's configuration, signing with `secret`.
fn deploy(sb: &Sandbox, moto: &moto::Moto, location: &str, secret: &str) -> Output {
    Command::new(BIN)
        .args(["deploy-local", "-c"])
        .arg(sb.config())
        .args(["-l", location, "-t", "tgz", "-e", "DownloadBundle,Install"])
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", moto::REGION)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .expect("run codedeploy-agent")
}

#[test]
fn deploy_local_downloads_from_s3_with_environment_credentials() {
    let Some(moto) = moto::Moto::start_or_skip() else {
        return;
    };
    let sb = Sandbox::new();
    let dest = sb.path().join("installed");
    let src = sb.path().join("src");
    write(
        &src.join("appspec.yml"),
        &format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: hello.txt\n    destination: {}\n",
            dest.display()
        ),
        false,
    );
    write(&src.join("hello.txt"), "from s3\n", false);
    let tgz = sb.path().join("app.tgz");
    make_tgz(&src, &tgz);
    put(&moto, "app.tgz", fs::read(&tgz).unwrap());
    let mut cfg = fs::read_to_string(sb.config()).unwrap();
    cfg.push_str(&format!(
        ":s3_endpoint_override: '{}'\n:on_premises_config_file: '{}'\n",
        moto.endpoint,
        sb.path().join("no-onprem.yml").display()
    ));
    fs::write(sb.config(), cfg).unwrap();
    let location = format!("s3://{}/app.tgz", moto.bucket);

    let out = deploy(&sb, &moto, &location, &moto.secret_access_key);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(dest.join("hello.txt")).unwrap(),
        "from s3\n"
    );

    let refused = deploy(&sb, &moto, &location, "not-the-secret");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let shown = text(&refused);
    assert!(
        !moto.wrong_secret_refused.is_empty(),
        "moto names its refusal"
    );
    assert!(
        shown.contains("Deployment failed in event DownloadBundle")
            && shown.contains(&moto.wrong_secret_refused),
        "{shown}"
    );
}
