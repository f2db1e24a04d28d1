//! HTTPS end to end on loopback: the client's rustls + ring stack verifies the server against
//! a CA from AWS_SSL_CA_BUNDLE, and refuses it without that CA. Environment proxies are
//! honoured (never by instance metadata), and a real squid with basic auth is reached by CONNECT. One test per binary section, because they set process environment variables.

mod control_support;
#[path = "support/skip.rs"]
mod skip;
#[path = "support/squid.rs"]
mod squid;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use codedeploy_agent::control::{ClientSettings, CommandClient, ControlError};
use control_support::{FakeServer, Reply, Request};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn settings(endpoint: &str) -> ClientSettings {
    ClientSettings {
        endpoint: endpoint.into(),
        region: "us-east-1".into(),
        signing_name: "codedeploy-commands".into(),
        target_prefix: "CodeDeployCommandService_v20141006".into(),
        agent_version: "test".into(),
        proxy: Default::default(),
        read_timeout: Duration::from_secs(30),
        credentials: SharedCredentialsProvider::new(Credentials::new("AK", "SK", None, None, "t")),
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Answers every HTTPS request with `{}`; counts TLS handshakes that completed.
async fn tls_server(dir: &Path) -> (u16, tokio::task::JoinHandle<()>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 16384];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn https_with_extra_ca_and_environment_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Loopback Test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "san.ext",
        ],
    );
    let (port, task) = tls_server(d).await;
    let url = format!("https://127.0.0.1:{port}");

    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "AWS_SSL_CA_DIRECTORY",
    ] {
        std::env::remove_var(var);
    }
    // Without the test CA the server is not trusted.
    std::env::remove_var("AWS_SSL_CA_BUNDLE");
    let e = CommandClient::new(settings(&url))
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    assert!(matches!(e, ControlError::Network { .. }), "{e:?}");

    std::env::set_var("AWS_SSL_CA_BUNDLE", d.join("ca.pem"));
    let client = CommandClient::new(settings(&url)).unwrap();
    assert_eq!(client.poll_host_command("h").await.unwrap(), None);

    std::env::set_var("AWS_SSL_CA_BUNDLE", d.join("missing.pem"));
    let e = CommandClient::new(settings(&url)).unwrap_err();
    assert!(e.to_string().starts_with("AWS_SSL_CA_BUNDLE:"), "{e}");
    std::env::remove_var("AWS_SSL_CA_BUNDLE");
    task.abort();

    // HTTP_PROXY applies to http:// endpoints; NO_PROXY exempts hosts.
    let proxy = FakeServer::start(|_: &Request| Reply::json(200, "{}")).await;
    let direct = FakeServer::start(|_: &Request| Reply::json(200, "{}")).await;
    std::env::set_var("HTTP_PROXY", proxy.url());
    std::env::set_var("NO_PROXY", "localhost");
    let via = CommandClient::new(settings("http://codedeploy-commands.example.invalid")).unwrap();
    assert_eq!(via.poll_host_command("h").await.unwrap(), None);
    assert_eq!(
        proxy.requests()[0].target,
        "http://codedeploy-commands.example.invalid/"
    );
    let exempt = CommandClient::new(settings(&format!(
        "http://localhost:{}",
        direct.addr.port()
    )))
    .unwrap();
    assert_eq!(exempt.poll_host_command("h").await.unwrap(), None);
    assert_eq!(direct.requests().len(), 1);
    assert_eq!(proxy.requests().len(), 1);
    // Instance metadata never goes through a proxy, HTTP_PROXY or not.
    let imds = FakeServer::start(|r: &Request| match r.target.as_str() {
        "/latest/api/token" => Reply::text(200, "tok"),
        "/latest/meta-data/services/partition" => Reply::text(200, "aws"),
        _ => Reply::text(404, ""),
    })
    .await;
    let md = codedeploy_agent::control::Imds::new(&imds.url(), false).unwrap();
    assert_eq!(md.partition().await.unwrap(), "aws");
    assert_eq!(imds.requests().len(), 2);
    assert_eq!(proxy.requests().len(), 1, "metadata went through the proxy");
    // An explicit proxy_uri wins over the environment.
    let mut s = settings("http://other.example.invalid");
    s.proxy = codedeploy_agent::proxy::Configured {
        key: "proxy_uri",
        setting: codedeploy_agent::proxy::Setting::parse(&direct.url()).unwrap(),
    };
    CommandClient::new(s)
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap();
    assert_eq!(direct.requests()[1].target, "http://other.example.invalid/");
    assert_eq!(proxy.requests().len(), 1);
    std::env::remove_var("HTTP_PROXY");
    std::env::remove_var("NO_PROXY");

    // Through a real proxy with basic auth, the way the real (https://) service and S3 are
    // reached: a CONNECT tunnel carrying the credentials; wrong ones give the clear error.
    let Some(proxy) = squid::Squid::start_or_skip("agent", "tunnel-pw") else {
        return;
    };
    std::env::set_var("AWS_SSL_CA_BUNDLE", d.join("ca.pem"));
    let (port, task) = tls_server(d).await;
    let url = format!("https://127.0.0.1:{port}");
    let mut s = settings(&url);
    s.proxy = configured(&proxy.url_with("tunnel-pw"));
    let client = CommandClient::new(s).unwrap();
    assert_eq!(client.poll_host_command("h").await.unwrap(), None);
    let tunnel = "TCP_TUNNEL/200 ";
    let connect = format!("CONNECT 127.0.0.1:{port} agent");
    // Squid writes the line when the tunnel closes: a bounded wait.
    let mut logged = false;
    for _ in 0..50 {
        let log = proxy.access_log();
        if log
            .lines()
            .any(|l| l.contains(tunnel) && l.contains(&connect))
        {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged, "no authenticated CONNECT:\n{}", proxy.access_log());

    let refused = format!(
        "proxy {} refused the credentials of user \"agent\"",
        proxy.host_port()
    );
    let mut s = settings(&url);
    s.proxy = configured(&proxy.url_with("bad-pw"));
    let e = CommandClient::new(s)
        .unwrap()
        .poll_host_command("h")
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, ControlError::Network { .. }), "{e:?}");
    assert!(m.contains(&refused) && !m.contains("bad-pw"), "{m}");

    // S3's own HTTP stack (aws-smithy-http-client) through the same refusing tunnel.
    let s3 = codedeploy_agent::transfer::S3Settings {
        region: "us-east-1".into(),
        endpoint_override: Some(url.clone()),
        use_fips: false,
        proxy: codedeploy_agent::proxy::Configured {
            key: "s3_proxy_uri",
            setting: codedeploy_agent::proxy::Setting::parse(&proxy.url_with("bad-pw")).unwrap(),
        },
        credentials: SharedCredentialsProvider::new(Credentials::new("AK", "SK", None, None, "t")),
    };
    let tuning = codedeploy_agent::transfer::Tuning {
        request_attempts: 1,
        ..Default::default()
    };
    let client = codedeploy_agent::transfer::s3_client(&s3, &tuning).unwrap();
    let e = client
        .get_object()
        .bucket("b")
        .key("k")
        .send()
        .await
        .unwrap_err();
    let m = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
    assert!(
        m.contains(&refused) && m.contains("s3_proxy_uri") && !m.contains("bad-pw"),
        "{m}"
    );
    task.abort();
    std::env::remove_var("AWS_SSL_CA_BUNDLE");
}

fn configured(url: &str) -> codedeploy_agent::proxy::Configured {
    codedeploy_agent::proxy::Configured {
        key: "command_proxy_uri",
        setting: codedeploy_agent::proxy::Setting::parse(url).unwrap(),
    }
}
