//! The host-command service's JSON answers (PollHostCommand, GetDeploymentSpecification,
//! PutHostCommandAcknowledgement, and error bodies) on arbitrary bytes.
#![no_main]

use codedeploy_agent::control::fuzzing::{parse_ack, parse_error, parse_poll, parse_spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let _ = parse_poll(data);
    let _ = parse_spec(data);
    let _ = parse_ack(data);
    // The error type always comes out non-empty (it names the failure in logs and backoff).
    let header = data.first().map(|_| "ThrottlingException:http://internal");
    let (kind, _message) = parse_error(400, header, data);
    assert!(!kind.is_empty());
    let (kind, _message) = parse_error(503, None, data);
    assert!(!kind.is_empty());
});
