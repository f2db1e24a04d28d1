//! `codedeploy-agent logs [--follow] [--deployment ID] [--group ID] [--event NAME]`.

use crate::cli::LogsArgs;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: &LogsArgs, config_file: Option<&Path>) -> ExitCode {
    let cfg = match crate::local::load_config(config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Buffered: a long history is written in large writes; `logs` flushes after each
    // follow round, so what is followed shows at once.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match super::run(&cfg, args, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}
