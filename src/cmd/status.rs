//! `codedeploy-agent status [--json]`: the tools' configuration, the report, and the LSB
//! status code it decided (`main.rs` exits with it; a configuration error is LSB 4, unknown).

use super::startup::{self, StartupError};
use crate::cli::StatusArgs;
use crate::status::report::{self, Lsb};
use std::path::Path;

pub fn run(args: &StatusArgs, config_file: Option<&Path>) -> Result<Lsb, StartupError> {
    startup::tool_logging();
    let cfg = startup::tool_config(config_file)?;
    let report = report::gather(&cfg);
    if args.json {
        let text = serde_json::to_string_pretty(&report::render_json(&report))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        println!("{text}");
    } else {
        print!("{}", report::render_text(&report, &cfg.program_name));
    }
    Ok(report.lsb)
}
