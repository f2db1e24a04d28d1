//! Parallel ranged S3 downloads against a real moto server with SigV4 checked, through a
//! loopback proxy that records every request's `Range` and can cut, corrupt or hold a response:
//! parts arrive in order (the bundle is byte-identical to the object), a small object is one
//! GET, a part cut mid-way is resumed alone from where it stopped, an object overwritten between
//! parts aborts with an error naming bucket and key, multipart ETags (`-N`), a corrupted body
//! fails the MD5 a single-part ETag promises, and a zip's index is read first from its tail.

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/moto.rs"]
mod moto;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bundle_support::{app_tar, noise, opts, zip_bytes, Z};
use codedeploy_agent::deployspec::{BundleType, Revision};
use codedeploy_agent::transfer::{s3_client, Fetcher, GitHubSettings, TransferError, Tuning};
use moto::Moto;

const PART: u64 = 256 * 1024;

fn tuning(connections: usize) -> Tuning {
    Tuning {
        resume_base_delay: Duration::from_millis(20),
        request_attempts: 1,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(20),
        github_delays: vec![],
        s3_connections: connections,
        s3_part_size: PART,
        ..Tuning::default()
    }
}

fn fetcher(moto: &Moto, proxy: &Proxy, t: Tuning) -> Fetcher {
    let settings = moto.settings_via(&format!("http://{}", proxy.addr));
    // The tests compare the downloaded bytes with the object: keep the archive for that.
    Fetcher::with_tuning(Some(settings), GitHubSettings::default(), None, t)
        .unwrap()
        .keep_bundle_archive(true)
}

/// Starts of the `Range: bytes=<start>-...` requests seen, in order.
fn starts(ranges: &[String]) -> Vec<u64> {
    ranges
        .iter()
        .filter_map(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok())
        .collect()
}

#[test]
fn parts_arrive_in_order_and_a_small_object_is_one_get() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let big = noise(3 << 20, 1);
    let body = app_tar(b"ordered", &big);
    let (version, _) = moto.put("app.tar", body.clone());
    let proxy = Proxy::start(moto.addr, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    fetcher(&moto, &proxy, tuning(4))
        .fetch(
            &moto.revision("app.tar", BundleType::Tar, Some(&version), None),
            dir.path(),
            &opts(),
        )
        .unwrap();
    assert_eq!(fs::read(dir.path().join("bundle.tar")).unwrap(), body);
    assert_eq!(
        fs::read(dir.path().join("deployment-archive/big.bin")).unwrap(),
        big
    );
    // One request per part, each for its own range.
    let mut seen = starts(&proxy.ranges());
    seen.sort_unstable();
    let parts = (body.len() as u64).div_ceil(PART);
    assert_eq!(seen, (0..parts).map(|i| i * PART).collect::<Vec<_>>());

    // An object no larger than a part: one GET.
    let small = app_tar(b"small", b"tiny");
    moto.put("small.tar", small.clone());
    let proxy = Proxy::start(moto.addr, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    fetcher(&moto, &proxy, tuning(8))
        .fetch(
            &moto.revision("small.tar", BundleType::Tar, None, None),
            dir.path(),
            &opts(),
        )
        .unwrap();
    assert_eq!(fs::read(dir.path().join("bundle.tar")).unwrap(), small);
    assert_eq!(proxy.ranges(), vec![format!("bytes=0-{}", PART - 1)]);
}

#[test]
fn a_part_cut_midway_is_resumed_alone() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let big = noise(2 << 20, 2);
    let body = app_tar(b"resumed", &big);
    let (version, _) = moto.put("cut.tar", body.clone());
    // One connection at a time, so parts are asked for one after another, and moto's server
    // closes each connection after its response: connection 1 carries the second part, and
    // cutting it 100,000 bytes in lands inside that part's body.
    let proxy = Proxy::start(
        moto.addr,
        Faults {
            cut: Some((1, 100_000)),
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    fetcher(&moto, &proxy, tuning(1))
        .fetch(
            &moto.revision("cut.tar", BundleType::Tar, Some(&version), None),
            dir.path(),
            &opts(),
        )
        .unwrap();
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "the cut happened");
    assert_eq!(fs::read(dir.path().join("bundle.tar")).unwrap(), body);
    let seen = starts(&proxy.ranges());
    // The resumed request starts inside the second part, right after the bytes that arrived;
    // every other request is a whole part, and no part was asked for twice from its start.
    let resumed: Vec<u64> = seen.iter().copied().filter(|s| s % PART != 0).collect();
    assert_eq!(resumed.len(), 1, "{seen:?}");
    assert!(resumed[0] > PART && resumed[0] < 2 * PART, "{seen:?}");
    let mut whole: Vec<u64> = seen.iter().copied().filter(|s| s % PART == 0).collect();
    whole.dedup();
    assert_eq!(
        whole.len(),
        (body.len() as u64).div_ceil(PART) as usize,
        "{seen:?}"
    );
}

#[test]
fn an_object_overwritten_between_parts_aborts_naming_it() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let body = app_tar(b"first", &noise(1 << 20, 3));
    moto.put("moving.tar", body);
    // The request for the third part waits until the test has overwritten the key.
    let (held_tx, held_rx) = channel();
    let (go_tx, go_rx) = channel();
    let proxy = Proxy::start(
        moto.addr,
        Faults {
            hold: Some((format!("bytes={}-", 2 * PART), held_tx, Mutex::new(go_rx))),
            ..Faults::default()
        },
    );
    let f = fetcher(&moto, &proxy, tuning(1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let r = moto.revision("moving.tar", BundleType::Tar, None, None);
    let fetching = thread::spawn(move || f.fetch(&r, &path, &opts()).map_err(Box::new));
    held_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the third part was requested");
    moto.put("moving.tar", app_tar(b"second", &noise(1 << 20, 4)));
    go_tx.send(()).unwrap();
    let err = fetching.join().unwrap().unwrap_err();
    assert!(matches!(*err, TransferError::Changed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("s3://bundles/moving.tar") && msg.contains("changed"),
        "{msg}"
    );
    assert!(!dir
        .path()
        .join("deployment-archive/app/appspec.yml")
        .exists());
}

#[test]
fn multipart_etags_and_a_corrupted_single_part_body() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    // S3 (and moto) want every part but the last to be at least 5 MiB.
    let big = noise(11 << 20, 5);
    let body = app_tar(b"multipart", &big);
    let (sizes, mut at) = ([5usize << 20, 5 << 20], 0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = s3_client(&moto.settings(), &tuning(1)).unwrap();
    let etag = rt.block_on(async {
        let up = client
            .create_multipart_upload()
            .bucket(&moto.bucket)
            .key("multi.tar")
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap();
        let mut done = Vec::new();
        for n in 1..=3 {
            let end = if n < 3 { at + sizes[n - 1] } else { body.len() };
            let part = client
                .upload_part()
                .bucket(&moto.bucket)
                .key("multi.tar")
                .upload_id(id)
                .part_number(n as i32)
                .body(ByteStream::from(body[at..end].to_vec()))
                .send()
                .await
                .unwrap();
            done.push(
                CompletedPart::builder()
                    .part_number(n as i32)
                    .e_tag(part.e_tag().unwrap())
                    .build(),
            );
            at = end;
        }
        // moto's answer has another XML root than the SDK expects; the upload completes all
        // the same, and the ETag is read back.
        let _ = client
            .complete_multipart_upload()
            .bucket(&moto.bucket)
            .key("multi.tar")
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await;
        let head = client
            .head_object()
            .bucket(&moto.bucket)
            .key("multi.tar")
            .send()
            .await
            .unwrap();
        head.e_tag().unwrap().to_string()
    });
    assert!(etag.trim_matches('"').ends_with("-3"), "{etag}");
    let proxy = Proxy::start(moto.addr, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let t = Tuning {
        s3_part_size: 1 << 20,
        ..tuning(4)
    };
    let mut r = moto.revision("multi.tar", BundleType::Tar, None, None);
    if let Revision::S3 { etag: e, .. } = &mut r {
        *e = Some(etag.clone());
    }
    fetcher(&moto, &proxy, t)
        .fetch(&r, dir.path(), &opts())
        .unwrap();
    assert_eq!(fs::read(dir.path().join("bundle.tar")).unwrap(), body);
    assert_eq!(
        fs::read(dir.path().join("deployment-archive/big.bin")).unwrap(),
        big
    );

    // A single-part object's ETag is its MD5: one flipped byte in transit is caught.
    let small = app_tar(b"md5", &noise(1 << 20, 6));
    moto.put("flip.tar", small);
    let proxy = Proxy::start(
        moto.addr,
        Faults {
            flip: Some((0, 200_000)),
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let err = fetcher(&moto, &proxy, tuning(1))
        .fetch(
            &moto.revision("flip.tar", BundleType::Tar, None, None),
            dir.path(),
            &opts(),
        )
        .unwrap_err();
    assert!(matches!(err, TransferError::Integrity { .. }), "{err}");
    assert!(
        err.to_string().contains("flip.tar") && err.to_string().contains("MD5"),
        "{err}"
    );
}

#[test]
fn a_zip_index_is_read_first_from_the_tail() {
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let big = noise(1 << 20, 7);
    let zip = zip_bytes(&[
        Z::File("appspec.yml", 0o644, b"version: 0.0\nos: linux\n"),
        Z::File("big.bin", 0o644, &big),
        Z::File("marker.txt", 0o644, b"zip"),
    ]);
    let (version, _) = moto.put("app.zip", zip.clone());
    let proxy = Proxy::start(moto.addr, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let report = fetcher(&moto, &proxy, tuning(3))
        .fetch(
            &moto.revision("app.zip", BundleType::Zip, Some(&version), None),
            dir.path(),
            &opts(),
        )
        .unwrap();
    assert_eq!(report.files, 3);
    assert_eq!(fs::read(dir.path().join("bundle.tar")).unwrap(), zip);
    assert_eq!(
        fs::read(dir.path().join("deployment-archive/big.bin")).unwrap(),
        big
    );
    let ranges = proxy.ranges();
    assert_eq!(ranges[0], "bytes=-65557", "{ranges:?}");
    assert_eq!(ranges.len() as u64, 1 + (zip.len() as u64).div_ceil(PART));

    // A tar declared as zip: refused from its tail, before any part is fetched.
    let (version, _) = moto.put("not.zip", app_tar(b"x", &noise(1 << 20, 8)));
    let proxy = Proxy::start(moto.addr, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let err = fetcher(&moto, &proxy, tuning(3))
        .fetch(
            &moto.revision("not.zip", BundleType::Zip, Some(&version), None),
            dir.path(),
            &opts(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("not.zip") && err.to_string().contains("not a zip"),
        "{err}"
    );
    assert_eq!(proxy.ranges(), vec!["bytes=-65557".to_string()]);
}

/// What the proxy does to the traffic; connections are numbered from 0 in accept order.
#[derive(Default)]
struct Faults {
    /// Close connection `.0` after `.1` bytes of its responses.
    cut: Option<(usize, u64)>,
    /// Invert byte `.1` of connection `.0`'s responses.
    flip: Option<(usize, u64)>,
    /// Hold a request whose Range starts with `.0`: tell `.1`, wait for `.2`.
    hold: Option<(String, Sender<()>, Mutex<Receiver<()>>)>,
}

/// A loopback HTTP/1.1 proxy in front of moto (GET requests have no body, so request heads
/// are read whole). Stops and joins its accept thread on drop; its pipe threads end when
/// either side closes.
struct Proxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(faults);
        let (log2, cuts2, stop2) = (log.clone(), cuts.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (log, faults2, cuts) = (log2.clone(), faults.clone(), cuts2.clone());
                thread::spawn(move || requests(c2, s2, log, &faults2));
                let faults = faults.clone();
                thread::spawn(move || responses(server, client, n, &faults, &cuts));
            }
        });
        Proxy {
            addr,
            log,
            cuts,
            stop,
            accept: Some(accept),
        }
    }

    fn ranges(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Client to server: forwards each request head whole, logging its Range and holding it when
/// asked.
fn requests(mut from: TcpStream, mut to: TcpStream, log: Arc<Mutex<Vec<String>>>, f: &Faults) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            let text = String::from_utf8_lossy(&head).to_string();
            let range = text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("range")
                    .then(|| v.trim().to_string())
            });
            if let Some(r) = &range {
                log.lock().unwrap().push(r.clone());
                if let Some((prefix, held, go)) = &f.hold {
                    if r.starts_with(prefix.as_str()) {
                        let _ = held.send(());
                        let _ = go.lock().unwrap().recv_timeout(Duration::from_secs(60));
                    }
                }
            }
            if to.write_all(&head).is_err() {
                break 'read;
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Server to client, with connection `conn`'s faults applied.
fn responses(mut from: TcpStream, mut to: TcpStream, conn: usize, f: &Faults, cuts: &AtomicUsize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((c, at)) = f.flip {
            if c == conn && (sent..sent + n as u64).contains(&at) {
                buf[(at - sent) as usize] ^= 0xff;
            }
        }
        if let Some((c, limit)) = f.cut {
            if c == conn && sent + n as u64 >= limit {
                let _ = to.write_all(&buf[..(limit - sent) as usize]);
                cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
