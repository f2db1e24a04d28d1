//! `codedeploy-agent deploy-local` and `codedeploy-local`: the arguments checked first, then
//! the tools' configuration (`-c`, else `--config-file`), then the local driver.

use super::startup::{self, StartupError};
use crate::cli::DeployLocalArgs;
use crate::local::{self, LocalError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DeployLocalError {
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// `Ok(true)` when every event succeeded, `Ok(false)` when one failed (already reported).
pub fn run(args: &DeployLocalArgs, global_config: Option<&Path>) -> Result<bool, DeployLocalError> {
    startup::tool_logging();
    let request = local::check_args(args)?;
    let cfg = startup::tool_config(args.agent_configuration_file.as_deref().or(global_config))?;
    Ok(local::deploy(args, request, cfg)?)
}
