//! The deployment-spec JSON decoder on arbitrary bytes (the content of a verified PKCS#7
//! envelope, or a `TEXT/JSON` payload in local mode).
#![no_main]

use codedeploy_agent::deployspec::{decode, encode, DeploymentSpec};
use codedeploy_agent::lifecycle::Creator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = decode(text) else {
        return;
    };
    // These two become directory names under the deployment root.
    for (field, id) in [
        ("DeploymentId", &spec.deployment_id),
        ("DeploymentGroupId", &spec.group_id),
    ] {
        assert!(
            !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0']),
            "{field} {id:?} accepted as a directory name"
        );
    }
    // `deploy-local` encodes the spec it builds and the executor decodes it: the round trip
    // keeps everything but the two things encode() leaves out on purpose.
    let again = match decode(&encode(&spec)) {
        Ok(s) => s,
        Err(e) => panic!("encode() of a decoded spec does not decode: {e}"),
    };
    let expected = DeploymentSpec {
        github_token: None,
        creator: match spec.creator {
            Creator::Other => Creator::User,
            c => c,
        },
        ..spec
    };
    assert_eq!(again, expected, "decode(encode(spec)) differs");
});
