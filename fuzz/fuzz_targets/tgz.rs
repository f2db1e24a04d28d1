//! The gzip + tar reader and the unpack writer on arbitrary bytes: a bundle declared `tgz`,
//! streamed as a download is.
#![no_main]

use std::io::Cursor;

use codedeploy_agent::bundle::{unpack_reader, BundleType};
use fuzz_support::{unpack_options, Scratch, MAX_EXTRACTION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let scratch = Scratch::new();
    let archive = scratch.path().join("archive");
    let opts = unpack_options(data);
    if let Ok(report) = unpack_reader(Cursor::new(data), BundleType::Tgz, &archive, &opts) {
        assert!(report.bytes <= MAX_EXTRACTION, "limit passed: {report:?}");
    }
    scratch.assert_nothing_beside(&["archive"]);
});
