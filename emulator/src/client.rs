//! Small HTTP clients: a host-command client that signs with this crate's SigV4 code (used
//! by the benchmark and the CLI), and an admin client. Tests of the protocol sign with the
//! `aws-sigv4` crate instead, so the verifier is checked against an independent signer.

use crate::sigv4::{self, RequestParts};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

pub type Http = Client<HttpConnector, Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Transport(String),
}

/// A pooled HTTP/1 client able to hold `max_idle` connections per host.
pub fn http(max_idle: usize) -> Http {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(conn)
}

async fn send(http: &Http, req: hyper::Request<Full<Bytes>>) -> Result<(u16, Value), ClientError> {
    let resp = http
        .request(req)
        .await
        .map_err(|e| ClientError::Transport(format!("{e:?}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .to_bytes();
    let v = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    Ok((status, v))
}

/// A host of the fleet talking to the host-command API.
#[derive(Clone)]
pub struct HostClient {
    pub http: Http,
    pub endpoint: String,
    pub host_id: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// `(target prefix, signing name)`, one of [`crate::api::TARGETS`].
    pub target: (&'static str, &'static str),
}

impl HostClient {
    pub fn new(
        http: Http,
        endpoint: &str,
        host_id: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> Self {
        HostClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            host_id: host_id.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: region.into(),
            target: crate::api::TARGETS[0],
        }
    }

    /// Calls one operation and returns its JSON answer.
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value, ClientError> {
        let body = input.to_string();
        let authority = self.endpoint.trim_start_matches("http://").to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let amz_date = sigv4::format_amz_date(now as i64);
        let target = format!("{}.{operation}", self.target.0);
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("host".to_string(), authority),
            ("x-amz-date".to_string(), amz_date.clone()),
            ("x-amz-target".to_string(), target),
        ];
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
        };
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let auth = sigv4::authorization(
            &parts,
            &names,
            &self.access_key,
            &self.secret_key,
            &self.region,
            self.target.1,
            &amz_date,
        );
        let mut b = hyper::Request::post(format!("{}/", self.endpoint));
        for (n, v) in &headers {
            b = b.header(n.as_str(), v.as_str());
        }
        let req = b
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (status, v) = send(&self.http, req).await?;
        if status == 200 {
            return Ok(v);
        }
        let code = v["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("")
            .to_string();
        let message = v["message"].as_str().unwrap_or("").to_string();
        Err(ClientError::Api {
            status,
            code,
            message,
        })
    }

    pub async fn poll(&self) -> Result<Option<Value>, ClientError> {
        let v = self
            .call(
                "PollHostCommand",
                &json!({ "HostIdentifier": self.host_id }),
            )
            .await?;
        Ok(v.get("HostCommand").filter(|c| !c.is_null()).cloned())
    }

    pub async fn get_spec(&self, execution_id: &str) -> Result<Value, ClientError> {
        self.call(
            "GetDeploymentSpecification",
            &json!({ "DeploymentExecutionId": execution_id, "HostIdentifier": self.host_id }),
        )
        .await
    }

    pub async fn ack(&self, command_id: &str, noop: bool) -> Result<String, ClientError> {
        let diag =
            json!({ "Format": "JSON", "Payload": json!({ "IsCommandNoop": noop }).to_string() });
        let v = self
            .call(
                "PutHostCommandAcknowledgement",
                &json!({ "HostCommandIdentifier": command_id, "Diagnostics": diag }),
            )
            .await?;
        Ok(v["CommandStatus"].as_str().unwrap_or("").to_string())
    }

    pub async fn complete(&self, command_id: &str, status: &str) -> Result<(), ClientError> {
        let payload = json!({ "error_code": if status == "Succeeded" { 0 } else { 4 }, "script_name": "", "message": format!("{status}: "), "log": "" });
        let diag = json!({ "Format": "JSON", "Payload": payload.to_string() });
        self.call("PutHostCommandComplete", &json!({ "HostCommandIdentifier": command_id, "CommandStatus": status, "Diagnostics": diag }))
            .await
            .map(|_| ())
    }
}

/// Client of the admin API at `admin_url` (e.g. `http://127.0.0.1:41234/admin`).
#[derive(Clone)]
pub struct AdminClient {
    pub http: Http,
    pub admin_url: String,
}

impl AdminClient {
    pub fn new(admin_url: &str) -> Self {
        AdminClient {
            http: http(4),
            admin_url: admin_url.trim_end_matches('/').to_string(),
        }
    }

    /// Sends `method` to `path` (relative to the admin URL) with an optional JSON body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.admin_url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(data)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (status, v) = send(&self.http, req).await?;
        if status == 200 {
            return Ok(v);
        }
        let message = v["error"].as_str().unwrap_or("").to_string();
        Err(ClientError::Api {
            status,
            code: "AdminError".into(),
            message,
        })
    }
}
