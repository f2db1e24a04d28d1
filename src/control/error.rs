//! The one error type of the host-command client, identity and credential code.
//!
//! Invariant: every message names the operation (or the identity step) that failed, the
//! service's error type when there is one, and the service's message verbatim.

/// A failed call to the host-command service, the metadata service or a credential source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The service asked us to slow down (HTTP 429 or a throttling error type).
    #[error("{operation}: throttled (HTTP {status}, {type_}): {message}")]
    Throttled {
        operation: String,
        status: u16,
        type_: String,
        message: String,
    },
    /// HTTP 5xx.
    #[error("{operation}: service error (HTTP {status}, {type_}): {message}")]
    Server {
        operation: String,
        status: u16,
        type_: String,
        message: String,
    },
    /// HTTP 4xx other than throttling: the request or the credentials are wrong.
    #[error("{operation}: request refused (HTTP {status}, {type_}): {message}")]
    Client {
        operation: String,
        status: u16,
        type_: String,
        message: String,
    },
    /// No answer: connection refused, reset, timed out, TLS failure, proxy failure.
    #[error("{operation}: network error: {message}")]
    Network { operation: String, message: String },
    /// An answer that is not what the API model says.
    #[error("{operation}: cannot decode the answer: {message}")]
    Decode { operation: String, message: String },
    /// No usable credentials.
    #[error("{operation}: missing credentials: {message}")]
    Credentials { operation: String, message: String },
    /// Instance metadata did not answer, or answered nonsense.
    #[error("instance metadata {path}: {message}")]
    Metadata { path: String, message: String },

    /// A metadata document (identity, role credentials) that does not read as one.
    #[error("instance metadata {path}: {source}")]
    MetadataDocument {
        path: String,
        #[source]
        source: super::imds::DocumentError,
    },

    /// The on-premises session credentials file could not give keys.
    #[error("{operation}: missing credentials: {source}")]
    CredentialsFile {
        operation: String,
        #[source]
        source: super::creds::SessionFileError,
    },
    /// Settings that cannot produce a client (bad endpoint, region, proxy).
    #[error("{what}: {message}")]
    Config { what: String, message: String },
}

/// Error types that are worth retrying although the status is 4xx: the request may succeed
/// once the clock, the token or the service's state has moved on.
const TRANSIENT_CLIENT_TYPES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "IDPCommunicationError",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
];

/// Error types the AWS SDKs treat as throttling.
const THROTTLING_TYPES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
];

impl ControlError {
    /// True for failures that a later attempt of the same request may not meet: throttling,
    /// 5xx, network trouble, missing (perhaps not yet refreshed) credentials, expired tokens.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. }
            | Self::Server { .. }
            | Self::Network { .. }
            | Self::Credentials { .. }
            | Self::CredentialsFile { .. }
            | Self::Metadata { .. }
            | Self::MetadataDocument { .. } => true,
            Self::Client { type_, .. } => TRANSIENT_CLIENT_TYPES.contains(&type_.as_str()),
            Self::Decode { .. } | Self::Config { .. } => false,
        }
    }

    /// True when the service throttled the request.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled { .. })
    }

    /// The service's error type (`ClientException`, `AccessDeniedException`, ...), if any.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::Throttled { type_, .. }
            | Self::Server { type_, .. }
            | Self::Client { type_, .. } => Some(type_),
            _ => None,
        }
    }

    /// Classifies an HTTP error answer of `operation`.
    pub fn from_http(operation: &str, status: u16, type_: String, message: String) -> Self {
        let operation = operation.to_string();
        if status == 429 || THROTTLING_TYPES.contains(&type_.as_str()) {
            Self::Throttled {
                operation,
                status,
                type_,
                message,
            }
        } else if status >= 500 {
            Self::Server {
                operation,
                status,
                type_,
                message,
            }
        } else {
            Self::Client {
                operation,
                status,
                type_,
                message,
            }
        }
    }

    pub(crate) fn config(what: &str, message: impl Into<String>) -> Self {
        Self::Config {
            what: what.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let t = ControlError::from_http(
            "PollHostCommand",
            400,
            "ThrottlingException".into(),
            "Rate exceeded".into(),
        );
        assert!(t.is_throttling() && t.is_retryable());
        assert_eq!(
            t.to_string(),
            "PollHostCommand: throttled (HTTP 400, ThrottlingException): Rate exceeded"
        );
        assert!(ControlError::from_http("X", 429, "".into(), "".into()).is_throttling());
        let s = ControlError::from_http("X", 503, "ServerException".into(), "busy".into());
        assert!(matches!(s, ControlError::Server { status: 503, .. }) && s.is_retryable());
        let c = ControlError::from_http("X", 400, "AccessDeniedException".into(), "no".into());
        assert!(matches!(c, ControlError::Client { .. }) && !c.is_retryable());
        assert_eq!(c.error_type(), Some("AccessDeniedException"));
        assert!(
            ControlError::from_http("X", 403, "ExpiredTokenException".into(), "".into())
                .is_retryable()
        );
        assert!(!ControlError::Decode {
            operation: "X".into(),
            message: "m".into()
        }
        .is_retryable());
    }
}
