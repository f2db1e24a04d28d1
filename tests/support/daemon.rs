//! The daemon's test world: the emulator (in-process), moto (SigV4 on, versioning) and the
//! built agent as a real `codedeploy-agent run` process, all on loopback, all stopped on drop.
#![allow(dead_code)]

use codedeploy_emulator::{
    Command, CommandState, Deployment, DeploymentRequest, DeploymentStatus, Emulator,
    EmulatorConfig, HostRegistration,
};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

#[path = "moto.rs"]
pub mod moto;

pub const BIN: &str = env!("CARGO_BIN_EXE_codedeploy-agent");

pub struct World {
    pub moto: moto::Moto,
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    pub host_id: String,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
}

impl World {
    /// `None` (after the skip line) where moto is missing.
    pub fn new() -> Option<World> {
        Self::with_host("arn:aws:iam::111122223333:user/host-1")
    }

    /// One registered on-premises host whose keys are moto's, so the agent's one set of
    /// credentials signs both the command service and S3.
    pub fn with_host(host_id: &str) -> Option<World> {
        Self::with_poll_idle(host_id, Duration::from_secs(5))
    }

    /// A world whose emulator answers an idle long poll after `poll_idle`. A test that kills
    /// the agent waits that long before going on: the emulator cannot tell that the dead
    /// agent's poll has no reader, and would hand it the next command.
    pub fn with_poll_idle(host_id: &str, poll_idle: Duration) -> Option<World> {
        Self::with_timeouts(host_id, poll_idle, Duration::from_secs(300))
    }

    /// [`Self::with_poll_idle`] with the emulator failing a command `command_timeout` after
    /// it became ready (a host that does not answer in time).
    pub fn with_timeouts(
        host_id: &str,
        poll_idle: Duration,
        command_timeout: Duration,
    ) -> Option<World> {
        let moto = moto::Moto::start_or_skip()?;
        Some(Self::build(moto, host_id, poll_idle, command_timeout))
    }

    /// [`Self::new`] with moto pacing every connection at `bytes_per_sec`, so a download
    /// lasts a known time (see [`moto::Moto::start_paced_or_skip`]).
    pub fn paced(bytes_per_sec: u64) -> Option<World> {
        let moto = moto::Moto::start_paced_or_skip(Some(bytes_per_sec))?;
        Some(Self::build(
            moto,
            "arn:aws:iam::111122223333:user/host-1",
            Duration::from_secs(5),
            Duration::from_secs(300),
        ))
    }

    fn build(
        moto: moto::Moto,
        host_id: &str,
        poll_idle: Duration,
        command_timeout: Duration,
    ) -> World {
        let emu = Emulator::start(EmulatorConfig {
            poll_idle,
            command_timeout,
            ..EmulatorConfig::default()
        })
        .expect("start the emulator");
        emu.register(HostRegistration {
            host_id: host_id.into(),
            access_key: moto.access_key_id.clone(),
            secret_key: moto.secret_access_key.clone(),
            session_token: None,
            group: "default".into(),
        })
        .expect("register host");
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let s3 = {
            let _g = rt.enter();
            codedeploy_agent::transfer::s3_client(&moto.settings(), &Default::default())
                .expect("s3 client")
        };
        let w = World {
            moto,
            emu,
            dir,
            host_id: host_id.into(),
            rt,
            s3,
        };
        w.write_config(&[]);
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn root(&self) -> PathBuf {
        self.path().join("deployment-root")
    }
    pub fn config(&self) -> PathBuf {
        self.path().join("agent.yml")
    }

    /// Writes the agent's configuration; `extra` lines are appended.
    pub fn write_config(&self, extra: &[&str]) {
        let p = self.path();
        fs::write(
            p.join("onprem.yml"),
            format!(
                "region: {}\niam_user_arn: {}\naws_access_key_id: {}\naws_secret_access_key: {}\n",
                moto::REGION,
                self.host_id,
                self.moto.access_key_id,
                self.moto.secret_access_key
            ),
        )
        .expect("onprem");
        let mut cfg = format!(
            "root_dir: {root}\nlog_dir: {p}/log\npid_dir: {p}/state\non_premises_config_file: {p}/onprem.yml\n\
             deploy_control_endpoint: {emu}\ns3_endpoint_override: {s3}\ndeployment_spec_ca_file: {ca}\n\
             wait_between_runs: 1\nkill_agent_max_wait_time_seconds: 60\n",
            root = self.root().display(),
            p = p.display(),
            emu = self.emu.endpoint(),
            s3 = self.moto.endpoint,
            ca = self.emu.ca_cert_path().display(),
        );
        for l in extra {
            cfg.push_str(l);
            cfg.push('\n');
        }
        fs::write(self.config(), cfg).expect("config");
    }

    /// Uploads an object; returns (version id, ETag).
    pub fn upload(&self, key: &str, body: Vec<u8>) -> (String, String) {
        let out = self
            .rt
            .block_on(
                self.s3
                    .put_object()
                    .bucket(&self.moto.bucket)
                    .key(key)
                    .body(body.into())
                    .send(),
            )
            .expect("put_object");
        (
            out.version_id().expect("versioned bucket").to_string(),
            out.e_tag().expect("etag").to_string(),
        )
    }

    /// A deployment of an uploaded object, pinned by version and ETag.
    pub fn s3_request(
        &self,
        key: &str,
        bundle_type: &str,
        version: &str,
        etag: &str,
    ) -> DeploymentRequest {
        let mut r = DeploymentRequest::s3("default", &self.moto.bucket, key, bundle_type);
        if let codedeploy_emulator::Revision::S3 {
            version: v,
            etag: e,
            ..
        } = &mut r.revision
        {
            *v = Some(version.into());
            *e = Some(etag.into());
        }
        r
    }

    pub fn deploy(&self, req: DeploymentRequest) -> String {
        self.emu.create_deployment(req).expect("create deployment")
    }

    /// Waits (bounded) until the deployment is no longer in progress.
    pub fn wait_done(&self, id: &str, within: Duration) -> Deployment {
        let until = Instant::now() + within;
        loop {
            let d = self.emu.deployment(id).expect("deployment exists");
            if d.status != DeploymentStatus::InProgress || Instant::now() > until {
                return d;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The commands the emulator issued to this host for a deployment, in order.
    pub fn commands(&self, deployment: &str) -> Vec<Command> {
        let mut ids: Vec<String> = Vec::new();
        for e in self.emu.host_history(&self.host_id) {
            if e.deployment_id == deployment {
                if let Some(c) = e.command {
                    if !ids.contains(&c) {
                        ids.push(c);
                    }
                }
            }
        }
        ids.iter().filter_map(|i| self.emu.command(i)).collect()
    }

    pub fn agent(&self) -> Agent {
        Agent::start(&self.config(), &self.path().join("agent.out"))
    }

    /// The agent with extra environment variables (failpoints, containment knobs).
    pub fn agent_with(&self, env: &[(&str, &str)]) -> Agent {
        Agent::start_with(&self.config(), &self.path().join("agent.out"), env)
    }

    pub fn agent_log(&self) -> String {
        let mut s = fs::read_to_string(self.path().join("agent.out")).unwrap_or_default();
        s.push_str(
            &fs::read_to_string(self.path().join("log/codedeploy-agent.log")).unwrap_or_default(),
        );
        s
    }
}

/// The payload of a command's completion diagnostics, parsed.
pub fn diagnostics(c: &Command) -> serde_json::Value {
    c.diagnostics
        .as_ref()
        .and_then(|e| e.payload.as_deref())
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(serde_json::Value::Null)
}

pub fn succeeded(c: &Command) -> bool {
    c.state == CommandState::Succeeded
}

/// A running `codedeploy-agent run`, killed with its process group on drop.
pub struct Agent {
    child: Child,
}

impl Agent {
    pub fn start(config: &Path, out: &Path) -> Agent {
        Self::start_with(config, out, &[])
    }

    pub fn start_with(config: &Path, out: &Path, env: &[(&str, &str)]) -> Agent {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .expect("agent.out");
        let child = std::process::Command::new(BIN)
            .args(["run", "--config-file"])
            .arg(config)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_REGION")
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn agent");
        Agent { child }
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }
    /// Waits (bounded) for the agent to exit; its status if it did.
    pub fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` every 50 ms until it is true or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
