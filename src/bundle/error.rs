//! Errors of bundle unpacking. Every variant names the bundle; every variant about one
//! archive member names that member, so an operator can find it with `tar tvf`/`unzip -l`.
//!
//! Member names are shown through [`crate::names`] (bytes that are not UTF-8 as `\xHH`),
//! quoted as they are.
//!
//! A failed or refused unpack removes what it wrote (the archive dir and the strip rule's
//! temp dir); if that removal fails, [`BundleError::LeftBehind`] says so and where.

use std::io;
use std::path::PathBuf;

use super::BundleType;

/// Why a member was refused. These checks are always on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    #[error("absolute path")]
    AbsolutePath,
    #[error("path escapes the archive dir with '..'")]
    Escapes,
    #[error("path goes through the symlink \"{component}\"")]
    ThroughSymlink { component: String },
    #[error("hard link to \"{target}\" points outside the archive dir")]
    HardLinkOutside { target: String },
    #[error("{0} entries are not allowed in bundles")]
    Special(&'static str),
    #[error("setuid/setgid file (mode {mode:o}) refused by reject_unsafe_permissions_in_bundle")]
    Setuid { mode: u32 },
    #[error("path contains a NUL byte")]
    NulByte,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {bundle} was declared {declared} but is {actual}")]
    TypeMismatch {
        bundle: PathBuf,
        declared: BundleType,
        actual: &'static str,
    },
    #[error(
        "bundle {bundle}: entry \"{entry}\" refused: {reason}; nothing was written outside \
         {archive_dir}, and the partial extraction was removed"
    )]
    Refused {
        bundle: PathBuf,
        entry: String,
        reason: Unsafe,
        archive_dir: PathBuf,
    },
    #[error(
        "bundle {bundle}: entry \"{entry}\" takes the unpacked size past the limit of {limit} bytes \
         (archive_max_extraction_size); the partial extraction in {archive_dir} was removed"
    )]
    TooLarge {
        bundle: PathBuf,
        entry: String,
        limit: u64,
        archive_dir: PathBuf,
    },
    #[error(
        "bundle {bundle}: entry \"{entry}\" conflicts with an existing {existing} in the archive dir"
    )]
    Conflict {
        bundle: PathBuf,
        entry: String,
        existing: &'static str,
    },
    #[error("bundle {bundle}: malformed archive at entry \"{entry}\": {detail}")]
    Malformed {
        bundle: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("bundle {bundle}: reading at entry \"{entry}\": {source}")]
    Read {
        bundle: PathBuf,
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("bundle {bundle}: writing entry \"{entry}\" under {archive_dir}: {source}")]
    Write {
        bundle: PathBuf,
        entry: String,
        archive_dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bundle {bundle}: {what}")]
    Unsupported { bundle: PathBuf, what: String },
    /// Unpacking would take the file system into the reserve: refused before the bytes are
    /// written (`entry` empty: refused before the first member, from the bundle's known size).
    #[error(
        "bundle {bundle}: {}{space}; nothing of it was kept",
        if entry.is_empty() { String::new() } else { format!("entry \"{entry}\": ") }
    )]
    NoSpace {
        bundle: PathBuf,
        entry: String,
        space: Box<crate::space::NoSpace>,
    },
    /// The unpack failed and removing what it wrote failed too.
    #[error("{error}; removing what it wrote from {path} failed too: {source}")]
    LeftBehind {
        error: Box<BundleError>,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bundle {bundle}: zip entry \"{entry}\": {source}")]
    Zip {
        bundle: PathBuf,
        /// Empty when the archive as a whole is unreadable.
        entry: String,
        #[source]
        source: zip::result::ZipError,
    },
}
