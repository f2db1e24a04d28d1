//! Why a plan was refused. Where the official agent has a message for the case, the text is
//! the official one verbatim (operators search for it); [`PlanError::location`] adds the
//! appspec field and position.

use crate::appspec::model::Pos;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("The deployment failed because the application specification file includes an mkdir command more than once for the same destination path ({path}) from ({src}). Update the files section of the AppSpec file, and then try again.")]
    MkdirOverCopy { path: String, src: String, pos: Pos },

    #[error("The deployment failed because the application specification file specifies two source files named {src} and {other} for the same destination ({path}). Remove one of the source file paths from the AppSpec file, and then try again.")]
    DuplicateCopy {
        path: String,
        src: String,
        other: String,
        pos: Pos,
    },

    #[error("The deployment failed because the application specification file calls for installing the file {src}, but a file with that name already exists at the location ({path}). Update your AppSpec file or directory structure, and then try again.")]
    CopyOverMkdir { path: String, src: String, pos: Pos },

    /// DISALLOW met an existing object (file, directory, symlink or special file).
    #[error(
        "The deployment failed because a specified file already exists at this location: {path}"
    )]
    FileExists { path: String, pos: Pos },

    /// OVERWRITE never replaces a directory with a file: that would delete a tree the
    /// revision did not install.
    #[error("The deployment failed because the file {src} would replace the directory {path}, and OVERWRITE does not replace directories with files. Remove the directory or change the files section of the AppSpec file, and then try again.")]
    DirectoryInTheWay { path: String, src: String, pos: Pos },

    #[error("The deployment failed because the source {src} named in the files section of the AppSpec file does not exist in the revision.")]
    MissingSource { src: String, pos: Pos },

    #[error("The deployment failed because the source {src} named in the files section of the AppSpec file lies outside the revision.")]
    SourceOutsideBundle { src: String, pos: Pos },

    /// A link on the way of a `files` source points outside the revision (its absolute
    /// text, or a `..` climbing out). Reading through it would copy host files.
    #[error("The deployment failed because the source {src} named in the files section of the AppSpec file leads outside the revision through the symbolic link {link}; links that leave the revision are copied as links and never followed.")]
    SourceLeavesRevision { src: String, link: String, pos: Pos },

    #[error("The deployment failed because the revision entry {path} is a FIFO, socket or device and cannot be installed.")]
    SpecialSource { path: String, pos: Pos },

    #[error(
        "The deployment failed because the revision directory {path} contains a symlink loop."
    )]
    SourceLoop { path: String, pos: Pos },

    #[error("The deployment failed because the path {path} contains a newline and cannot be recorded in the cleanup file.")]
    NewlineInPath { path: String, pos: Pos },

    #[error("The deployment failed because the files section of the AppSpec file names more entries than one install can hold (over 4 billion).")]
    TooManyEntries { pos: Pos },

    /// The plan's records could not be written to, or read back from, the spill the agent
    /// keeps them in (its disk is full or failing).
    #[error("cannot keep the install plan in its spill file: {source}")]
    Spill {
        #[source]
        source: crate::oserror::OsError,
    },

    /// The previous revision's cleanup journal (or its index) could not be read.
    #[error("cannot read the previous revision's cleanup journal: {source}")]
    Journal {
        #[source]
        source: crate::oserror::OsError,
    },

    #[error("cannot inspect {path}: {source}")]
    Inspect {
        path: String,
        #[source]
        source: crate::oserror::OsError,
    },

    #[error("The deployment failed because the application specification file includes an object ({object}) with an invalid pattern ({pattern}), such as a pattern for a file applied to a directory. Update the objects and patterns in the permissions section of the AppSpec file, and then try again.")]
    InvalidPattern {
        object: String,
        pattern: String,
        pos: Pos,
    },

    #[error("The deployment failed because the except parameter for a pattern in the permissions section ({except}) for the object named {object} contains an invalid format. Update the except parameter in the permissions section of the AppSpec file, and then try again.")]
    InvalidExcept {
        object: String,
        except: String,
        pos: Pos,
    },

    #[error("The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This parameter is supported for directories only. Update the AppSpec file, and then try again.")]
    DefaultAclOnFile { path: String, pos: Pos },

    #[error("The deployment failed because the permissions setting for ({path}) is specified more than once in the application specification file. Update the files section of the AppSpec file, and then try again.")]
    DuplicatePermission { path: String, pos: Pos },
}

impl PlanError {
    /// The appspec section and position the error comes from, when it comes from one.
    pub fn location(&self) -> Option<(&'static str, Pos)> {
        use PlanError::*;
        match self {
            MkdirOverCopy { pos, .. }
            | DuplicateCopy { pos, .. }
            | CopyOverMkdir { pos, .. }
            | FileExists { pos, .. }
            | DirectoryInTheWay { pos, .. }
            | MissingSource { pos, .. }
            | SourceOutsideBundle { pos, .. }
            | SourceLeavesRevision { pos, .. }
            | SpecialSource { pos, .. }
            | SourceLoop { pos, .. }
            | NewlineInPath { pos, .. }
            | TooManyEntries { pos } => Some(("files", *pos)),
            InvalidPattern { pos, .. }
            | InvalidExcept { pos, .. }
            | DefaultAclOnFile { pos, .. }
            | DuplicatePermission { pos, .. } => Some(("permissions", *pos)),
            Inspect { .. } | Spill { .. } | Journal { .. } => None,
        }
    }

    /// The message followed by where in the appspec it comes from, for logs and the CLI.
    pub fn with_location(&self) -> String {
        match self.location() {
            Some((field, pos)) if pos.line > 0 => {
                format!("{self} (appspec {field} entry at line {})", pos.line)
            }
            _ => self.to_string(),
        }
    }
}
