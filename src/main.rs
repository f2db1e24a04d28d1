//! The binary edge: parse the command line, call into the library, map results to exit codes.

use clap::Parser;
use codedeploy_agent::cli::{self, Cli, Command, LocalCli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if cli::invoked_as_local(&argv0) {
        let local = LocalCli::parse();
        codedeploy_agent::logging::init_cli(false);
        return exit(codedeploy_agent::local::run(&local.args, None));
    }
    let cli = Cli::parse();
    // The daemon sets up its own logging (journald or its log file).
    if !matches!(cli.command, Command::Run) {
        codedeploy_agent::logging::init_cli(false);
    }
    match cli.command {
        Command::DeployLocal(args) => exit(codedeploy_agent::local::run(
            &args,
            cli.config_file.as_deref(),
        )),
        Command::Validate(args) => {
            let report = codedeploy_agent::validate::validate_on_host(
                &args.path,
                args.appspec_filename.as_deref(),
                cli.config_file.as_deref(),
            );
            print!("{}", report.render());
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Run => match run_daemon(cli.config_file.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Status(args) => {
            codedeploy_agent::status::cli::run(&args, cli.config_file.as_deref())
        }
        Command::Logs(args) => codedeploy_agent::logs::cli::run(&args, cli.config_file.as_deref()),
    }
}

fn exit<E: Into<anyhow::Error>>(result: Result<bool, E>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ERROR: {:#}", e.into());
            ExitCode::FAILURE
        }
    }
}

/// `run`: configuration, logging, then the agent on a small multi-threaded runtime (two
/// workers: the poll loop and HTTP; commands run on the blocking pool).
fn run_daemon(config_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = config_file
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| codedeploy_agent::config::DEFAULT_CONFIG_FILE.into());
    let loaded = codedeploy_agent::config::load(&path)?;
    codedeploy_agent::config::check_paths(&loaded.config)?;
    let _guard =
        codedeploy_agent::logging::init_daemon(&loaded.config).context("cannot set up logging")?;
    for note in &loaded.notes {
        tracing::warn!("{note}");
    }
    codedeploy_agent::control::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(codedeploy_agent::agent::MAX_CONCURRENT_COMMANDS + 8)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(codedeploy_agent::agent::run(loaded.config))?;
    Ok(())
}
