//! Bounded reads of HTTP answers: the command service and instance metadata are trusted
//! endpoints, but an answer is read whole into memory, so a broken or impersonated endpoint
//! (a misconfigured proxy, a wrong `deploy_control_endpoint`) must not be able to make the
//! agent, which runs as root on every host, hold an unbounded body.
//!
//! Invariant: never more than `limit` bytes of a body are kept; a longer body (by its
//! Content-Length or as it streams) is an [`Oversized`] error naming the limit.

/// The largest command-service answer read: the largest real ones (deployment
/// specifications) are tens of KiB.
pub const MAX_SERVICE_ANSWER: usize = 8 << 20;
/// The largest instance-metadata answer read: its documents are a few hundred bytes.
pub const MAX_METADATA_ANSWER: usize = 64 << 10;

/// A body longer than the limit; `seen` is what was announced or read before stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the answer is longer than the {limit} bytes the agent reads (at least {seen} bytes); refused"
)]
pub struct Oversized {
    pub limit: usize,
    pub seen: u64,
}

/// Why a bounded read failed.
#[derive(Debug)]
pub enum ReadError {
    Oversized(Oversized),
    Http(reqwest::Error),
}

/// Reads `resp`'s body, at most `limit` bytes.
pub async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    let too_long = |seen: u64| ReadError::Oversized(Oversized { limit, seen });
    let announced = resp.content_length();
    if let Some(n) = announced.filter(|&n| n > limit as u64) {
        return Err(too_long(n));
    }
    let mut body = Vec::with_capacity(announced.map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(too_long((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
