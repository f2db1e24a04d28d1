//! Test helpers: an emulator with short timings, and a host client that signs with the
//! independent `aws-sigv4` crate.
#![allow(dead_code)]

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use codedeploy_emulator::client::{self, Http};
use codedeploy_emulator::{Emulator, EmulatorConfig};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

pub const OLD: &str = "CodeDeployCommandService_v20141006";
pub const SECURE: &str = "CodeDeployCommandService";

pub fn start(poll_idle_ms: u64, command_timeout_ms: u64, dir: &std::path::Path) -> Emulator {
    Emulator::start(EmulatorConfig {
        poll_idle: Duration::from_millis(poll_idle_ms),
        command_timeout: Duration::from_millis(command_timeout_ms),
        pki_dir: Some(dir.join("pki")),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

/// One way of signing a call; tests vary the fields to produce each kind of bad signature.
#[derive(Clone)]
pub struct Signing {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// `None`: the name that goes with the target prefix.
    pub service: Option<String>,
    pub time: SystemTime,
    pub target_prefix: &'static str,
}

impl Signing {
    pub fn new(access_key: &str, secret_key: &str) -> Self {
        Signing {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: "us-east-1".into(),
            service: None,
            time: SystemTime::now(),
            target_prefix: OLD,
        }
    }
}

pub struct Host {
    pub http: Http,
    pub endpoint: String,
    pub host_id: String,
    pub signing: Signing,
}

impl Host {
    pub fn new(emu: &Emulator, host_id: &str, access_key: &str, secret_key: &str) -> Self {
        Host {
            http: client::http(4),
            endpoint: emu.endpoint(),
            host_id: host_id.into(),
            signing: Signing::new(access_key, secret_key),
        }
    }

    /// Sends one signed call; answers (HTTP status, JSON body) or Err for a transport failure.
    pub async fn raw(&self, s: &Signing, op: &str, input: &Value) -> Result<(u16, Value), String> {
        let body = input.to_string();
        let uri = format!("{}/", self.endpoint);
        let authority = self.endpoint.trim_start_matches("http://").to_string();
        let target = format!("{}.{op}", s.target_prefix);
        let mut req = http::Request::post(&uri)
            .header("host", authority)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header("x-amz-codedeploy-agent-version", "OFFICIAL_1.8.1")
            .body(body.clone())
            .unwrap();
        let service = s.service.clone().unwrap_or_else(|| {
            if s.target_prefix == OLD {
                "codedeploy-commands".into()
            } else {
                "codedeploy-commands-secure".into()
            }
        });
        let identity = Credentials::new(&s.access_key, &s.secret_key, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&s.region)
            .name(&service)
            .time(s.time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            uri.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let (parts, body) = req.into_parts();
        let req = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let resp = self.http.request(req).await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub async fn call(&self, op: &str, input: &Value) -> (u16, Value) {
        self.raw(
            &Signing {
                time: SystemTime::now(),
                ..self.signing.clone()
            },
            op,
            input,
        )
        .await
        .unwrap()
    }

    pub async fn poll(&self) -> Option<Value> {
        let (status, v) = self
            .call(
                "PollHostCommand",
                &json!({ "HostIdentifier": self.host_id }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v.get("HostCommand").cloned()
    }

    pub async fn spec(&self, cmd: &Value) -> Value {
        let (status, v) = self
            .call(
                "GetDeploymentSpecification",
                &json!({ "DeploymentExecutionId": cmd["DeploymentExecutionId"], "HostIdentifier": self.host_id }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    pub async fn ack(&self, cmd: &Value) -> String {
        let diag = json!({ "Format": "JSON", "Payload": "{\"IsCommandNoop\":false}" });
        let (status, v) = self
            .call("PutHostCommandAcknowledgement", &json!({ "HostCommandIdentifier": cmd["HostCommandIdentifier"], "Diagnostics": diag }))
            .await;
        assert_eq!(status, 200, "{v}");
        v["CommandStatus"].as_str().unwrap().to_string()
    }

    pub async fn complete(&self, cmd: &Value, status: &str) {
        let payload = json!({ "error_code": if status == "Succeeded" { 0 } else { 4 }, "script_name": "", "message": "", "log": "" });
        let (code, v) = self
            .call(
                "PutHostCommandComplete",
                &json!({ "HostCommandIdentifier": cmd["HostCommandIdentifier"], "CommandStatus": status,
                         "Diagnostics": { "Format": "JSON", "Payload": payload.to_string() } }),
            )
            .await;
        assert_eq!(code, 200, "{v}");
    }

    /// Runs one command as the agent would, failing it if its name is `fail_at`.
    /// Returns the command name, or None when the poll came back empty.
    pub async fn step(&self, fail_at: Option<&str>) -> Option<String> {
        let cmd = self.poll().await?;
        self.spec(&cmd).await;
        assert_eq!(self.ack(&cmd).await, "InProgress");
        let name = cmd["CommandName"].as_str().unwrap().to_string();
        let status = if fail_at == Some(name.as_str()) {
            "Failed"
        } else {
            "Succeeded"
        };
        self.complete(&cmd, status).await;
        Some(name)
    }
}

/// Decoded spec JSON from a GetDeploymentSpecification answer, verified with the CA file.
pub fn verified_spec(answer: &Value, ca: &std::path::Path) -> Value {
    let env = &answer["DeploymentSpecification"]["GenericEnvelope"];
    assert_eq!(env["Format"], "PKCS7/JSON");
    let pem = env["Payload"].as_str().unwrap();
    let ca = std::fs::read(ca).unwrap();
    let content = codedeploy_emulator::pki::verify_pkcs7(pem.as_bytes(), &ca).unwrap();
    serde_json::from_slice(&content).unwrap()
}
