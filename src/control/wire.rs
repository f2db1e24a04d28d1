//! PURE: the AWS JSON 1.1 shapes of the host-command API
//! (docs/behaviour/protocol.md#wire-protocol): request bodies, response decoding and error-answer
//! parsing.
//!
//! Requests and the acknowledgement payload are serde types. Answers are read member by member
//! instead (a derived `Deserialize` would do it too, but its errors name a line and column of
//! the answer, and these name the member path, `HostCommand.Nonce`, that an operator can look
//! up); both end in the same domain types.
//!
//! Invariant: request members with no value are omitted; a required response member that is
//! missing or of the wrong type is a `Decode` error naming the member.

use super::ControlError;
use serde::Serialize;
use serde_json::{Map, Value};

/// One command the service wants this host to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommand {
    pub host_command_identifier: String,
    pub host_identifier: String,
    pub deployment_execution_id: String,
    pub command_name: String,
    pub nonce: Option<i64>,
}

/// `{ "Format": ..., "Payload": ... }`: diagnostics and deployment specifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    pub format: String,
    pub payload: String,
}

/// `DeploymentCommandStatus`; values outside the model are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    Other(String),
}

impl CommandStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "Pending" => Self::Pending,
            "InProgress" => Self::InProgress,
            "Succeeded" => Self::Succeeded,
            "Failed" => Self::Failed,
            other => Self::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The acknowledgement's diagnostics payload: whether executing the command would do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AckPayload {
    #[serde(rename = "IsCommandNoop")]
    pub is_command_noop: bool,
}

impl AckPayload {
    /// The JSON text the envelope carries: `{"IsCommandNoop":true}`.
    pub fn to_json(self) -> String {
        serde_json::to_string(&self).expect("a struct of one bool always serialises")
    }
}

/// GetDeploymentSpecification's answer; only the generic envelope is used
/// (docs/behaviour/protocol.md#acknowledge-and-complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecResponse {
    pub deployment_system: Option<String>,
    pub generic_envelope: Option<Envelope>,
}

pub const POLL_HOST_COMMAND: &str = "PollHostCommand";
pub const GET_DEPLOYMENT_SPECIFICATION: &str = "GetDeploymentSpecification";
pub const PUT_HOST_COMMAND_ACKNOWLEDGEMENT: &str = "PutHostCommandAcknowledgement";
pub const PUT_HOST_COMMAND_COMPLETE: &str = "PutHostCommandComplete";
/// Used only around a reboot a hook asked for (docs/reboot.md): to tell the service the
/// command goes on after the reboot, and to ask it whether the command is still wanted.
pub const POST_HOST_COMMAND_UPDATE: &str = "PostHostCommandUpdate";

// Request bodies. Members are declared in alphabetical order, the order the service has
// always received (a sorted JSON object); absent optional members are left out.

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PollRequest<'a> {
    host_identifier: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SpecRequest<'a> {
    deployment_execution_id: &'a str,
    host_identifier: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AckRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a Envelope>,
    host_command_identifier: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteRequest<'a> {
    command_status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a Envelope>,
    host_command_identifier: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a Envelope>,
    host_command_identifier: &'a str,
}

pub fn update_request(host_command_identifier: &str, diagnostics: Option<&Envelope>) -> Vec<u8> {
    body(&UpdateRequest {
        diagnostics,
        host_command_identifier,
    })
}

/// The `CommandStatus` of a PostHostCommandUpdate answer.
pub fn parse_update(body: &[u8]) -> Result<Option<CommandStatus>, ControlError> {
    let op = POST_HOST_COMMAND_UPDATE;
    let m = parse_object(op, body)?;
    Ok(opt_str(op, &m, "", "CommandStatus")?.map(|s| CommandStatus::parse(&s)))
}

fn body(request: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(request).expect("request bodies are strings and always serialise")
}

pub fn poll_request(host_identifier: &str) -> Vec<u8> {
    body(&PollRequest { host_identifier })
}

pub fn spec_request(deployment_execution_id: &str, host_identifier: &str) -> Vec<u8> {
    body(&SpecRequest {
        deployment_execution_id,
        host_identifier,
    })
}

pub fn ack_request(host_command_identifier: &str, diagnostics: Option<&Envelope>) -> Vec<u8> {
    body(&AckRequest {
        diagnostics,
        host_command_identifier,
    })
}

pub fn complete_request(
    host_command_identifier: &str,
    status: &CommandStatus,
    diagnostics: Option<&Envelope>,
) -> Vec<u8> {
    body(&CompleteRequest {
        command_status: status.as_str(),
        diagnostics,
        host_command_identifier,
    })
}

fn decode_err(op: &str, message: String) -> ControlError {
    ControlError::Decode {
        operation: op.to_string(),
        message,
    }
}

/// Parses a 2xx body; an empty body counts as `{}`.
pub fn parse_object(op: &str, body: &[u8]) -> Result<Map<String, Value>, ControlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(decode_err(op, "the answer is not a JSON object".into())),
        Err(e) => Err(decode_err(op, format!("the answer is not JSON: {e}"))),
    }
}

/// A member that may be absent or null, but must be a string when present.
fn opt_str(
    op: &str,
    m: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<String>, ControlError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.clone())),
        Some(_) => Err(decode_err(op, format!("{path}{key} is not a string"))),
    }
}

fn req_str(
    op: &str,
    m: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<String, ControlError> {
    opt_str(op, m, path, key)?.ok_or_else(|| decode_err(op, format!("{path}{key} is missing")))
}

fn opt_obj<'a>(
    op: &str,
    m: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, ControlError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(decode_err(op, format!("{path}{key} is not an object"))),
    }
}

pub fn parse_poll(body: &[u8]) -> Result<Option<HostCommand>, ControlError> {
    let op = POLL_HOST_COMMAND;
    let m = parse_object(op, body)?;
    let Some(c) = opt_obj(op, &m, "", "HostCommand")? else {
        return Ok(None);
    };
    let p = "HostCommand.";
    let nonce = match c.get("Nonce") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| decode_err(op, format!("{p}Nonce is not a whole number: {n}")))?,
        ),
        Some(_) => return Err(decode_err(op, format!("{p}Nonce is not a number"))),
    };
    Ok(Some(HostCommand {
        host_command_identifier: req_str(op, c, p, "HostCommandIdentifier")?,
        host_identifier: req_str(op, c, p, "HostIdentifier")?,
        deployment_execution_id: req_str(op, c, p, "DeploymentExecutionId")?,
        command_name: req_str(op, c, p, "CommandName")?,
        nonce,
    }))
}

pub fn parse_spec(body: &[u8]) -> Result<SpecResponse, ControlError> {
    let op = GET_DEPLOYMENT_SPECIFICATION;
    let m = parse_object(op, body)?;
    let deployment_system = opt_str(op, &m, "", "DeploymentSystem")?;
    let generic_envelope = match opt_obj(op, &m, "", "DeploymentSpecification")? {
        None => None,
        Some(spec) => match opt_obj(op, spec, "DeploymentSpecification.", "GenericEnvelope")? {
            None => None,
            Some(env) => {
                let p = "DeploymentSpecification.GenericEnvelope.";
                Some(Envelope {
                    format: opt_str(op, env, p, "Format")?.unwrap_or_default(),
                    payload: opt_str(op, env, p, "Payload")?.unwrap_or_default(),
                })
            }
        },
    };
    Ok(SpecResponse {
        deployment_system,
        generic_envelope,
    })
}

pub fn parse_ack(body: &[u8]) -> Result<Option<CommandStatus>, ControlError> {
    let op = PUT_HOST_COMMAND_ACKNOWLEDGEMENT;
    let m = parse_object(op, body)?;
    Ok(opt_str(op, &m, "", "CommandStatus")?.map(|s| CommandStatus::parse(&s)))
}

/// The error type and message of a non-2xx answer: `__type` (its part after `#`, if any),
/// else the `x-amzn-ErrorType` header (its part before `:`), else a name made from the status.
pub fn parse_error(status: u16, error_type_header: Option<&str>, body: &[u8]) -> (String, String) {
    let parsed: Option<Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let from_body = field("__type")
        .or_else(|| field("code"))
        .map(|t| t.rsplit('#').next().unwrap_or_default().to_string());
    let from_header =
        error_type_header.map(|h| h.split(':').next().unwrap_or_default().trim().to_string());
    let type_ = from_body
        .or(from_header)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("Http{status}Error"));
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| {
            if parsed.is_some() {
                String::new()
            } else {
                String::from_utf8_lossy(&body[..body.len().min(512)])
                    .trim()
                    .to_string()
            }
        });
    (type_, message)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_ack_payload_is_the_official_json() {
        let p = |noop| {
            AckPayload {
                is_command_noop: noop,
            }
            .to_json()
        };
        assert_eq!(p(true), r#"{"IsCommandNoop":true}"#);
        assert_eq!(p(false), r#"{"IsCommandNoop":false}"#);
    }

    #[test]
    fn requests_omit_absent_members() {
        assert_eq!(poll_request("arn:h"), br#"{"HostIdentifier":"arn:h"}"#);
        assert_eq!(
            spec_request("a/b/c/d", "arn:h"),
            br#"{"DeploymentExecutionId":"a/b/c/d","HostIdentifier":"arn:h"}"#
        );
        assert_eq!(
            ack_request("id", None),
            br#"{"HostCommandIdentifier":"id"}"#
        );
        let d = Envelope {
            format: "JSON".into(),
            payload: r#"{"IsCommandNoop":false}"#.into(),
        };
        let v: Value =
            serde_json::from_slice(&complete_request("id", &CommandStatus::Failed, Some(&d)))
                .unwrap();
        assert_eq!(v["CommandStatus"], "Failed");
        assert_eq!(v["Diagnostics"]["Format"], "JSON");
        assert_eq!(v["Diagnostics"]["Payload"], r#"{"IsCommandNoop":false}"#);
        // The exact bytes: members in the order the service has always received.
        assert_eq!(
            complete_request("id", &CommandStatus::Succeeded, Some(&d)),
            br#"{"CommandStatus":"Succeeded","Diagnostics":{"Format":"JSON","Payload":"{\"IsCommandNoop\":false}"},"HostCommandIdentifier":"id"}"#
        );
        assert_eq!(
            ack_request("id", Some(&d)),
            br#"{"Diagnostics":{"Format":"JSON","Payload":"{\"IsCommandNoop\":false}"},"HostCommandIdentifier":"id"}"#
        );
    }

    #[test]
    fn poll_answers() {
        assert_eq!(parse_poll(b"").unwrap(), None);
        assert_eq!(parse_poll(b"{}").unwrap(), None);
        assert_eq!(parse_poll(br#"{"HostCommand":null}"#).unwrap(), None);
        let c = parse_poll(br#"{"HostCommand":{"HostCommandIdentifier":"h","HostIdentifier":"arn","DeploymentExecutionId":"a/b/c/d","CommandName":"Install","Nonce":7}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(c.command_name, "Install");
        assert_eq!(c.nonce, Some(7));
        let e = parse_poll(br#"{"HostCommand":{"HostCommandIdentifier":"h","HostIdentifier":"arn","DeploymentExecutionId":"a/b/c/d"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PollHostCommand: cannot decode the answer: HostCommand.CommandName is missing"
        );
        let e = parse_poll(br#"{"HostCommand":{"HostCommandIdentifier":1}}"#).unwrap_err();
        assert!(e
            .to_string()
            .contains("HostCommand.HostCommandIdentifier is not a string"));
        assert!(parse_poll(b"[1]").is_err());
        assert!(parse_poll(b"<html>")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }

    #[test]
    fn spec_and_ack_answers() {
        let r = parse_spec(br#"{"DeploymentSystem":"CodeDeploy","DeploymentSpecification":{"GenericEnvelope":{"Format":"PKCS7/JSON","Payload":"x"},"VariantId":"v"}}"#).unwrap();
        assert_eq!(r.deployment_system.as_deref(), Some("CodeDeploy"));
        assert_eq!(r.generic_envelope.unwrap().format, "PKCS7/JSON");
        let r = parse_spec(b"{}").unwrap();
        assert_eq!(
            r,
            SpecResponse {
                deployment_system: None,
                generic_envelope: None
            }
        );
        assert_eq!(
            parse_ack(br#"{"CommandStatus":"InProgress"}"#).unwrap(),
            Some(CommandStatus::InProgress)
        );
        assert_eq!(
            parse_ack(br#"{"CommandStatus":"Weird"}"#).unwrap(),
            Some(CommandStatus::Other("Weird".into()))
        );
        assert_eq!(parse_ack(b"{}").unwrap(), None);
    }

    #[test]
    fn error_answers() {
        assert_eq!(
            parse_error(
                400,
                None,
                br#"{"__type":"com.amazonaws.codedeploy#ClientException","message":"bad"}"#
            ),
            ("ClientException".into(), "bad".into())
        );
        assert_eq!(
            parse_error(
                400,
                None,
                br#"{"__type":"ThrottlingException","Message":"Rate exceeded"}"#
            ),
            ("ThrottlingException".into(), "Rate exceeded".into())
        );
        assert_eq!(
            parse_error(
                403,
                Some("AccessDeniedException:http://internal.amazon.com/"),
                b"{}"
            ),
            ("AccessDeniedException".into(), String::new())
        );
        assert_eq!(
            parse_error(502, None, b"Bad Gateway\n"),
            ("Http502Error".into(), "Bad Gateway".into())
        );
    }
}
