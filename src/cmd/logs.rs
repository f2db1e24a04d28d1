//! `codedeploy-agent logs [--follow] [--deployment ID] [--group ID] [--event NAME]`.

use super::startup::{self, StartupError};
use crate::cli::LogsArgs;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub fn run(args: &LogsArgs, config_file: Option<&Path>) -> Result<(), LogsError> {
    startup::tool_logging();
    let cfg = startup::tool_config(config_file)?;
    // Buffered: a long history is written in large writes; `logs` flushes after each
    // follow round, so what is followed shows at once.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    crate::logs::run(&cfg, args, &mut out)?;
    Ok(())
}
