//! Error types of AppSpec parsing: one [`AppSpecError`] per problem, all collected in
//! [`AppSpecErrors`] so a user fixes every mistake in one round.

use std::fmt;
use std::path::PathBuf;

/// One problem in an appspec. Renders as `file:line:col: field: message`; the parts that are
/// unknown (no position for a read error, no field for a syntax error) are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpecError {
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    /// Dotted path of the offending value, e.g. `hooks.AfterInstall[0].timeout`; empty for
    /// problems of the document as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for AppSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for AppSpecError {}

/// Every problem found in one appspec, in file order (by line, then column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpecErrors(pub Vec<AppSpecError>);

impl AppSpecErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, AppSpecError> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AppSpecErrors {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppSpecErrors {}

impl<'a> IntoIterator for &'a AppSpecErrors {
    type Item = &'a AppSpecError;
    type IntoIter = std::slice::Iter<'a, AppSpecError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// No appspec file could be read from a bundle directory. Every variant but `NotFound` is a
/// refusal made without opening the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppSpecLocateError {
    #[error("no AppSpec file found in {}: tried {}", crate::names::Shown(.bundle), tried_list(.tried))]
    NotFound {
        bundle: PathBuf,
        tried: Vec<PathBuf>,
    },
    /// The name leads outside the revision: through a symbolic link (absolute, or climbing
    /// out with `..`), or with its own `..` (`link` is then `..`).
    #[error("the AppSpec file {name} in {} leads outside the revision through the symbolic link {link}; it was not opened (the AppSpec file must be a regular file inside the revision)", crate::names::Shown(.bundle))]
    LeavesRevision {
        bundle: PathBuf,
        name: String,
        link: String,
    },
    #[error("the AppSpec file {name} in {} is {what}, not a regular file; it was not opened", crate::names::Shown(.bundle))]
    NotRegular {
        bundle: PathBuf,
        name: String,
        what: &'static str,
    },
    #[error("cannot inspect the AppSpec file {name} in {}: {source}", crate::names::Shown(.bundle))]
    Inspect {
        bundle: PathBuf,
        name: String,
        #[source]
        source: crate::oserror::OsError,
    },
}

fn tried_list(tried: &[PathBuf]) -> String {
    tried
        .iter()
        .map(|p| crate::names::path(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
