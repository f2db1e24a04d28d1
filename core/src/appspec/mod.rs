//! PURE: AppSpec text -> validated [`AppSpec`].
//!
//! Invariants: parsing never panics and runs in time linear in the input; every error names
//! the file, the line and column when known, and the field, and says what was expected.
//! All problems of a file are reported together, not only the first.
//!
//! Layers: [`yaml`] turns text into a positioned node tree (no typing, no alias expansion);
//! `convert`/`permissions` type it against the AppSpec rules; [`grammar`] holds the small
//! string grammars (mode, ACL entry, SELinux range). The only I/O is in `locate`
//! ([`find_appspec`], [`parse_file`]), a thin reader kept apart from the pure parts.

mod convert;
pub mod error;
pub mod events;
pub mod grammar;
pub mod model;
mod permissions;
mod summary;
mod typing;
pub mod yaml;

pub use convert::MAX_EVENT_TIMEOUT_SECS;
pub use error::{AppSpecError, AppSpecErrors, AppSpecLocateError};
pub use events::{
    event_name_problem, is_lifecycle_hook_event, is_reserved_event, LIFECYCLE_HOOK_EVENTS,
    RESERVED_EVENTS,
};
pub use model::*;
pub use summary::summary;

/// A validated appspec plus the warnings found on the way (unknown keys, which are ignored as
/// the official agent ignores them, but are worth showing to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub spec: AppSpec,
    pub warnings: Vec<AppSpecError>,
}

/// Parses and validates an appspec for a Linux host. `file_name` is only used in messages.
pub fn parse(file_name: &str, text: &str) -> Result<AppSpec, AppSpecErrors> {
    parse_detailed(file_name, text).map(|p| p.spec)
}

/// Like [`parse`], also returning the warnings.
pub fn parse_detailed(file_name: &str, text: &str) -> Result<Parsed, AppSpecErrors> {
    let mut ctx = typing::Ctx::new(file_name);
    let doc = match yaml::load(text) {
        Ok(doc) => doc,
        Err(e) => {
            let error = AppSpecError {
                file: file_name.to_string(),
                line: e.pos.map(|p| p.line),
                col: e.pos.map(|p| p.col),
                field: String::new(),
                message: e.message,
            };
            return Err(AppSpecErrors(vec![error]));
        }
    };
    let spec = convert::convert(&mut ctx, &doc);
    let by_place = |e: &AppSpecError| (e.line.unwrap_or(0), e.col.unwrap_or(0));
    ctx.errors.sort_by_key(by_place);
    ctx.warnings.sort_by_key(by_place);
    match spec {
        Some(spec) if ctx.errors.is_empty() => Ok(Parsed {
            spec,
            warnings: ctx.warnings,
        }),
        _ => {
            if ctx.errors.is_empty() {
                // convert() returns None only after recording an error; keep the promise
                // of "never an empty error list" even if that invariant is ever broken.
                ctx.err_nopos("", "the AppSpec file could not be validated");
            }
            Err(AppSpecErrors(ctx.errors))
        }
    }
}
