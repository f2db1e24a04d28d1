//! The measured child of `benches/ranged_s3.py` (issue 15): one S3 fetch as the agent does it
//! (`Fetcher::fetch`, single GET or parallel ranges), or one unpack of a local bundle file.
//! Prints one JSON line: wall seconds, its own peak RSS (VmHWM, KiB) and the bytes it caused
//! to be written to storage (`write_bytes` of /proc/self/io).
//!
//! `s3_ranged_bench fetch <endpoint> <key id> <secret> <bucket> <key> <tar|tgz|zip> <dest>
//!  <single|connections> <part bytes>`; `s3_ranged_bench unpack <file> <tar|tgz|zip> <dest>`.

use std::path::Path;
use std::time::Instant;

use codedeploy_agent::bundle::UnpackOptions;
use codedeploy_agent::deployspec::{BundleType, Revision};
use codedeploy_agent::transfer::{Fetcher, GitHubSettings, S3Settings, Tuning};

fn main() {
    // As the agent starts; BENCH_GLIBC_DEFAULT_MALLOC=1 measures glibc's defaults instead.
    if std::env::var_os("BENCH_GLIBC_DEFAULT_MALLOC").is_none() {
        codedeploy_agent::memory::tune_allocator();
    }
    let a: Vec<String> = std::env::args().skip(1).collect();
    let opts = UnpackOptions {
        max_total_bytes: 1 << 40,
        reject_setuid: true,
        restore_ownership: false,
        reserve: None,
    };
    let kind = |s: &str| match s {
        "tar" => BundleType::Tar,
        "tgz" => BundleType::Tgz,
        "zip" => BundleType::Zip,
        other => panic!("bundle type {other}"),
    };
    let start = Instant::now();
    match a.first().map(String::as_str) {
        Some("fetch") => {
            let [_, endpoint, key_id, secret, bucket, key, k, dest, conns, part] = &a[..] else {
                panic!("fetch <endpoint> <key id> <secret> <bucket> <key> <kind> <dest> <single|N> <part bytes>");
            };
            let settings = S3Settings {
                region: "us-east-1".into(),
                endpoint_override: Some(endpoint.clone()),
                use_fips: false,
                proxy: Default::default(),
                credentials: aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(key_id, secret, None, None, "bench"),
                ),
            };
            let tuning = Tuning {
                s3_single_stream: conns == "single",
                s3_connections: conns.parse().unwrap_or(1),
                s3_part_size: part.parse().expect("part bytes"),
                ..Tuning::default()
            };
            let f = Fetcher::with_tuning(Some(settings), GitHubSettings::default(), None, tuning)
                .unwrap();
            let rev = Revision::S3 {
                bucket: bucket.clone(),
                key: key.clone(),
                bundle_type: kind(k),
                version: None,
                etag: None,
            };
            f.fetch(&rev, Path::new(dest), &opts).unwrap();
        }
        Some("unpack") => {
            let [_, file, k, dest] = &a[..] else {
                panic!("unpack <file> <kind> <dest>");
            };
            codedeploy_agent::bundle::unpack_file(Path::new(file), kind(k), Path::new(dest), &opts)
                .unwrap();
        }
        _ => panic!("fetch ... | unpack ..."),
    }
    let wall = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = field(&status, "VmHWM:");
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let written = field(&io, "write_bytes:");
    println!("{{\"wall\": {wall:.3}, \"hwm_kib\": {hwm}, \"write_bytes\": {written}}}");
}

/// The number after `name` in a /proc key-value file (0 when absent).
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
