//! Logging for the binary: `tracing` to standard error for the command-line tools.
//!
//! Invariant: set up once, at the binary edge; library code only emits events.

use tracing_subscriber::EnvFilter;

/// Human-facing commands log warnings and errors to standard error; RUST_LOG overrides.
pub fn init_cli(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
