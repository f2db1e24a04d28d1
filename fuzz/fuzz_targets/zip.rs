//! The zip reader and the unpack writer on arbitrary bytes. Zip is read from a file (its
//! index is at the end), so each input is written to a tmpfs file first, as a download is.
#![no_main]

use codedeploy_agent::bundle::{unpack_file, BundleType};
use fuzz_support::{unpack_options, Scratch, MAX_EXTRACTION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let scratch = Scratch::new();
    let bundle = scratch.path().join("bundle.zip");
    let archive = scratch.path().join("archive");
    if let Err(e) = std::fs::write(&bundle, data) {
        panic!("harness: cannot write {}: {e}", bundle.display());
    }
    let opts = unpack_options(data);
    if let Ok(report) = unpack_file(&bundle, BundleType::Zip, &archive, &opts) {
        assert!(report.bytes <= MAX_EXTRACTION, "limit passed: {report:?}");
    }
    scratch.assert_nothing_beside(&["archive", "bundle.zip"]);
});
