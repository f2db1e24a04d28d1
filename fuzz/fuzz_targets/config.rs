//! codedeployagent.yml on arbitrary bytes, in whichever form the file uses (plain
//! `key: value` or the legacy `:key: value`; the seeds hold both).
#![no_main]

use std::path::Path;

use codedeploy_agent::config::parse;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "/etc/codedeploy-agent/conf/codedeployagent.yml";

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(Path::new(FILE), text) {
        Ok(loaded) => assert_eq!(loaded.config.source.as_deref(), Some(Path::new(FILE))),
        // Every refusal names the file.
        Err(e) => assert!(e.to_string().starts_with(FILE), "{e}"),
    }
});
