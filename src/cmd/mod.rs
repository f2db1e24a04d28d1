//! One entry per subcommand. Each `run()` takes the arguments clap already parsed, does the
//! shared start-up through [`startup`], calls the library, and returns a typed result that
//! `main.rs` maps to the exit code (and, for errors, to the message on standard error).
//!
//! Invariants: no parsing here (clap did it, `crate::cli`); no decisions either: a `run()` is
//! the order of calls for its command. Configuration and logging are set up only through
//! [`startup`], so every command finds and checks its configuration the same way.

pub mod deploy_local; // `deploy-local` (and `codedeploy-local`): checks, config, local driver
pub mod logs; // `logs [--follow]`
pub mod run; // `run`: the daemon on its tokio runtime
pub mod startup; // configuration and logging for every command
pub mod status; // `status [--json]`: LSB exit code
pub mod validate; // `validate`: bundle -> report, rendered by `validate::render`
