//! Start-up every subcommand shares: finding and loading the configuration, the start-up
//! checks of its paths, and logging set-up.
//!
//! Invariants: the tools (`deploy-local`, `validate`, `status`, `logs`) find their
//! configuration by one rule ([`config::choose_source`]: explicit file, default file, or
//! defaults under the user's state directory for non-root developers) and log to standard
//! error; the daemon reads the default file (or the explicit one) and logs where its
//! configuration says, set up before anything else is logged.

use crate::config::{self, Config, ConfigError};
use crate::logging::{LogGuard, LoggingError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration file {} does not exist or is not readable", path.display())]
    Missing { path: PathBuf },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up logging")]
    Logging(#[source] LoggingError),
}

/// Logging of the human-facing commands: warnings and errors to standard error.
pub fn tool_logging() {
    crate::logging::init_cli(false);
}

/// The configuration of a tool that writes (`deploy-local`) or reads the state (`status`,
/// `logs`): [`read_tool_config`], then the start-up checks ([`config::check_paths`]).
pub fn tool_config(explicit: Option<&Path>) -> Result<Config, StartupError> {
    let cfg = read_tool_config(explicit)?;
    config::check_paths(&cfg)?;
    Ok(cfg)
}

/// [`tool_config`] without the start-up checks, for commands that only read a bundle
/// (`validate`).
pub fn read_tool_config(explicit: Option<&Path>) -> Result<Config, StartupError> {
    let is_root = nix::unistd::geteuid().is_root();
    let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let source = config::choose_source(
        explicit,
        Path::new(config::DEFAULT_CONFIG_FILE).is_file(),
        is_root,
        xdg.as_deref(),
        home.as_deref(),
    );
    match source {
        config::Source::File(path) => {
            if !path.is_file() {
                return Err(StartupError::Missing { path });
            }
            let loaded = config::load(&path)?;
            for note in &loaded.notes {
                tracing::warn!("{note}");
            }
            Ok(loaded.config)
        }
        config::Source::Defaults { state_dir } => Ok(config::defaults_under(state_dir.as_deref())),
    }
}

/// The daemon's start-up: its configuration file (explicit, else the default path, which
/// must exist), the start-up checks, then its logging (journald or its log file); the
/// configuration's notes are logged once logging is there. Keep the guard for the process's
/// life.
pub fn daemon(explicit: Option<&Path>) -> Result<(Config, LogGuard), StartupError> {
    let path = explicit.map_or_else(
        || PathBuf::from(config::DEFAULT_CONFIG_FILE),
        Path::to_path_buf,
    );
    let loaded = config::load(&path)?;
    config::check_paths(&loaded.config)?;
    let guard = crate::logging::init_daemon(&loaded.config).map_err(StartupError::Logging)?;
    for note in &loaded.notes {
        tracing::warn!("{note}");
    }
    Ok((loaded.config, guard))
}
