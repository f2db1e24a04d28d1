//! Shared fixture for the hook tests: a temporary deployment with an archive directory,
//! script writing, and finding/killing processes by a unique marker in their command line.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use codedeploy_agent::appspec::model::{Pos, Script};
use codedeploy_agent::hooks::{
    run_event, Containment, EventReport, HookContext, HookFailure, HookProgress,
};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub archive: PathBuf,
    pub scripts_log: PathBuf,
    pub deployments_log: PathBuf,
    pub markers: Vec<String>,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Scripts run as `nobody` must be able to reach the archive.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let archive = dir.path().join("d-TEST/deployment-archive");
        fs::create_dir_all(&archive).unwrap();
        Self {
            scripts_log: dir.path().join("d-TEST/logs/scripts.log"),
            deployments_log: dir
                .path()
                .join("deployment-logs/codedeploy-agent-deployments.log"),
            archive,
            dir,
            markers: Vec::new(),
        }
    }

    pub fn script(&self, rel: &str, body: &str, mode: u32) {
        let p = self.archive.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A fresh marker; every process carrying it is killed when the fixture drops.
    pub fn marker(&mut self) -> String {
        let m = format!(
            "hooktest-marker-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        self.markers.push(m.clone());
        m
    }

    pub fn ctx(&self, event: &str, containment: Containment) -> HookContext {
        let mut c = HookContext::new(event, "d-TEST", &self.archive, &self.scripts_log);
        c.application_name = "app".into();
        c.deployment_group_name = "grp".into();
        c.deployment_group_id = "gid-1".into();
        c.deployments_log = Some(self.deployments_log.clone());
        c.containment = containment;
        c.kill_grace = Duration::from_millis(500);
        c
    }

    pub fn run(
        &self,
        ctx: &HookContext,
        scripts: &[Script],
    ) -> (Result<EventReport, HookFailure>, Vec<HookProgress>) {
        let mut seen = Vec::new();
        let r = run_event(ctx, scripts, &mut |p| seen.push(p));
        (r, seen)
    }

    pub fn scripts_log_text(&self) -> String {
        fs::read_to_string(&self.scripts_log).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Repeat: a process may fork between a scan and the kill (setsid forks when it
        // leads its process group).
        for m in &self.markers {
            for _ in 0..100 {
                let pids = pids_with(m);
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

pub fn script(location: &str, timeout_secs: u32) -> Script {
    Script {
        location: location.into(),
        timeout_secs,
        runas: None,
        sudo: false,
        pos: Pos::default(),
    }
}

/// Live (non-zombie) processes whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd =
            fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(marker) {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) for `marker` to appear: a daemon started in the background may need a
/// moment to exec after its parent returned.
pub fn wait_for(marker: &str) -> Vec<i32> {
    for _ in 0..250 {
        let p = pids_with(marker);
        if !p.is_empty() {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Vec::new()
}
