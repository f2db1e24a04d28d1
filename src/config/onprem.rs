//! The on-premises configuration file (docs/behaviour/configuration.md#on-premises-file): how a
//! host outside EC2 names itself and finds its credentials.
//!
//! Invariant: a parsed file is one of the two complete modes or inert; a half-filled mode is
//! an error naming the missing key.

use super::{flat_yaml, ConfigError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnPremises {
    /// The file exists but names no identity: EC2 metadata is used instead.
    Inert,
    /// Static keys of an IAM user.
    IamUser {
        region: String,
        host_identifier: String,
        access_key_id: String,
        secret_access_key: String,
    },
    /// Temporary credentials in a shared-credentials file that something else refreshes.
    IamSession {
        region: String,
        host_identifier: String,
        credentials_file: PathBuf,
    },
}

pub fn parse(file: &Path, text: &str) -> Result<OnPremises, ConfigError> {
    let err = |line: Option<usize>, key: Option<&str>, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        key: key.map(str::to_string),
        message,
    };
    let entries = flat_yaml::parse(text).map_err(|e| {
        err(
            Some(e.line),
            None,
            format!(
                "the format of this on-premises configuration file is invalid: {}",
                e.message
            ),
        )
    })?;
    let get = |key: &str| {
        entries
            .iter()
            .rev()
            .find_map(|e| match (&e.value, e.key == key) {
                (flat_yaml::Value::Scalar { text, .. }, true) if !text.trim().is_empty() => {
                    Some(text.trim().to_string())
                }
                _ => None,
            })
    };
    let user_arn = get("iam_user_arn");
    let session_arn = get("iam_session_arn");
    let need = |key: &str, mode: &str| {
        get(key).ok_or_else(|| {
            err(
                None,
                Some(key),
                format!("'{key}' key is required when '{mode}' is provided."),
            )
        })
    };
    match (user_arn, session_arn) {
        (Some(_), Some(_)) => Err(err(
            None,
            None,
            "On Premises config cannot contain both 'iam_user_arn' and 'iam_session_arn' keys."
                .into(),
        )),
        (Some(arn), None) => Ok(OnPremises::IamUser {
            region: need("region", "iam_user_arn")?,
            access_key_id: need("aws_access_key_id", "iam_user_arn")?,
            secret_access_key: need("aws_secret_access_key", "iam_user_arn")?,
            host_identifier: arn,
        }),
        (None, Some(arn)) => Ok(OnPremises::IamSession {
            region: need("region", "iam_session_arn")?,
            credentials_file: PathBuf::from(need("aws_credentials_file", "iam_session_arn")?),
            host_identifier: arn,
        }),
        (None, None) => Ok(OnPremises::Inert),
    }
}

/// Reads the file; a missing or unreadable file is `None` (the host is then an EC2 instance).
pub fn load(file: &Path) -> Result<Option<OnPremises>, ConfigError> {
    match std::fs::read_to_string(file) {
        Ok(text) => parse(file, &text).map(Some),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Result<OnPremises, ConfigError> {
        parse(Path::new("/etc/op.yml"), t)
    }

    #[test]
    fn modes() {
        assert_eq!(p("---\n").unwrap(), OnPremises::Inert);
        assert_eq!(
            p("region: us-east-1\niam_user_arn: arn:aws:iam::1:user/h\naws_access_key_id: AK\naws_secret_access_key: SK\n").unwrap(),
            OnPremises::IamUser {
                region: "us-east-1".into(),
                host_identifier: "arn:aws:iam::1:user/h".into(),
                access_key_id: "AK".into(),
                secret_access_key: "SK".into()
            }
        );
        assert!(matches!(
            p("region: r\niam_session_arn: arn:aws:sts::1:assumed-role/x/h\naws_credentials_file: /etc/c\n").unwrap(),
            OnPremises::IamSession { .. }
        ));
    }

    #[test]
    fn errors() {
        let both = p("iam_user_arn: a\niam_session_arn: b\n").unwrap_err();
        assert!(both.message.contains("cannot contain both"));
        let missing =
            p("iam_user_arn: a\naws_access_key_id: k\naws_secret_access_key: s\n").unwrap_err();
        assert_eq!(
            missing.message,
            "'region' key is required when 'iam_user_arn' is provided."
        );
        let missing = p("iam_session_arn: a\nregion: r\n").unwrap_err();
        assert!(missing
            .message
            .contains("'aws_credentials_file' key is required"));
        assert!(p("a: [").unwrap_err().message.contains("invalid"));
    }
}
