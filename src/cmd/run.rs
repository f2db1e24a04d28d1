//! `codedeploy-agent run`: the daemon's start-up ([`startup::daemon`]), then the agent on a
//! small multi-threaded runtime (two workers: the poll loop and HTTP; commands run on the
//! blocking pool).

use super::startup::{self, StartupError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config_file: Option<&Path>) -> Result<(), RunError> {
    let (config, _guard) = startup::daemon(config_file)?;
    crate::control::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(crate::agent::MAX_CONCURRENT_COMMANDS + 8)
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(crate::agent::run(config))?;
    Ok(())
}
