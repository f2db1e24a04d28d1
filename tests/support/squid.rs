//! A real forward proxy for tests: Debian's squid on a free loopback port, with basic
//! authentication (one user, its password checked by squid's own `basic_ncsa_auth` helper
//! against an htpasswd file made with `openssl passwd -apr1`), nothing cached, every request
//! in its access log (`TCP_DENIED/407 ... GET http://...`, `TCP_MISS/200 ... POST ...`,
//! `TCP_TUNNEL/200 ... CONNECT host:port`), so a test can prove what went through it.
//!
//! Squid runs in the foreground (`-N`) in its own process group with a service name of its own
//! (parallel tests do not share its shared-memory segments); the group (squid and its helpers)
//! is killed and reaped on drop, and its segments in /dev/shm removed: no stray processes or
//! files. Without squid or openssl the test skips (scripts/test installs both). Include it with
//! `#[path = "support/squid.rs"]` and make `crate::skip` the skip helper.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// The includer provides `skip` (tests/support/skip.rs) at its root, by `mod` or by `use` of
// moto's copy: one copy per test binary (clippy refuses a second `mod` of the same file).
use crate::skip;

const HOW: &str = "run scripts/test, or: apt-get install -y squid openssl";

pub struct Squid {
    child: Child,
    /// `-n`: the service name, which also names its shared-memory segments.
    name: String,
    pub addr: SocketAddr,
    pub user: String,
    dir: tempfile::TempDir,
}

fn squid_binary() -> Option<PathBuf> {
    ["/usr/sbin/squid", "/usr/bin/squid"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl Squid {
    /// Starts squid requiring `user`/`password`, or prints the skip line and returns None.
    pub fn start_or_skip(user: &str, password: &str) -> Option<Squid> {
        let Some(bin) = squid_binary() else {
            skip::skip("squid", HOW, skip::Kind::Tool);
            return None;
        };
        skip::require_tool("openssl", HOW)?;
        Some(Self::start(&bin, user, password))
    }

    fn start(bin: &Path, user: &str, password: &str) -> Squid {
        let dir = tempfile::tempdir().expect("tempdir");
        // Squid started as root works as the `proxy` user: it must write its logs here and
        // its helper must read the password file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let hash = Command::new("openssl")
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl passwd");
        assert!(hash.status.success(), "openssl passwd failed");
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            format!("{user}:{}\n", String::from_utf8_lossy(&hash.stdout).trim()),
        )
        .unwrap();
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut last = String::new();
        // A freed port can be taken before squid binds it: a few tries.
        for _ in 0..3 {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let d = dir.path().display();
            let conf = dir.path().join("squid.conf");
            std::fs::write(
                &conf,
                format!(
                    "http_port 127.0.0.1:{port}\n\
                     pid_filename {d}/squid.pid\n\
                     access_log stdio:{d}/access.log\n\
                     cache_log {d}/cache.log\n\
                     cache deny all\n\
                     auth_param basic program /usr/lib/squid/basic_ncsa_auth {passwd}\n\
                     auth_param basic children 2 startup=1 idle=1\n\
                     auth_param basic realm codedeploy-test\n\
                     acl authed proxy_auth REQUIRED\n\
                     http_access allow authed\n\
                     http_access deny all\n\
                     shutdown_lifetime 0 seconds\n",
                    passwd = passwd.display()
                ),
            )
            .unwrap();
            let name = format!("cdtest{port}");
            let mut child = Command::new(bin)
                .args(["-N", "-n", &name, "-f"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(dir.path().join("squid.out")).unwrap())
                .stderr(std::fs::File::create(dir.path().join("squid.err")).unwrap())
                .process_group(0)
                .spawn()
                .expect("spawn squid");
            match wait_ready(&mut child, addr) {
                Ok(()) => {
                    return Squid {
                        child,
                        name,
                        addr,
                        user: user.into(),
                        dir,
                    }
                }
                Err(e) => {
                    kill_group(&mut child, &name);
                    last = format!(
                        "{e}; squid said: {}{}",
                        std::fs::read_to_string(dir.path().join("squid.err")).unwrap_or_default(),
                        std::fs::read_to_string(dir.path().join("cache.log")).unwrap_or_default()
                    );
                }
            }
        }
        panic!("squid did not start: {last}");
    }

    /// `http://user:password@127.0.0.1:port` with `password` as given (percent-encode it).
    pub fn url_with(&self, password_in_url: &str) -> String {
        format!("http://{}:{password_in_url}@{}", self.user, self.addr)
    }

    /// `host:port` as the agent's messages name it.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The access log so far (squid writes a line when a request ends).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Access-log lines whose request names `target` (e.g. `POST http://127.0.0.1:1234/`).
    pub fn requests(&self, target: &str) -> Vec<String> {
        self.access_log()
            .lines()
            .filter(|l| l.contains(target))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        kill_group(&mut self.child, &self.name);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind")
}

/// Bounded wait until squid accepts connections.
fn wait_ready(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("squid exited with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("not listening after 30 s".into())
}

/// KILL to the whole group (squid and its auth helpers), then reaped; the shared-memory
/// segments a killed squid cannot remove (`/dev/shm/<name>-*.shm`) are removed here.
fn kill_group(child: &mut Child, name: &str) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let prefix = format!("{name}-");
    for e in std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&prefix) && n.ends_with(".shm") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
