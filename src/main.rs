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
    codedeploy_agent::logging::init_cli(false);
    match cli.command {
        Command::DeployLocal(args) => exit(codedeploy_agent::local::run(
            &args,
            cli.config_file.as_deref(),
        )),
        Command::Validate(args) => {
            let report = codedeploy_agent::validate::validate_path(
                &args.path,
                args.appspec_filename.as_deref(),
            );
            print!("{}", report.render());
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Run => {
            eprintln!("error: the daemon (`run`) is not part of this build yet; use deploy-local");
            ExitCode::FAILURE
        }
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
