//! GitHub tarball and zipball downloads against a loopback HTTP server: the token header, a
//! redirect, the lone top-level directory GitHub wraps archives in, retried error statuses and
//! the official message once they are exhausted; a proxy refusing its credentials is named.

mod bundle_support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bundle_support::{gzip, opts, tar_bytes, zip_bytes, Raw, Z};
use codedeploy_agent::deployspec::{BundleType, Revision};
use codedeploy_agent::transfer::{Fetcher, GitHubSettings, TransferError, Tuning};

/// One canned response.
struct Reply {
    status: &'static str,
    headers: Vec<String>,
    body: Vec<u8>,
}

fn ok(body: Vec<u8>) -> Reply {
    Reply {
        status: "200 OK",
        headers: vec![],
        body,
    }
}

/// What the server saw: request line and the Authorization header.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    auth: Option<String>,
}

/// Answers each connection with the next canned reply (Connection: close), records requests.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let mut replies: VecDeque<Reply> = replies.into();
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(req) = read_request(&conn) else {
                    continue;
                };
                seen2.lock().unwrap().push(req);
                let reply = replies.pop_front().unwrap_or(Reply {
                    status: "599 Unexpected",
                    headers: vec![],
                    body: vec![],
                });
                let mut head = format!(
                    "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for h in &reply.headers {
                    head.push_str(h);
                    head.push_str("\r\n");
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&reply.body);
            }
        });
        Server {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &TcpStream) -> Option<Seen> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut auth = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                auth = Some(value.trim().to_string());
            }
        }
    }
    Some(Seen {
        line: line.trim().to_string(),
        auth,
    })
}

fn fetcher(server: &Server, delays: usize) -> Fetcher {
    let github = GitHubSettings {
        api_base: server.base(),
        token: None,
        proxy: Default::default(),
    };
    let tuning = Tuning {
        github_delays: vec![Duration::from_millis(10); delays],
        ..Tuning::default()
    };
    Fetcher::with_tuning(None, github, None, tuning).unwrap()
}

fn github(kind: BundleType) -> Revision {
    Revision::GitHub {
        account: "octo".into(),
        repository: "app".into(),
        commit: "0123abcd".into(),
        bundle_type: kind,
    }
}

#[test]
fn tarball_with_token_through_a_redirect() {
    let tarball = gzip(&tar_bytes(&[
        Raw::dir("octo-app-0123abcd/"),
        Raw::file(
            "octo-app-0123abcd/appspec.yml",
            b"version: 0.0\nos: linux\n",
        ),
        Raw::file("octo-app-0123abcd/index.html", b"hello"),
    ]));
    let server = Server::start(vec![
        Reply {
            status: "302 Found",
            headers: vec!["Location: /codeload/octo-app-0123abcd.tar.gz".into()],
            body: vec![],
        },
        ok(tarball.clone()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let report = fetcher(&server, 3)
        .fetch_with_token(
            &github(BundleType::Tar),
            Some("s3cr3t"),
            dir.path(),
            &opts(),
        )
        .unwrap();
    assert_eq!(
        report.stripped_top_level.as_deref(),
        Some("octo-app-0123abcd")
    );
    assert_eq!(
        std::fs::read(dir.path().join("deployment-archive/index.html")).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read(dir.path().join("bundle.tar")).unwrap(),
        tarball
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].line,
        "GET /repos/octo/app/tarball/0123abcd HTTP/1.1"
    );
    assert_eq!(seen[0].auth.as_deref(), Some("token s3cr3t"));
    assert_eq!(
        seen[1].line,
        "GET /codeload/octo-app-0123abcd.tar.gz HTTP/1.1"
    );
}

#[test]
fn anonymous_zipball_after_retried_errors() {
    let zipball = zip_bytes(&[
        Z::Dir("octo-app-0123abcd/"),
        Z::File(
            "octo-app-0123abcd/appspec.yml",
            0o644,
            b"version: 0.0\nos: linux\n",
        ),
        Z::File("octo-app-0123abcd/run.sh", 0o755, b"#!/bin/sh\n"),
    ]);
    let server = Server::start(vec![
        Reply {
            status: "502 Bad Gateway",
            headers: vec![],
            body: b"busy".to_vec(),
        },
        ok(zipball.clone()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let report = fetcher(&server, 3)
        .fetch(&github(BundleType::Zip), dir.path(), &opts())
        .unwrap();
    assert_eq!(report.files, 2);
    assert!(dir.path().join("deployment-archive/run.sh").is_file());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.auth.is_none()), "{seen:?}");
    assert_eq!(
        seen[1].line,
        "GET /repos/octo/app/zipball/0123abcd HTTP/1.1"
    );
}

#[test]
fn exhausted_retries_give_the_official_message() {
    let fail = || Reply {
        status: "500 Internal Server Error",
        headers: vec![],
        body: vec![],
    };
    let server = Server::start(vec![
        fail(),
        fail(),
        Reply {
            status: "404 Not Found",
            headers: vec![],
            body: vec![],
        },
        fail(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let err = fetcher(&server, 3)
        .fetch(&github(BundleType::Tar), dir.path(), &opts())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Could not download bundle at '{}/repos/octo/app/tarball/0123abcd' after 3 retries. \
             Server returned codes: 500 'Internal Server Error'; 500 'Internal Server Error'; \
             404 'Not Found'; 500 'Internal Server Error'",
            server.base()
        )
    );
    assert_eq!(server.seen().len(), 4);
}

#[test]
fn tgz_is_not_a_github_bundle_type() {
    let server = Server::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let err = fetcher(&server, 0)
        .fetch(&github(BundleType::Tgz), dir.path(), &opts())
        .unwrap_err();
    assert!(matches!(err, TransferError::GitHubBundleType(_)));
    assert_eq!(
        err.to_string(),
        "GitHub revision specified with bundle_type other than zip or tar [bundle_type=tgz"
    );
    assert!(server.seen().is_empty());
}

#[test]
fn a_refusing_proxy_is_named_and_not_retried() {
    // The loopback server plays a forward proxy that refuses the credentials it was sent.
    let proxy = Server::start(vec![Reply {
        status: "407 Proxy Authentication Required",
        headers: vec!["Proxy-Authenticate: Basic realm=\"p\"".into()],
        body: vec![],
    }]);
    let url = format!("http://agent:gh-s3cret@{}", proxy.addr);
    let settings = GitHubSettings {
        api_base: "http://github.example.invalid".into(),
        token: None,
        proxy: codedeploy_agent::proxy::Configured {
            key: "HTTP_PROXY",
            setting: codedeploy_agent::proxy::Setting::parse(&url).unwrap(),
        },
    };
    let tuning = Tuning {
        github_delays: vec![Duration::from_millis(10); 3],
        ..Tuning::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let err = Fetcher::with_tuning(None, settings, None, tuning)
        .unwrap()
        .fetch(&github(BundleType::Tar), dir.path(), &opts())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "proxy {} refused the credentials of user \"agent\"",
            proxy.addr
        )) && !err.contains("gh-s3cret"),
        "{err}"
    );
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0]
            .line
            .starts_with("GET http://github.example.invalid/"),
        "{seen:?}"
    );
}
