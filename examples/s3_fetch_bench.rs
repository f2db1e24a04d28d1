//! Benchmark of S3 bundle transfer (issue 6): a large tgz on moto (SigV4 on), fetched and
//! installed by `Fetcher::fetch` (download streamed into the unpacker) versus one stream to a
//! file with curl and `tar xzf` afterwards. Rounds interleave the two; medians are printed.
//! Each variant runs in a child process under GNU time, so its peak RSS is its own.
//!
//! `cargo run --release --example s3_fetch_bench` (BENCH_MIB=1024, BENCH_ROUNDS=3).

#[path = "../tests/support/moto.rs"]
mod moto;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use codedeploy_agent::bundle::UnpackOptions;
use codedeploy_agent::deployspec::{BundleType, Revision};
use codedeploy_agent::transfer::{s3_client, Fetcher, GitHubSettings, S3Settings, Tuning};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("fetch") {
        child_fetch(&args[2..]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("unpack") {
        let (bundle, dest) = (Path::new(&args[2]), Path::new(&args[3]));
        let opts = UnpackOptions {
            max_total_bytes: 1 << 40,
            reject_setuid: true,
            restore_ownership: false,
            reserve: None,
        };
        codedeploy_agent::bundle::unpack_file(bundle, BundleType::Tgz, dest, &opts).unwrap();
        return;
    }
    let mib: u64 = env_num("BENCH_MIB", 1024);
    let rounds: usize = env_num("BENCH_ROUNDS", 3) as usize;
    let work =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let tgz = work.path().join("big.tgz");
    let t = Instant::now();
    make_tgz(&tgz, mib);
    let size = std::fs::metadata(&tgz).unwrap().len();
    println!(
        "bundle: {} bytes ({mib} MiB of content) made in {:.1?}",
        size,
        t.elapsed()
    );

    let moto = moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = s3_client(&moto.settings(), &Tuning::default()).unwrap();
    let t = Instant::now();
    let put = rt
        .block_on(async {
            let body = ByteStream::from_path(&tgz).await.unwrap();
            client
                .put_object()
                .bucket(&moto.bucket)
                .key("big.tgz")
                .body(body)
                .send()
                .await
        })
        .unwrap();
    println!("uploaded to moto in {:.1?}", t.elapsed());
    let version = put.version_id().unwrap().to_string();
    let etag = put.e_tag().unwrap().to_string();
    // curl signs with SigV4 itself (moto refuses unsigned requests).
    let url = format!(
        "{}/{}/big.tgz?versionId={version}",
        moto.endpoint, moto.bucket
    );
    let user = format!("{}:{}", moto.access_key_id, moto.secret_access_key);
    let exe = std::env::current_exe().unwrap();
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let dest = work.path().join("dest");
        let run_a = || {
            let _ = std::fs::remove_dir_all(&dest);
            let mut cmd = Command::new(&exe);
            cmd.args([
                "fetch",
                &moto.endpoint,
                &moto.access_key_id,
                &moto.secret_access_key,
            ])
            .args([&moto.bucket, "big.tgz", &version, &etag])
            .arg(&dest);
            let (wall, rss) = measured(&mut cmd);
            (wall, rss)
        };
        let run_b = || {
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(dest.join("deployment-archive")).unwrap();
            let bundle = dest.join("bundle.tar");
            let start = Instant::now();
            let (t_curl, rss1) = measured(
                Command::new("curl")
                    .args([
                        "-sSf",
                        "--aws-sigv4",
                        "aws:amz:us-east-1:s3",
                        "--user",
                        &user,
                    ])
                    .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o"])
                    .arg(&bundle)
                    .arg(&url),
            );
            let (t_tar, rss2) = measured(
                Command::new("tar")
                    .arg("-xzf")
                    .arg(&bundle)
                    .arg("-C")
                    .arg(dest.join("deployment-archive")),
            );
            println!("  curl {t_curl:.2?}, tar xzf {t_tar:.2?}");
            (start.elapsed(), rss1.max(rss2))
        };
        // The same two passes, but unpacked by our own unpacker: isolates the gain of streaming.
        let run_c = || {
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest).unwrap();
            let bundle = dest.join("bundle.tar");
            let start = Instant::now();
            let (_, rss1) = measured(
                Command::new("curl")
                    .args([
                        "-sSf",
                        "--aws-sigv4",
                        "aws:amz:us-east-1:s3",
                        "--user",
                        &user,
                    ])
                    .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o"])
                    .arg(&bundle)
                    .arg(&url),
            );
            let (_, rss2) = measured(
                Command::new(&exe)
                    .arg("unpack")
                    .arg(&bundle)
                    .arg(dest.join("deployment-archive")),
            );
            (start.elapsed(), rss1.max(rss2))
        };
        let (ra, rb, rc) = match round % 3 {
            0 => (run_a(), run_b(), run_c()),
            1 => {
                let rb = run_b();
                let rc = run_c();
                (run_a(), rb, rc)
            }
            _ => {
                let rc = run_c();
                let ra = run_a();
                (ra, run_b(), rc)
            }
        };
        println!(
            "round {round}: fetch+unpack {:.2?} (peak RSS {} KiB) | curl then tar xzf {:.2?} (peak RSS {} KiB) | curl then our unpack {:.2?} (peak RSS {} KiB)",
            ra.0, ra.1, rb.0, rb.1, rc.0, rc.1
        );
        c.push(rc);
        a.push(ra);
        b.push(rb);
    }
    let _ = std::fs::remove_dir_all(work.path().join("dest"));
    let med = |v: &mut Vec<(Duration, u64)>| {
        v.sort();
        let wall = v[v.len() / 2].0;
        let rss = v.iter().map(|x| x.1).max().unwrap_or(0);
        (wall, rss)
    };
    let (wa, ra) = med(&mut a);
    let (wb, rb) = med(&mut b);
    let (wc, rc) = med(&mut c);
    let mb = size as f64 / (1024.0 * 1024.0);
    println!("| variant | median wall | MiB/s | max peak RSS |");
    println!("|---|---|---|---|");
    println!(
        "| Fetcher::fetch (streamed) | {:.2} s | {:.0} | {:.1} MiB |",
        wa.as_secs_f64(),
        mb / wa.as_secs_f64(),
        ra as f64 / 1024.0
    );
    println!(
        "| curl to file, then tar xzf | {:.2} s | {:.0} | {:.1} MiB |",
        wb.as_secs_f64(),
        mb / wb.as_secs_f64(),
        rb as f64 / 1024.0
    );
    println!(
        "| curl to file, then our unpacker | {:.2} s | {:.0} | {:.1} MiB |",
        wc.as_secs_f64(),
        mb / wc.as_secs_f64(),
        rc as f64 / 1024.0
    );
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The child: one fetch, as the agent would do it; prints its own VmHWM.
fn child_fetch(a: &[String]) {
    let [endpoint, key_id, secret, bucket, key, version, etag, dest] = a else {
        panic!("fetch <endpoint> <key id> <secret> <bucket> <key> <version> <etag> <dest>");
    };
    let settings = S3Settings {
        region: moto::REGION.into(),
        endpoint_override: Some(endpoint.clone()),
        use_fips: false,
        proxy: Default::default(),
        credentials: aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(key_id, secret, None, None, "bench"),
        ),
    };
    let f = Fetcher::new(Some(settings), GitHubSettings::default(), None).unwrap();
    let rev = Revision::S3 {
        bucket: bucket.clone(),
        key: key.clone(),
        bundle_type: BundleType::Tgz,
        version: Some(version.clone()),
        etag: Some(etag.clone()),
    };
    let opts = UnpackOptions {
        max_total_bytes: 1 << 40,
        reject_setuid: true,
        restore_ownership: false,
        reserve: None,
    };
    let report = f.fetch(&rev, &PathBuf::from(dest), &opts).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    eprintln!(
        "child: {} files, {} bytes, {hwm}",
        report.files, report.bytes
    );
}

/// Runs a command to completion under GNU time; wall time and its peak RSS in KiB. (wait4 on
/// a child forked from this process would count the RSS it inherited before exec.)
fn measured(cmd: &mut Command) -> (Duration, u64) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(out.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let start = Instant::now();
    let status = timed.status().unwrap();
    let wall = start.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    let kib = std::fs::read_to_string(out.path()).unwrap_or_default();
    (
        wall,
        kib.trim()
            .lines()
            .last()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0),
    )
}

/// A tgz of 64 MiB files of pseudo-random bytes (xorshift; gzip cannot shrink it, so the
/// bundle is as large as its content), made with bounded memory.
fn make_tgz(path: &Path, mib: u64) {
    let out = BufWriter::new(File::create(path).unwrap());
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut h = tar::Header::new_gnu();
    h.set_path("app/appspec.yml").unwrap();
    h.set_size(24);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, &b"version: 0.0\nos: linux\n\n"[..]).unwrap();
    let per = 64u64.min(mib.max(1));
    for i in 0..mib.div_ceil(per) {
        let len = per * 1024 * 1024;
        let mut h = tar::Header::new_gnu();
        h.set_path(format!("app/data/part-{i:03}.bin")).unwrap();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, std::io::Read::take(XorShift(&mut x), len))
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

/// Endless pseudo-random bytes, so the parent never holds a bundle part in memory (its RSS is
/// inherited by the children it forks, and would blur their figures).
struct XorShift<'a>(&'a mut u64);

impl std::io::Read for XorShift<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len() / 8 * 8;
        for w in buf[..n].chunks_exact_mut(8) {
            let x = &mut *self.0;
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        Ok(n.max(1).min(buf.len()))
    }
}
