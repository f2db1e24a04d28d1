//! The agent's conversation with AWS: the host-command client (AWS JSON 1.1 + SigV4),
//! endpoint resolution, shared error backoff, host identity and credentials (instance
//! metadata or on-premises), and the signed deployment-specification envelope.
//!
//! Invariants: endpoint resolution, wire shapes and the backoff curve are pure and unit
//! tested; credentials are refreshed in place by their providers, never by a restart; a
//! deployment specification is used only after its PKCS#7 signature has been verified.

mod backoff;
mod client;
mod creds;
mod endpoint;
mod error;
mod identity;
mod imds;
mod limit;
mod spec;
mod wire;

pub use backoff::{
    base_delay_secs, complete_until_accepted, Backoff, Failure, JITTER, MAX_FAILURES,
};
pub use client::{
    http_client, install_crypto_provider, redact_userinfo, ClientSettings, CommandClient,
    AGENT_VERSION_HEADER,
};
pub use creds::{
    parse_credentials_file, static_credentials, CredentialsFileError, FileKeys, OnPremisesKeys,
    SessionFileCause, SessionFileCredentials, SessionFileError, REFRESH_MARGIN,
    SESSION_FILE_LIFETIME,
};
pub use endpoint::{
    domain_for_region, partition_for_region, resolve_endpoint, EndpointInputs, ResolvedEndpoint,
};
pub use error::ControlError;
pub use identity::{instance_arn, resolve_identity, resolve_identity_with, EnvOverrides, Identity};
pub use imds::{
    parse_identity_document, parse_role_credentials, parse_timestamp, DocumentError,
    IdentityDocument, Imds, ImdsRoleCredentials,
};
pub use limit::{Oversized, MAX_METADATA_ANSWER, MAX_SERVICE_ANSWER};
pub use spec::{
    open_and_decode, open_envelope, open_envelope_at, AlgoError, Cert, DecodeError, ParseError,
    PemError, Pkcs7Failure, SignatureError, SignerInfoError, SpecEnvelopeError, SpecFormatPolicy,
    TlvError, TrustAnchors, TrustError, TrustStoreError, FORMAT_PKCS7_JSON, FORMAT_TEXT_JSON,
};
pub use wire::{AckPayload, CommandStatus, Envelope, HostCommand, SpecResponse};

/// Entry points for the fuzz targets in `fuzz/` (not an API). The decoders of the service's
/// answers are only reached through an HTTP exchange otherwise, and the fuzzer must call them
/// on raw bytes; keeping them behind this hidden module leaves `wire` private.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::wire::{parse_ack, parse_error, parse_poll, parse_spec};
}
