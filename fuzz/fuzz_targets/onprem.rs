//! The on-premises identity file (codedeploy.onpremises.yml) on arbitrary bytes.
#![no_main]

use std::path::Path;

use codedeploy_agent::config::onprem::{parse, OnPremises};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "/etc/codedeploy-agent/conf/codedeploy.onpremises.yml";

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(Path::new(FILE), text) {
        // A complete mode has every value it needs, trimmed and non-empty.
        Ok(OnPremises::IamUser {
            region,
            host_identifier,
            access_key_id,
            secret_access_key,
        }) => {
            for v in [&region, &host_identifier, &access_key_id, &secret_access_key] {
                assert!(!v.is_empty() && v.trim() == v.as_str(), "{v:?}");
            }
        }
        Ok(OnPremises::IamSession {
            region,
            host_identifier,
            credentials_file,
        }) => {
            assert!(!region.is_empty() && !host_identifier.is_empty());
            assert!(!credentials_file.as_os_str().is_empty());
        }
        Ok(OnPremises::Inert) => {}
        Err(e) => assert!(e.to_string().starts_with(FILE), "{e}"),
    }
});
