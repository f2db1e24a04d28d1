//! codedeploy-core: the pure decisions of the CodeDeploy agent (ARCHITECTURE.md, "One law").
//!
//! Every module takes plain data and returns plain data: none touches the disk, the network,
//! the clock or processes, and each is unit-tested as plain functions. Being a crate of its
//! own makes that a compile-time rule: it cannot name the agent's adapters, its
//! `[dependencies]` hold no I/O crate, and `unsafe` is forbidden
//! (docs/adr/0009-pure-crate.md). The agent crate re-exports each module under the same path
//! (`codedeploy_agent::plan`, ...).
#![forbid(unsafe_code)]

pub mod appspec; // YAML text -> validated AppSpec, with positions in every error
pub mod deployspec; // deployment specification fields (decoded from the service's JSON)
pub mod diagnostics; // script outcome -> error code 0..7 and payload; log-tail rule
pub mod lifecycle; // the one Event list and name rule, their order, which revision runs which event
pub mod links; // where a path in a revision leads through its links, never leaving it
pub mod names; // names are bytes; the one round-tripping escaping for text
pub mod oserror; // an io::Error carried typed (and comparable) inside the pure error types
pub mod plan; // install plan, cleanup journal parsing, retention of old revisions
pub mod progress;
pub mod reboot; // reboot and resume: the paused deployment's record, what to do with it at start // when progress is reported, rate, time left, the text
