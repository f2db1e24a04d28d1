//! The appspec parser on arbitrary bytes, as `deploy-local`, `validate` and the Install step
//! read an `appspec.yml` out of a bundle.
#![no_main]

use codedeploy_agent::appspec::{parse_detailed, summary};
use codedeploy_agent::validate::MAX_APPSPEC_BYTES;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "appspec.yml";

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    // `validate` refuses a larger appspec before parsing it.
    if data.len() as u64 > MAX_APPSPEC_BYTES {
        return;
    }
    // The readers refuse text that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_detailed(NAME, text) {
        Ok(parsed) => {
            let _ = summary(&parsed.spec);
            for w in &parsed.warnings {
                assert_eq!(w.file, NAME);
            }
        }
        // The parser's promise: never an empty error list, and every error names the file.
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an Err with no error in it");
            for e in &errors.0 {
                assert_eq!(e.file, NAME);
                assert!(!e.to_string().is_empty());
            }
        }
    }
});
