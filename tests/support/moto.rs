//! A moto S3 server for tests and benchmarks, with SigV4 authentication switched on.
//!
//! moto (`python -m moto.server`, PyPI package `moto[server]`) runs from the virtual
//! environment `scripts/test` makes in `target/moto-venv`, else from `$CODEDEPLOY_MOTO_PYTHON`
//! or the system's `python3` when those have it; without moto the tests skip
//! ([`Moto::start_or_skip`]). It is started on a free loopback port with `INITIAL_NO_AUTH_ACTION_COUNT` set, so only the first
//! few actions go unauthenticated: the embedded setup script spends them creating an IAM user with an
//! allow-all policy and an access key, then creates the bucket and enables versioning signed
//! with that key, and checks that a request signed with a wrong secret is refused. Everything
//! after that must carry a valid signature.
//!
//! The server runs in its own process group, killed (and reaped) on drop: no stray processes.
//! Include it with `#[path = "support/moto.rs"] mod moto;`.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use codedeploy_agent::transfer::S3Settings;

#[path = "skip.rs"]
pub mod skip;

/// How to get moto, for the skip line.
pub const HOW: &str = "run scripts/test, or: python3 -m venv target/moto-venv && \
target/moto-venv/bin/pip install 'moto[server]>=5'";

/// A Python that can run moto's server and the set-up script, looked for in this order:
/// `$CODEDEPLOY_MOTO_PYTHON`, `target/moto-venv/bin/python3` (made by scripts/test),
/// `python3`. Checked once per test binary.
pub fn python() -> Option<PathBuf> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/moto-venv/bin/python3");
            std::env::var_os("CODEDEPLOY_MOTO_PYTHON")
                .map(PathBuf::from)
                .into_iter()
                .chain([venv, PathBuf::from("python3")])
                .find(|py| {
                    Command::new(py)
                        .args(["-c", "import moto.server, flask, flask_cors, boto3"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
        })
        .clone()
}

/// Run as `python3 -c SETUP <endpoint> <region> <bucket>`; prints the key as JSON.
const SETUP: &str = r#"
import json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, region, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
boot = dict(endpoint_url=endpoint, region_name=region,
            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", config=cfg)
iam = boto3.client("iam", **boot)
iam.create_user(UserName="agent")
iam.put_user_policy(UserName="agent", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="agent")["AccessKey"]
signed = dict(boot, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3 = boto3.client("s3", **signed)
s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
wrong = boto3.client("s3", **dict(signed, aws_secret_access_key="not-the-secret"))
try:
    wrong.list_objects_v2(Bucket=bucket)
    refused = ""
except ClientError as e:
    refused = e.response["Error"]["Code"]
print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"], "wrong_secret_refused": refused}))
"#;
/// Unauthenticated actions: CreateUser, PutUserPolicy, CreateAccessKey.
const NO_AUTH_ACTIONS: u32 = 3;
pub const REGION: &str = "us-east-1";

pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The error code moto gave a request signed with a wrong secret (SignatureDoesNotMatch).
    pub wrong_secret_refused: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto, or prints the skip line and returns `None` when no Python here has it
    /// (see [`skip`]).
    pub fn start_or_skip() -> Option<Moto> {
        Self::start_paced_or_skip(None)
    }

    /// [`Self::start_or_skip`], with every connection moto accepts paced at `bytes_per_sec`
    /// (benches/paced_moto.py sets SO_MAX_PACING_RATE on it, as S3's per-connection ceiling):
    /// a download then takes at least a known time, whatever the machine's speed.
    pub fn start_paced_or_skip(bytes_per_sec: Option<u64>) -> Option<Moto> {
        match python() {
            Some(py) => Some(Self::start_with(&py, bytes_per_sec)),
            None => {
                skip::skip("moto (python -m moto.server)", HOW, skip::Kind::Tool);
                None
            }
        }
    }

    /// For benchmarks, which cannot skip: starts moto or panics saying how to get it.
    pub fn start() -> Moto {
        let py = python().unwrap_or_else(|| panic!("moto is missing; {HOW}"));
        Self::start_with(&py, None)
    }

    /// Starts moto with `python` and sets it up; panics with the reason (not ready in time).
    fn start_with(python: &std::path::Path, pace: Option<u64>) -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let mut last_err = String::new();
        // A freed port can be taken by someone else before moto binds it: a few tries.
        for _ in 0..3 {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut cmd = Command::new(python);
            match pace {
                None => cmd.args(["-m", "moto.server"]),
                Some(rate) => cmd
                    .arg(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/benches/paced_moto.py"
                    ))
                    .env("PACE_BYTES_PER_SEC", rate.to_string()),
            };
            let mut child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", NO_AUTH_ACTIONS.to_string())
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(dir.path().join("moto.err")).unwrap())
                .process_group(0)
                .spawn()
                .expect("run moto's python");
            match wait_ready(&mut child, addr) {
                Ok(()) => {
                    let mut moto = Moto {
                        child,
                        addr,
                        endpoint: format!("http://{addr}"),
                        bucket: "bundles".into(),
                        access_key_id: String::new(),
                        secret_access_key: String::new(),
                        wrong_secret_refused: String::new(),
                        log,
                        _dir: dir,
                    };
                    moto.setup();
                    return moto;
                }
                Err(e) => {
                    kill_group(&mut child);
                    let mut err = String::new();
                    let _ = std::fs::File::open(dir.path().join("moto.err"))
                        .and_then(|mut f| f.read_to_string(&mut err));
                    last_err = format!("{e}; moto said: {err}");
                }
            }
        }
        panic!("moto did not start: {last_err}");
    }

    fn setup(&mut self) {
        let python = python().unwrap_or_else(|| PathBuf::from("python3"));
        let out = Command::new(python)
            .args(["-c", SETUP, &self.endpoint, REGION, &self.bucket])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        self.access_key_id = v["access_key_id"].as_str().unwrap().to_string();
        self.secret_access_key = v["secret_access_key"].as_str().unwrap().to_string();
        self.wrong_secret_refused = v["wrong_secret_refused"].as_str().unwrap().to_string();
    }

    pub fn credentials(&self) -> SharedCredentialsProvider {
        self.credentials_with_secret(&self.secret_access_key)
    }

    pub fn credentials_with_secret(&self, secret: &str) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Credentials::new(
            &self.access_key_id,
            secret,
            None,
            None,
            "moto-test",
        ))
    }

    /// Settings for the fetcher, pointing at `endpoint` (moto itself, or a proxy before it).
    pub fn settings_via(&self, endpoint: &str) -> S3Settings {
        S3Settings {
            region: REGION.into(),
            endpoint_override: Some(endpoint.to_string()),
            use_fips: false,
            proxy: Default::default(),
            credentials: self.credentials(),
        }
    }

    pub fn settings(&self) -> S3Settings {
        self.settings_via(&self.endpoint)
    }
}

impl Moto {
    /// Uploads `body` as `key` through the SDK, signed with the test user's key; returns the
    /// (version id, ETag) moto gave it (the bucket is versioned).
    pub fn put(&self, key: &str, body: Vec<u8>) -> (String, String) {
        use aws_sdk_s3::primitives::ByteStream;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client =
            codedeploy_agent::transfer::s3_client(&self.settings(), &Default::default()).unwrap();
        let out = rt
            .block_on(
                client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .unwrap();
        (
            out.version_id().unwrap().to_string(),
            out.e_tag().unwrap().to_string(),
        )
    }

    /// The deployment's revision naming `key` in this bucket.
    pub fn revision(
        &self,
        key: &str,
        kind: codedeploy_agent::deployspec::BundleType,
        version: Option<&str>,
        etag: Option<&str>,
    ) -> codedeploy_agent::deployspec::Revision {
        codedeploy_agent::deployspec::Revision::S3 {
            bucket: self.bucket.clone(),
            key: key.into(),
            bundle_type: kind,
            version: version.map(str::to_string),
            etag: etag.map(str::to_string),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Bounded wait until the port accepts connections (moto takes a few seconds to import).
fn wait_ready(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("moto exited with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("not listening after 60 s".into())
}

/// TERM to the whole group (moto may fork helpers), a bounded wait, then KILL; always reaped.
fn kill_group(child: &mut Child) {
    use nix::sys::signal::{killpg, Signal};
    // Delivery failures (ESRCH: the group is gone) are what the wait below wants.
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // Ends any helper left in the group.
            let _ = killpg(pgid, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}

/// Uploads the file at `body` as `key` (boto3, signed with the test user's key), for tests
/// that drive the built binary and so cannot use the SDK client in-process.
pub fn upload_file(moto: &Moto, key: &str, body: &std::path::Path) {
    let py = python().expect("moto's python");
    let script = "import boto3, sys\n\
s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name=sys.argv[2], aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])\n\
s3.upload_file(sys.argv[6], sys.argv[5], sys.argv[7])\n";
    let st = Command::new(py)
        .args(["-c", script, &moto.endpoint, REGION])
        .args([&moto.access_key_id, &moto.secret_access_key, &moto.bucket])
        .arg(body)
        .arg(key)
        .status()
        .expect("python");
    assert!(st.success(), "upload of {key} failed");
}
