//! PURE: the decisions of a transfer, as plain functions — which S3 endpoint to use, how ETags
//! compare, what a resumed request asks for, the GitHub URL, the official error hints and when
//! progress is logged. No I/O here; the adapters in `s3` and `github` act on the answers.

use std::time::Duration;

use crate::deployspec::BundleType;

/// The S3 endpoint (docs/behaviour/bundles.md#s3-download), first match: the override (path-style
/// addressing), FIPS, the European sovereign cloud, else `None` for the SDK's regional endpoint.
pub fn s3_endpoint(
    region: &str,
    endpoint_override: Option<&str>,
    use_fips: bool,
) -> Option<String> {
    if let Some(url) = endpoint_override.filter(|u| !u.trim().is_empty()) {
        return Some(url.trim().to_string());
    }
    if use_fips {
        return Some(format!("https://s3-fips.{region}.amazonaws.com"));
    }
    if region == "eusc-de-east-1" {
        return Some("https://s3.eusc-de-east-1.amazonaws.eu".to_string());
    }
    None
}

/// The suffix the official agent adds to "unable to connect" errors.
pub fn connect_hint(region: &str, use_fips: bool) -> String {
    if use_fips {
        format!(". Check that Fips exists in {region}. Or, try using s3 endpoint override.")
    } else {
        ". Try using s3 endpoint override.".to_string()
    }
}

/// ETags compare with every `"` removed from both sides (docs/behaviour/bundles.md#s3-download).
pub fn etag_matches(expected: &str, actual: &str) -> bool {
    expected.replace('"', "") == actual.replace('"', "")
}

/// The `Range` header of a request resuming after `received` bytes; none for a first request.
pub fn resume_range(received: u64) -> Option<String> {
    (received > 0).then(|| format!("bytes={received}-"))
}

/// Whether a resumed response's `Content-Range` (`bytes <first>-<last>/<total>`) starts where
/// the download stopped; a server that ignored the range must not have its bytes appended.
pub fn range_starts_at(content_range: Option<&str>, received: u64) -> bool {
    let Some(spec) = content_range.and_then(|c| c.trim().strip_prefix("bytes ")) else {
        return false;
    };
    spec.split('-')
        .next()
        .and_then(|first| first.trim().parse::<u64>().ok())
        == Some(received)
}

/// Delay before resume attempt `attempt` (1-based): doubling from `base`, capped at 8 x base.
pub fn resume_delay(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(3))
}

/// GitHub archive path for a bundle type: only tar and zip exist there
/// (docs/behaviour/bundles.md#github-download).
pub fn github_archive(kind: BundleType) -> Option<&'static str> {
    match kind {
        BundleType::Tar => Some("tarball"),
        BundleType::Zip => Some("zipball"),
        BundleType::Tgz | BundleType::Directory => None,
    }
}

/// `<api_base>/repos/<account>/<repo>/<tarball|zipball>/<commit>`.
pub fn github_url(
    api_base: &str,
    account: &str,
    repo: &str,
    archive: &str,
    commit: &str,
) -> String {
    format!(
        "{}/repos/{account}/{repo}/{archive}/{commit}",
        api_base.trim_end_matches('/')
    )
}

/// Bundles at least this large get progress lines.
pub const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;
/// Time between progress lines.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Whether to log progress now: only for large (or unknown-size but already large) bundles,
/// at most every [`PROGRESS_EVERY`].
pub fn progress_due(total: Option<u64>, received: u64, since_last: Duration) -> bool {
    let large = total.unwrap_or(received) >= PROGRESS_MIN_BYTES;
    large && since_last >= PROGRESS_EVERY
}

/// Bytes per second as MiB/s, for logs.
pub fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_selection_order() {
        assert_eq!(
            s3_endpoint("us-east-1", Some("http://127.0.0.1:9000"), true).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            s3_endpoint("us-east-1", Some("  "), true).as_deref(),
            Some("https://s3-fips.us-east-1.amazonaws.com")
        );
        assert_eq!(
            s3_endpoint("eusc-de-east-1", None, false).as_deref(),
            Some("https://s3.eusc-de-east-1.amazonaws.eu")
        );
        assert_eq!(s3_endpoint("eu-west-1", None, false), None);
    }

    #[test]
    fn hints() {
        assert_eq!(
            connect_hint("x", false),
            ". Try using s3 endpoint override."
        );
        assert_eq!(
            connect_hint("us-gov-west-1", true),
            ". Check that Fips exists in us-gov-west-1. Or, try using s3 endpoint override."
        );
    }

    #[test]
    fn etags_ignore_quotes() {
        assert!(etag_matches("abc", "\"abc\""));
        assert!(etag_matches("\"a\"b\"c", "abc"));
        assert!(!etag_matches("abc", "\"abd\""));
    }

    #[test]
    fn ranges() {
        assert_eq!(resume_range(0), None);
        assert_eq!(resume_range(42).as_deref(), Some("bytes=42-"));
        assert!(range_starts_at(Some("bytes 42-99/100"), 42));
        assert!(!range_starts_at(Some("bytes 0-99/100"), 42));
        assert!(!range_starts_at(None, 42));
        assert!(!range_starts_at(Some("garbage"), 42));
    }

    #[test]
    fn delays_double_and_cap() {
        let b = Duration::from_millis(100);
        assert_eq!(resume_delay(b, 1), b);
        assert_eq!(resume_delay(b, 2), b * 2);
        assert_eq!(resume_delay(b, 4), b * 8);
        assert_eq!(resume_delay(b, 30), b * 8);
    }

    #[test]
    fn github_urls() {
        assert_eq!(github_archive(BundleType::Tar), Some("tarball"));
        assert_eq!(github_archive(BundleType::Zip), Some("zipball"));
        assert_eq!(github_archive(BundleType::Tgz), None);
        assert_eq!(
            github_url("http://127.0.0.1:1/", "o", "r", "tarball", "abc"),
            "http://127.0.0.1:1/repos/o/r/tarball/abc"
        );
    }

    #[test]
    fn progress_only_for_large_bundles() {
        let five = PROGRESS_EVERY;
        assert!(!progress_due(Some(1024), 512, five));
        assert!(progress_due(Some(PROGRESS_MIN_BYTES), 1, five));
        assert!(!progress_due(
            Some(PROGRESS_MIN_BYTES),
            1,
            Duration::from_secs(1)
        ));
        assert!(progress_due(None, PROGRESS_MIN_BYTES, five));
        assert!(mib_per_s(1024 * 1024, Duration::from_secs(2)) - 0.5 < 1e-9);
    }
}
