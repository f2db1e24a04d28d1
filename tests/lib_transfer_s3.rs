//! S3 bundle downloads against a real moto server with SigV4 checked: tar, tgz and zip by
//! version id and ETag, the official ETag message, wrong versions, resuming after a dropped
//! connection (a loopback proxy cuts the first response), and the endpoint-override hint.

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/moto.rs"]
mod moto;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bundle_support::{app_tar, gzip, noise, opts, zip_bytes, Z};
use codedeploy_agent::deployspec::{BundleType, Revision};
use codedeploy_agent::transfer::{Fetcher, GitHubSettings, S3Settings, TransferError, Tuning};
use moto::Moto;

fn quick() -> Tuning {
    Tuning {
        resume_base_delay: Duration::from_millis(20),
        request_attempts: 2,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(20),
        github_delays: vec![],
        ..Tuning::default()
    }
}

fn fetcher(settings: S3Settings) -> Fetcher {
    Fetcher::with_tuning(Some(settings), GitHubSettings::default(), None, quick()).unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap()
}

#[test]
fn signatures_are_checked() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    assert_eq!(moto.wrong_secret_refused, "SignatureDoesNotMatch");
    // The fetcher's own client, with a wrong secret, is refused too.
    let (version, _) = moto.put("b.tar", app_tar(b"x", b""));
    let mut bad = moto.settings();
    bad.credentials = moto.credentials_with_secret("wrong");
    let dir = tempfile::tempdir().unwrap();
    let err = fetcher(bad)
        .fetch(
            &moto.revision("b.tar", BundleType::Tar, Some(&version), None),
            dir.path(),
            &opts(),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bundles") && msg.contains("b.tar"), "{msg}");
    assert!(
        msg.contains("SignatureDoesNotMatch") || msg.contains("403"),
        "{msg}"
    );
}

#[test]
fn tar_tgz_zip_by_version_and_etag() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let big = noise(3 << 20, 0);
    let v1_tar = app_tar(b"v1", &big);
    let (v1, v1_etag) = moto.put("app.tar", v1_tar.clone());
    let (v2, _) = moto.put("app.tar", app_tar(b"v2", b"small"));
    assert_ne!(v1, v2);
    let tgz = gzip(&app_tar(b"tgz", &big));
    let (tgz_v, tgz_etag) = moto.put("app.tgz", tgz.clone());
    let zip = zip_bytes(&[
        Z::File("appspec.yml", 0o644, b"version: 0.0\nos: linux\n"),
        Z::File("marker.txt", 0o644, b"zip"),
    ]);
    let (zip_v, zip_etag) = moto.put("app.zip", zip.clone());
    // keep_bundle_archive: bundle.tar is the object, byte for byte.
    let f = fetcher(moto.settings()).keep_bundle_archive(true);

    // The older version, named by id, with its ETag (unquoted, as specs carry it).
    let dir = tempfile::tempdir().unwrap();
    let unquoted = v1_etag.replace('"', "");
    let rev = moto.revision("app.tar", BundleType::Tar, Some(&v1), Some(&unquoted));
    let report = f.fetch(&rev, dir.path(), &opts()).unwrap();
    assert_eq!(report.stripped_top_level.as_deref(), Some("app"));
    assert_eq!(report.files, 3);
    let archive = dir.path().join("deployment-archive");
    assert_eq!(read(&archive.join("marker.txt")), b"v1");
    assert_eq!(read(&archive.join("big.bin")), big);
    assert_eq!(read(&dir.path().join("bundle.tar")), v1_tar);

    // No version: the latest, into the deployment dir the executor cleared (the one owner of
    // the archive dir); by default no bundle.tar stays beside it.
    assert!(codedeploy_agent::revisions::clear_download(dir.path()).is_empty());
    let rev = moto.revision("app.tar", BundleType::Tar, None, None);
    fetcher(moto.settings())
        .fetch(&rev, dir.path(), &opts())
        .unwrap();
    assert_eq!(read(&archive.join("marker.txt")), b"v2");
    assert_eq!(read(&archive.join("big.bin")), b"small");
    assert!(!dir.path().join("bundle.tar").exists());

    let dir = tempfile::tempdir().unwrap();
    let rev = moto.revision("app.tgz", BundleType::Tgz, Some(&tgz_v), Some(&tgz_etag));
    f.fetch(&rev, dir.path(), &opts()).unwrap();
    assert_eq!(
        read(&dir.path().join("deployment-archive/marker.txt")),
        b"tgz"
    );
    assert_eq!(read(&dir.path().join("bundle.tar")), tgz);

    let dir = tempfile::tempdir().unwrap();
    let rev = moto.revision("app.zip", BundleType::Zip, Some(&zip_v), Some(&zip_etag));
    let report = f.fetch(&rev, dir.path(), &opts()).unwrap();
    assert_eq!(report.files, 2);
    assert_eq!(
        read(&dir.path().join("deployment-archive/marker.txt")),
        b"zip"
    );
    assert_eq!(read(&dir.path().join("bundle.tar")), zip);
}

#[test]
fn wrong_etag_wrong_version_and_wrong_type_are_refused() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let (version, etag) = moto.put("app.tar", app_tar(b"x", b""));
    let f = fetcher(moto.settings());
    let dir = tempfile::tempdir().unwrap();

    let rev = moto.revision("app.tar", BundleType::Tar, Some(&version), Some("0123abc"));
    let err = f.fetch(&rev, dir.path(), &opts()).unwrap_err();
    assert!(matches!(err, TransferError::EtagMismatch { .. }));
    assert_eq!(
        err.to_string(),
        format!("Expected deployment artifact bundle etag 0123abc but was actually {etag}")
    );
    assert!(!dir.path().join("deployment-archive/appspec.yml").exists());

    let rev = moto.revision("app.tar", BundleType::Tar, Some("not-a-version"), None);
    let msg = f.fetch(&rev, dir.path(), &opts()).unwrap_err().to_string();
    assert!(
        msg.contains("version 'not-a-version'") && msg.contains("app.tar"),
        "{msg}"
    );

    let rev = moto.revision("missing.tar", BundleType::Tar, None, None);
    let msg = f.fetch(&rev, dir.path(), &opts()).unwrap_err().to_string();
    assert!(
        msg.contains("missing.tar") && msg.contains("NoSuchKey"),
        "{msg}"
    );

    // Declared tgz, content is a plain tar: the unpacker's refusal names the S3 object.
    let rev = moto.revision("app.tar", BundleType::Tgz, None, Some(&etag));
    let msg = f.fetch(&rev, dir.path(), &opts()).unwrap_err().to_string();
    assert!(
        msg.contains("s3://bundles/app.tar") && msg.contains("tgz"),
        "{msg}"
    );
}

#[test]
fn resumes_after_the_connection_drops() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let big = noise(6 << 20, 0);
    let body = gzip(&app_tar(b"resumed", &big));
    let (version, etag) = moto.put("big.tgz", body.clone());
    // The first two responses are cut after 1 MiB and 2 MiB; later ones pass.
    let proxy = CutProxy::start(moto.addr, vec![1 << 20, 2 << 20]);
    let f = fetcher(moto.settings_via(&format!("http://{}", proxy.addr))).keep_bundle_archive(true);
    let dir = tempfile::tempdir().unwrap();
    let rev = moto.revision("big.tgz", BundleType::Tgz, Some(&version), Some(&etag));
    f.fetch(&rev, dir.path(), &opts()).unwrap();
    assert_eq!(proxy.cut.load(Ordering::SeqCst), 2, "both cuts happened");
    assert_eq!(read(&dir.path().join("bundle.tar")), body);
    assert_eq!(read(&dir.path().join("deployment-archive/big.bin")), big);
    assert_eq!(
        read(&dir.path().join("deployment-archive/marker.txt")),
        b"resumed"
    );

    // More cuts than resumes allowed: a clear failure naming the object, not a partial success.
    let proxy = CutProxy::start(moto.addr, vec![100_000; 10]);
    let tuning = Tuning {
        resume_attempts: 2,
        ..quick()
    };
    let f = Fetcher::with_tuning(
        Some(moto.settings_via(&format!("http://{}", proxy.addr))),
        GitHubSettings::default(),
        None,
        tuning,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let msg = f.fetch(&rev, dir.path(), &opts()).unwrap_err().to_string();
    // The object is one part (default 8 MiB parts): that part was retried twice.
    assert!(
        msg.contains("big.tgz") && msg.contains("part 0") && msg.contains("2 retries"),
        "{msg}"
    );

    // The same with one GET for the whole object (`s3_single_stream`): it resumes by range.
    let proxy = CutProxy::start(moto.addr, vec![1 << 20, 2 << 20]);
    let f = Fetcher::with_tuning(
        Some(moto.settings_via(&format!("http://{}", proxy.addr))),
        GitHubSettings::default(),
        None,
        Tuning {
            s3_single_stream: true,
            ..quick()
        },
    )
    .unwrap()
    .keep_bundle_archive(true);
    let dir = tempfile::tempdir().unwrap();
    f.fetch(&rev, dir.path(), &opts()).unwrap();
    assert_eq!(proxy.cut.load(Ordering::SeqCst), 2, "both cuts happened");
    assert_eq!(read(&dir.path().join("bundle.tar")), body);
}

#[test]
fn unreachable_endpoint_suggests_the_override() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = S3Settings {
        region: "us-east-1".into(),
        endpoint_override: Some(format!("http://127.0.0.1:{port}")),
        use_fips: false,
        proxy: Default::default(),
        credentials: aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("AKID", "secret", None, None, "test"),
        ),
    };
    let rev = Revision::S3 {
        bucket: "b".into(),
        key: "k.tar".into(),
        bundle_type: BundleType::Tar,
        version: None,
        etag: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let err = fetcher(settings)
        .fetch(&rev, dir.path(), &opts())
        .unwrap_err();
    assert!(matches!(err, TransferError::S3Connect { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with(". Try using s3 endpoint override."),
        "{err}"
    );
}

/// A loopback TCP proxy that cuts the n-th connection's response after `cuts[n]` bytes; later
/// connections pass untouched. Stops (and joins its accept thread) on drop.
struct CutProxy {
    addr: SocketAddr,
    cut: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl CutProxy {
    fn start(upstream: SocketAddr, cuts: Vec<u64>) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (cut2, stop2) = (cut.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let limit = cuts.get(n).copied();
                let cut = cut2.clone();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || pipe(c2, s2, None, None));
                thread::spawn(move || pipe(server, client, limit, Some(cut)));
            }
        });
        CutProxy {
            addr,
            cut,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to`; with a limit, shuts both down once that many bytes went through.
fn pipe(mut from: TcpStream, mut to: TcpStream, limit: Option<u64>, cut: Option<Arc<AtomicUsize>>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = match limit {
            Some(l) if sent + n as u64 >= l => {
                let _ = to.write_all(&buf[..(l - sent) as usize]);
                if let Some(c) = &cut {
                    c.fetch_add(1, Ordering::SeqCst);
                }
                break;
            }
            _ => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
