//! Errors of bundle unpacking. Every variant names the bundle; every variant about one
//! archive member names that member, so an operator can find it with `tar tvf`/`unzip -l`.
//!
//! Member names are shown through [`crate::names`] (bytes that are not UTF-8 as `\xHH`),
//! quoted as they are.
//!
//! Refusals say that the archive dir may hold a partial extraction: nothing is ever written
//! outside it, but what was unpacked before the bad member stays (the caller removes the
//! archive dir before the next attempt, as the official agent does).

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
         {archive_dir}, which may hold a partial extraction"
    )]
    Refused {
        bundle: PathBuf,
        entry: String,
        reason: Unsafe,
        archive_dir: PathBuf,
    },
    #[error(
        "bundle {bundle}: entry \"{entry}\" takes the unpacked size past the limit of {limit} bytes \
         (archive_max_extraction_size); {archive_dir} may hold a partial extraction"
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
    #[error("bundle {bundle}: zip entry \"{entry}\": {source}")]
    Zip {
        bundle: PathBuf,
        /// Empty when the archive as a whole is unreadable.
        entry: String,
        #[source]
        source: zip::result::ZipError,
    },
}
