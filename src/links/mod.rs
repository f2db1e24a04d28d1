//! Links inside a revision: the pure walk is `codedeploy_core::links` (re-exported here so
//! paths stay `crate::links::...`); `disk` adds the lstat/readlink view of a revision on disk
//! and `O_NOFOLLOW` opens.

pub use codedeploy_core::links::*;

pub mod disk;
