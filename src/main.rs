//! The binary edge: parse the command line, hand the parsed arguments to the subcommand's
//! `run()` (`codedeploy_agent::cmd`), and map its result to the exit code and, for an
//! error, the message on standard error.

use clap::Parser;
use codedeploy_agent::cli::{self, Cli, Command, LocalCli};
use codedeploy_agent::cmd;
use codedeploy_agent::status::report::Lsb;
use std::process::ExitCode;

fn main() -> ExitCode {
    codedeploy_agent::memory::tune_allocator();
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if cli::invoked_as_local(&argv0) {
        let local = LocalCli::parse();
        return exit(cmd::deploy_local::run(&local.args, None));
    }
    let cli = Cli::parse();
    let config_file = cli.config_file.as_deref();
    match cli.command {
        Command::DeployLocal(args) => exit(cmd::deploy_local::run(&args, config_file)),
        Command::Validate(args) => ExitCode::from(cmd::validate::run(&args, config_file).code()),
        Command::Run => match cmd::run::run(config_file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let e = anyhow::Error::from(e);
                tracing::error!("{e:#}");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Status(args) => match cmd::status::run(&args, config_file) {
            Ok(lsb) => ExitCode::from(lsb.code()),
            Err(e) => {
                eprintln!("ERROR: {e}");
                ExitCode::from(Lsb::Unknown.code())
            }
        },
        Command::Logs(args) => match cmd::logs::run(&args, config_file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ERROR: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn success(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn exit<E: Into<anyhow::Error>>(result: Result<bool, E>) -> ExitCode {
    match result {
        Ok(ok) => success(ok),
        Err(e) => {
            eprintln!("ERROR: {:#}", e.into());
            ExitCode::FAILURE
        }
    }
}
