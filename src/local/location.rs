//! PURE: what a `--bundle-location` names (docs/behaviour/local-cli.md#local-argument-checks,
//! docs/behaviour/local-cli.md#local-deployment).

use crate::deployspec::BundleType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
        etag: Option<String>,
    },
    GitHub {
        account: String,
        repository: String,
        commit: String,
    },
    /// A local path, as given (made absolute by the caller).
    Local(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(pub String);

pub fn parse_type(t: &str) -> Result<BundleType, LocationError> {
    BundleType::parse(t).ok_or_else(|| {
        LocationError(format!(
            "type {t} is not a valid type. Must be one of tgz,tar,zip,directory"
        ))
    })
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}

pub fn parse(location: &str) -> Result<Location, LocationError> {
    let bad = |m: String| Err(LocationError(m));
    if location.is_empty() || location.contains('\0') {
        return bad(format!("location {location:?} is not a valid uri"));
    }
    let scheme = location
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .filter(|s| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
    match scheme.as_deref() {
        Some("http") => bad(format!(
            "location {location} cannot be http, only encrypted (https) url endpoints supported"
        )),
        Some("s3") => {
            let rest = &location[5..];
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            match path.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    version: query_param(query, "versionId"),
                    etag: query_param(query, "etag"),
                }),
                _ => bad(format!(
                    "s3 location {location} not in the expected format of 's3://bucket/key'"
                )),
            }
        }
        Some("https") => {
            let rest = &location[8..];
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let gh_err = || {
                LocationError(format!("github location {location} not in the expected format of 'https://github.com/<owner>/<repository_name>'(assumes HEAD commit) or 'https://api.github.com/repos/<owner>/<repository_name>/tarball/<commit>' or 'https://api.github.com/repos/<owner>/<repository_name>/zipball/<commit>'"))
            };
            if !host.ends_with("github.com") {
                return bad(format!(
                    "unknown location {location} cannot be determined to be S3, Github, or a local file / directory"
                ));
            }
            if host == "api.github.com" {
                match parts.as_slice() {
                    ["repos", owner, repo, _, commit] => Ok(Location::GitHub {
                        account: owner.to_string(),
                        repository: repo.to_string(),
                        commit: commit.to_string(),
                    }),
                    _ => Err(gh_err()),
                }
            } else {
                match parts.as_slice() {
                    [owner, repo, ..] => Ok(Location::GitHub {
                        account: owner.to_string(),
                        repository: repo.trim_end_matches(".git").to_string(),
                        commit: "HEAD".into(),
                    }),
                    _ => Err(gh_err()),
                }
            }
        }
        Some("file") => Ok(Location::Local(location[7..].to_string())),
        Some(_) => bad(format!(
            "unknown location {location} cannot be determined to be S3, Github, or a local file / directory"
        )),
        None => Ok(Location::Local(location.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(parse("/tmp/b").unwrap(), Location::Local("/tmp/b".into()));
        assert_eq!(parse("rel/dir").unwrap(), Location::Local("rel/dir".into()));
        assert_eq!(
            parse("file:///tmp/b").unwrap(),
            Location::Local("/tmp/b".into())
        );
        assert_eq!(
            parse("s3://bkt/path/to/b.zip?versionId=v1&etag=e1").unwrap(),
            Location::S3 {
                bucket: "bkt".into(),
                key: "path/to/b.zip".into(),
                version: Some("v1".into()),
                etag: Some("e1".into())
            }
        );
        assert_eq!(
            parse("https://github.com/own/repo").unwrap(),
            Location::GitHub {
                account: "own".into(),
                repository: "repo".into(),
                commit: "HEAD".into()
            }
        );
        assert_eq!(
            parse("https://api.github.com/repos/own/repo/zipball/abc123").unwrap(),
            Location::GitHub {
                account: "own".into(),
                repository: "repo".into(),
                commit: "abc123".into()
            }
        );
    }

    #[test]
    fn refusals() {
        let cases = [
            ("http://x/y", "cannot be http"),
            ("s3://bucket-only", "s3://bucket/key"),
            ("https://example.com/x", "unknown location"),
            ("https://api.github.com/repos/own", "github location"),
            ("ftp://x/y", "unknown location"),
        ];
        for (loc, want) in cases {
            let e = parse(loc).unwrap_err();
            assert!(e.0.contains(want), "{loc}: {e}");
        }
        assert!(parse_type("rar")
            .unwrap_err()
            .0
            .contains("Must be one of tgz,tar,zip,directory"));
    }
}
