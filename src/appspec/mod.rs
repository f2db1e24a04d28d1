//! PURE: AppSpec text -> validated [`AppSpec`].
//!
//! Invariants: parsing never panics and runs in time linear in the input; every error names
//! the file, the line and column when known, and the field, and says what was expected.

pub mod model;

pub use model::*;
