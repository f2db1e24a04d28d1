//! The host-command API: AWS JSON 1.1 over `POST /`, under both target prefixes.
//!
//! Order of checks per request: target (operation and signing name), SigV4 signature,
//! injected faults, request body, host ownership, then the operation itself.

use crate::error::ApiError;
use crate::faults::{self, FaultKind};
use crate::model::{Envelope, SpecFormat};
use crate::server::{json_response, lock, now_ms, Body, DropConnection, Shared};
use crate::sigv4::{self, RequestParts, Secret};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Target prefixes and the SigV4 signing name each requires.
pub const TARGETS: [(&str, &str); 2] = [
    ("CodeDeployCommandService_v20141006", "codedeploy-commands"),
    ("CodeDeployCommandService", "codedeploy-commands-secure"),
];

const OPERATIONS: [&str; 5] = [
    "PollHostCommand",
    "PutHostCommandAcknowledgement",
    "GetDeploymentSpecification",
    "PutHostCommandComplete",
    "PostHostCommandUpdate",
];

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const MAX_BODY: usize = 1 << 20;

/// Splits `X-Amz-Target` into (operation, signing name).
pub fn parse_target(target: &str) -> Result<(&'static str, &'static str), ApiError> {
    let (prefix, op) = target
        .split_once('.')
        .ok_or_else(|| ApiError::unknown_operation(target))?;
    let service = TARGETS.iter().find(|(p, _)| *p == prefix).map(|(_, s)| *s);
    let op = OPERATIONS.iter().find(|o| **o == op).copied();
    match (op, service) {
        (Some(op), Some(service)) => Ok((op, service)),
        _ => Err(ApiError::unknown_operation(target)),
    }
}

pub async fn handle(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    match handle_inner(shared, req).await {
        Ok(Some(v)) => Ok(json_response(200, v.to_string(), CONTENT_TYPE)),
        Ok(None) => Err(DropConnection),
        Err(e) => Ok(json_response(e.status, e.body(), CONTENT_TYPE)),
    }
}

async fn handle_inner(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Option<Value>, ApiError> {
    let (parts, body) = req.into_parts();
    if parts.method != hyper::Method::POST {
        return Err(ApiError::serialization("Only POST is supported"));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (op, service) = parse_target(target)?;
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| ApiError::serialization("Request body unreadable or too large"))?
        .to_bytes();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let host = {
        let st = lock(&shared.state);
        let req = RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        let now = (now_ms() / 1000) as i64;
        let lookup = |key: &str| {
            let h = st.hosts.get(st.keys.get(key)?)?;
            Some(Secret {
                secret_key: &h.secret_key,
                session_token: h.session_token.as_deref(),
            })
        };
        let v = sigv4::verify(&req, lookup, service, &st.region, now)?;
        st.keys
            .get(&v.access_key)
            .cloned()
            .ok_or_else(ApiError::unrecognized_client)?
    };
    let fault = faults::take(&mut lock(&shared.faults), op, &host);
    if let Some(kind) = fault {
        faults::record_hit(
            &mut lock(&shared.fault_hits),
            faults::FaultHit {
                at_ms: now_ms(),
                operation: op.to_string(),
                host_id: host.clone(),
                kind,
            },
        );
    }
    let tamper = fault == Some(FaultKind::TamperSpec);
    match fault {
        Some(FaultKind::ServerError) => return Err(ApiError::server("Injected server fault")),
        Some(FaultKind::Throttle) => return Err(ApiError::throttling()),
        Some(FaultKind::Drop) => return Ok(None),
        Some(FaultKind::TamperSpec) | Some(FaultKind::Redeliver) => {}
        Some(FaultKind::Slow { delay_ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await
        }
        None => {}
    }
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::serialization(format!("Invalid JSON body: {e}")))?
    };
    if !input.is_object() {
        return Err(ApiError::serialization(
            "Request body must be a JSON object",
        ));
    }
    let out = match op {
        "PollHostCommand" => poll(shared, &host, &input).await?,
        "GetDeploymentSpecification" => get_spec(shared, &host, &input, tamper)?,
        "PutHostCommandAcknowledgement" => {
            let id = required(&input, "HostCommandIdentifier")?;
            let diag = envelope(&input)?;
            let status = shared.with_state(|st| st.acknowledge(&id, &host, diag, now_ms()))?;
            json!({ "CommandStatus": status })
        }
        "PutHostCommandComplete" => {
            let id = required(&input, "HostCommandIdentifier")?;
            let status = required(&input, "CommandStatus")?;
            let diag = envelope(&input)?;
            shared.with_state(|st| st.complete(&id, &host, &status, diag, now_ms()))?;
            json!({})
        }
        _ => {
            let id = required(&input, "HostCommandIdentifier")?;
            let diag = envelope(&input)?;
            let status = shared.with_state(|st| st.update(&id, &host, diag, now_ms()))?;
            json!({ "CommandStatus": status })
        }
    };
    Ok(Some(out))
}

fn required(input: &Value, field: &str) -> Result<String, ApiError> {
    match input.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::client(format!(
            "Missing required parameter {field}"
        ))),
        Some(_) => Err(ApiError::serialization(format!("{field} must be a string"))),
    }
}

fn envelope(input: &Value) -> Result<Option<Envelope>, ApiError> {
    match input.get("Diagnostics") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| ApiError::serialization(format!("Diagnostics: {e}"))),
    }
}

fn own_host(input: &Value, caller: &str) -> Result<String, ApiError> {
    let host = required(input, "HostIdentifier")?;
    if host != caller {
        return Err(ApiError::client(format!(
            "HostIdentifier {host} does not belong to the caller's credentials"
        )));
    }
    Ok(host)
}

async fn poll(shared: &Arc<Shared>, caller: &str, input: &Value) -> Result<Value, ApiError> {
    let host = own_host(input, caller)?;
    let deadline = tokio::time::Instant::now() + shared.poll_idle;
    let notify = shared.notifier(&host);
    let mut stop = shared.shutdown.clone();
    // Decided under the state lock, so the rule is spent only when a command goes out again.
    let again = shared.with_state(|st| {
        let id = st.redeliverable(&host)?;
        if !faults::take_redeliver(&mut lock(&shared.faults), &host) {
            return None;
        }
        st.redeliver(&id, now_ms())
    });
    if let Some(cmd) = again {
        return Ok(json!({ "HostCommand": cmd }));
    }
    loop {
        // Registered before looking at the queue, so a command issued in between still wakes us.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(cmd) = shared.with_state(|st| st.poll(&host, now_ms())) {
            return Ok(json!({ "HostCommand": cmd }));
        }
        if *stop.borrow() {
            return Ok(json!({}));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(json!({})),
            _ = stop.changed() => return Ok(json!({})),
        }
    }
}

fn get_spec(
    shared: &Arc<Shared>,
    caller: &str,
    input: &Value,
    tamper: bool,
) -> Result<Value, ApiError> {
    let exec = required(input, "DeploymentExecutionId")?;
    let host = own_host(input, caller)?;
    let (dep_id, format, doc) = {
        let st = lock(&shared.state);
        let d = st.deployment_for(&exec, &host)?;
        (
            d.deployment_id.clone(),
            d.request.spec_format,
            crate::spec::spec_json(d).to_string(),
        )
    };
    let (format_name, payload) = match format {
        SpecFormat::TextJson => ("TEXT/JSON", doc),
        SpecFormat::Pkcs7Json => {
            let cached = lock(&shared.spec_cache).get(&dep_id).cloned();
            let pem = match cached {
                Some(p) => p,
                None => {
                    let p = shared
                        .pki
                        .sign(doc.as_bytes())
                        .map_err(|e| ApiError::server(e.to_string()))?;
                    lock(&shared.spec_cache).insert(dep_id, p.clone());
                    p
                }
            };
            let pem = if tamper {
                crate::pki::tamper_pem(&pem)?
            } else {
                pem
            };
            ("PKCS7/JSON", pem)
        }
    };
    Ok(json!({
        "DeploymentSystem": "CodeDeploy",
        "DeploymentSpecification": { "GenericEnvelope": { "Format": format_name, "Payload": payload } },
    }))
}
