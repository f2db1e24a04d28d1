//! Service errors in the AWS JSON 1.1 form and the emulator's own library errors.
//!
//! An [`ApiError`] is what a host sees: an HTTP status, a `__type` whose part after `#` is the
//! code the SDKs switch on, and a `message`. The codes and texts follow what the real service
//! answers, so an agent's error handling is exercised as it would be in production.

use std::path::PathBuf;

/// An error answered to a host-command API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    /// Bare code, e.g. `ThrottlingException`.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(400, "ClientException", message)
    }
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(500, "ServerException", message)
    }
    pub fn throttling() -> Self {
        Self::new(400, "ThrottlingException", "Rate exceeded")
    }
    pub fn unknown_operation(target: &str) -> Self {
        Self::new(
            400,
            "UnknownOperationException",
            format!("Unknown operation {target}"),
        )
    }
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }
    pub fn missing_token() -> Self {
        Self::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }
    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::new(400, "IncompleteSignatureException", message)
    }
    pub fn unrecognized_client() -> Self {
        Self::new(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(403, "InvalidSignatureException", message)
    }
    pub fn signature_mismatch() -> Self {
        Self::invalid_signature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        )
    }

    /// The `__type` value: coral-framework errors carry the coral namespace, modelled ones the
    /// service's, as the real endpoints do.
    pub fn type_name(&self) -> String {
        let ns = match self.code {
            "ClientException" | "ServerException" => "com.amazonaws.codedeploy.commands",
            _ => "com.amazon.coral.service",
        };
        format!("{ns}#{}", self.code)
    }

    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.type_name(), "message": self.message }).to_string()
    }
}

/// Errors of the emulator as a library (start-up, persistence, PKI, admin input).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path}: {source}")]
    StateFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("certificate authority: {0}")]
    Pki(#[from] openssl::error::ErrorStack),
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
}

impl EmulatorError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EmulatorError::Io {
            path: path.into(),
            source,
        }
    }
}
