//! `codedeploy-agent status [--json]`: loads the configuration, reports, and exits with the
//! LSB status code.

use crate::cli::StatusArgs;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: &StatusArgs, config_file: Option<&Path>) -> ExitCode {
    let cfg = match crate::local::load_config(config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(super::report::Lsb::Unknown.code());
        }
    };
    let report = super::report::gather(&cfg);
    if args.json {
        let text = serde_json::to_string_pretty(&super::report::render_json(&report))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        println!("{text}");
    } else {
        print!("{}", super::report::render_text(&report, &cfg.program_name));
    }
    ExitCode::from(report.lsb.code())
}
