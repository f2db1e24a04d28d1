//! The admin API: plain HTTP + JSON under `/admin`, unsigned (loopback test tool).
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | /admin | | info: endpoint, admin URL, CA file, region |
//! | GET, POST | /admin/hosts | HostRegistration | hosts / `{}` |
//! | GET | /admin/history | `?host_id=` | the host's events |
//! | GET, POST | /admin/deployments | DeploymentRequest | deployments / `{"deployment_id"}` |
//! | GET | /admin/deployments/{id} | | the deployment with per-host runs |
//! | POST | /admin/deployments/{id}/stop | | `{}` |
//! | GET | /admin/commands/{id} | | one host command |
//! | GET, POST, DELETE | /admin/faults | FaultRule | rules / `{}` |
//! | GET | /admin/faults/log | | `[{"second","count","retries"}]`: injected faults per second |
//! | GET | /admin/state | | the whole state |
//!
//! Errors answer `{"error": message}` with 400 (bad input) or 404 (unknown path or object).

use crate::error::EmulatorError;
use crate::faults::FaultRule;
use crate::model::DeploymentRequest;
use crate::server::{json_response, lock, now_ms, Body, Shared};
use crate::state::HostRegistration;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 4 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(400, "request body unreadable or too large".into()),
    };
    let path = parts.uri.path().trim_end_matches('/');
    let query = parts.uri.query().unwrap_or("");
    match route(shared, &parts.method, path, query, &body) {
        Ok(v) => json_response(200, v.to_string(), "application/json"),
        Err(EmulatorError::NotFound(m)) => error(404, m),
        Err(e) => error(400, e.to_string()),
    }
}

fn error(status: u16, message: String) -> Response<Body> {
    json_response(
        status,
        json!({ "error": message }).to_string(),
        "application/json",
    )
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, EmulatorError> {
    serde_json::from_slice(body)
        .map_err(|e| EmulatorError::BadRequest(format!("invalid JSON body: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, EmulatorError> {
    serde_json::to_value(v).map_err(|e| EmulatorError::BadRequest(e.to_string()))
}

/// The `/admin` info document.
pub fn info(shared: &Shared) -> Value {
    json!({
        "endpoint": shared.endpoint,
        "admin_url": format!("{}/admin", shared.endpoint),
        "ca_cert_path": shared.pki.ca_cert_path(),
        "region": lock(&shared.state).region,
        "poll_idle_ms": shared.poll_idle.as_millis() as u64,
        "command_timeout_ms": shared.command_timeout.as_millis() as u64,
    })
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Value, EmulatorError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let now = now_ms();
    match (method, &segs[1..]) {
        (&Method::GET, []) => Ok(info(shared)),
        (&Method::GET, ["hosts"]) => {
            to_json(&lock(&shared.state).hosts.values().collect::<Vec<_>>())
        }
        (&Method::POST, ["hosts"]) => {
            let reg: HostRegistration = parse(body)?;
            shared.with_state(|st| st.register_host(reg))?;
            Ok(json!({}))
        }
        (&Method::GET, ["history"]) => {
            let host = query_param(query, "host_id").ok_or_else(|| {
                EmulatorError::BadRequest("host_id query parameter required".into())
            })?;
            let st = lock(&shared.state);
            if !st.hosts.contains_key(&host) {
                return Err(EmulatorError::NotFound(format!("host {host}")));
            }
            to_json(&st.history.get(&host).cloned().unwrap_or_default())
        }
        (&Method::GET, ["deployments"]) => {
            to_json(&lock(&shared.state).deployments.values().collect::<Vec<_>>())
        }
        (&Method::POST, ["deployments"]) => {
            let req: DeploymentRequest = parse(body)?;
            let id = shared.with_state(|st| st.create_deployment(req, now))?;
            Ok(json!({ "deployment_id": id }))
        }
        (&Method::GET, ["deployments", id]) => {
            let st = lock(&shared.state);
            let d = st
                .deployments
                .get(*id)
                .ok_or_else(|| EmulatorError::NotFound(format!("deployment {id}")))?;
            to_json(d)
        }
        (&Method::POST, ["deployments", id, "stop"]) => {
            shared.with_state(|st| st.stop_deployment(id, now))?;
            Ok(json!({}))
        }
        (&Method::GET, ["commands", id]) => {
            let st = lock(&shared.state);
            let c = st
                .commands
                .get(*id)
                .ok_or_else(|| EmulatorError::NotFound(format!("command {id}")))?;
            to_json(c)
        }
        (&Method::GET, ["faults"]) => to_json(&*lock(&shared.faults)),
        (&Method::GET, ["faults", "log"]) => Ok(Value::Array(
            lock(&shared.fault_log)
                .per_second
                .iter()
                .map(|(s, (n, r))| json!({ "second": s, "count": n, "retries": r }))
                .collect(),
        )),
        (&Method::POST, ["faults"]) => {
            let rule: FaultRule = parse(body)?;
            lock(&shared.faults).push(rule);
            Ok(json!({}))
        }
        (&Method::DELETE, ["faults"]) => {
            lock(&shared.faults).clear();
            lock(&shared.fault_log).rules_cleared();
            Ok(json!({}))
        }
        (&Method::GET, ["state"]) => to_json(&*lock(&shared.state)),
        _ => Err(EmulatorError::NotFound(format!("{method} {path}"))),
    }
}

/// Value of `name` in a query string, percent-decoded (host ids are often ARNs).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| {
                std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        match (hex, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value (the inverse of the decoding above).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
