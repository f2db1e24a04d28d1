//! The appspec: the pure parser and rules are `codedeploy_core::appspec` (re-exported here so
//! paths stay `crate::appspec::...`); this module adds the one part that reads the disk,
//! finding and reading the appspec file of an unpacked revision (`locate`).

pub use codedeploy_core::appspec::*;

mod locate;
pub use locate::{
    appspec_text, candidate_names, find_appspec, locate_appspec, parse_file, APPSPEC_DEFAULT_NAMES,
    MAX_APPSPEC_BYTES,
};
