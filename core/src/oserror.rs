//! An operating-system error inside the pure crate's error types. The pure modules never
//! perform I/O, but the views they are given (a filesystem, a revision on disk) can fail, and
//! their errors must travel typed to the edge instead of as text.
//!
//! Invariant: it displays exactly as the `io::Error` it wraps, so messages built from it are
//! the ones the wrapped error would give. It is `Clone` and `Eq` (the error types holding it
//! are compared in tests): two are equal when their kind and errno are.

use std::io;
use std::sync::Arc;

/// A shared `io::Error`, the source of a path's inspection failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct OsError(Arc<io::Error>);

impl OsError {
    /// The wrapped error.
    pub fn io(&self) -> &io::Error {
        &self.0
    }
}

impl From<io::Error> for OsError {
    fn from(e: io::Error) -> Self {
        OsError(Arc::new(e))
    }
}

impl PartialEq for OsError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.raw_os_error() == other.0.raw_os_error()
    }
}

impl Eq for OsError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn displays_as_the_wrapped_error_and_compares_by_errno() {
        let e = OsError::from(io::Error::from_raw_os_error(13));
        assert_eq!(e.to_string(), io::Error::from_raw_os_error(13).to_string());
        assert_eq!(e, OsError::from(io::Error::from_raw_os_error(13)));
        assert_ne!(e, OsError::from(io::Error::from_raw_os_error(2)));
        assert_eq!(e.io().raw_os_error(), Some(13));
        // Transparent: the source is the wrapped error's own source (none for an errno).
        assert!(e.source().is_none());
    }
}
