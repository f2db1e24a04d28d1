//! The packaged agent under a real systemd 252 and journald: a Debian 12 container booted
//! with systemd-nspawn (tests/support/nspawn.rs), the .deb of packaging/build.sh installed with
//! dpkg, the emulator and moto on the host's loopback. One boot per cgroup layout (the host's
//! hybrid one and pure cgroup v2), the checks in sequence:
//! start reaches active through READY; a slow hook shows in `systemctl status` (event, script,
//! a live elapsed time), in `journalctl -o json` (DEPLOYMENT_ID, LIFECYCLE_EVENT, SCRIPT), in
//! `logs --follow` and `status --json`; `systemctl stop` drains the hook and reports it; kill -9
//! mid-hook, then systemd's restart reports code 7 and ends the hook; the watchdog restarts an
//! agent that stopped moving (SIGSTOP); a newer .deb installed during a hook waits for it and
//! restarts; a hook printing 200,000 lines costs the agent none of its own journal records;
//! remove and purge leave what README.md says.
//!
//! Skips with one line where nspawn cannot run (not root, tools missing, inside a container)
//! or when no .deb was built.

#[path = "support/common.rs"]
mod common;
#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/nspawn.rs"]
mod nspawn_support;

use codedeploy_emulator::{CommandState, DeploymentStatus};
use common::*;
use daemon_support::*;
use nspawn_support::{cached_root, skip_reason, target_dir, Machine, SHARED};
use std::collections::BTreeMap;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The emulator's idle long poll. Longer than the STATUS= refresh the test demands, so a
/// status that only changes once per poll is caught; after the agent stops or dies the test
/// waits this long, so that no command goes to the dead agent's outstanding poll.
const POLL_IDLE: Duration = Duration::from_secs(8);
const HOST: &str = "arn:aws:iam::111122223333:user/nspawn-host";
const UNIT: &str = "codedeploy-agent.service";
const AGENT: &str = "/opt/codedeploy-agent/bin/codedeploy-agent";
/// Hook output, and the record saying how much of it was left out of the journal.
const HOOK_TARGET: &str = "codedeploy_agent::hook_output";
const HOOK_SUMMARY_TARGET: &str = "codedeploy_agent::hook_output::summary";

/// One container at a time: two boots at once would only compete for the same 2 cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One named check of the sequence.
type Step = (&'static str, fn(&mut Fixture));

#[test]
fn packaged_agent_under_real_systemd_hybrid_cgroups() {
    under_real_systemd(false);
}

#[test]
fn packaged_agent_under_real_systemd_unified_cgroups() {
    under_real_systemd(true);
}

fn under_real_systemd(unified: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = skip_reason() {
        println!("SKIPPED systemd_real: {} is missing; {}", m.what, m.how);
        return;
    }
    let Some(deb) = built_deb() else {
        println!("SKIPPED systemd_real: a built .deb is missing; run packaging/build.sh --install-tools (scripts/test does)");
        return;
    };
    let base = cached_root();
    let started = Instant::now();
    // None: moto is missing (the skip line is printed where that is decided).
    let Some(mut f) = Fixture::new(base.as_path(), unified, &deb) else {
        return;
    };
    let steps: [Step; 8] = [
        ("install and start", Fixture::install_and_start),
        ("a slow hook seen from outside", Fixture::slow_hook_seen),
        ("stop drains the hook", Fixture::stop_drains),
        ("kill -9 mid-hook", Fixture::kill_mid_hook),
        ("watchdog", Fixture::watchdog_restarts),
        ("upgrade during a hook", Fixture::upgrade_waits),
        ("flooding hook", Fixture::flood_keeps_agent_records),
        ("remove and purge", Fixture::remove_and_purge),
    ];
    for (name, step) in steps {
        let t = Instant::now();
        step(&mut f);
        eprintln!(
            "[{}] {name}: ok in {:.1} s",
            f.layout(),
            t.elapsed().as_secs_f64()
        );
    }
    let left = f.m.shutdown();
    assert!(left.is_empty(), "processes left in the container: {left:?}");
    eprintln!(
        "[{}] all checks in {:.1} s (boot included)",
        f.layout(),
        started.elapsed().as_secs_f64()
    );
}

/// The newest .deb packaging/build.sh made.
fn built_deb() -> Option<PathBuf> {
    let dir = target_dir().join("packages");
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "deb")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("codedeploy-agent-rs_"))
        })
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// The same package with a higher version (`<v>+nspawn1`): what an upgrade installs.
fn newer_deb(deb: &Path, into: &Path) -> (PathBuf, String) {
    let tree = into.join("newer-tree");
    let _ = fs::remove_dir_all(&tree);
    let ok = |c: &mut Command, what: &str| {
        let out = c.output().expect(what);
        assert!(
            out.status.success(),
            "{what}: {}",
            nspawn_support::text(&out)
        );
    };
    ok(
        Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree),
        "dpkg-deb -R",
    );
    let control = tree.join("DEBIAN/control");
    let c = fs::read_to_string(&control).expect("control");
    let mut version = String::new();
    let c: String = c
        .lines()
        .map(|l| match l.strip_prefix("Version: ") {
            Some(v) => {
                version = format!("{v}+nspawn1");
                format!("Version: {version}\n")
            }
            None => format!("{l}\n"),
        })
        .collect();
    fs::write(&control, c).expect("write control");
    let out = into.join("newer.deb");
    ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-b"])
            .arg(&tree)
            .arg(&out),
        "dpkg-deb -b",
    );
    let _ = fs::remove_dir_all(&tree);
    (out, version)
}

/// `World::with_poll_idle` returns the world, or (where moto may be missing and the test
/// skips) an `Option` of it; this accepts both, so the test builds on either side of that change.
trait IntoWorld {
    fn into_world(self) -> Option<World>;
}
impl IntoWorld for World {
    fn into_world(self) -> Option<World> {
        Some(self)
    }
}
impl IntoWorld for Option<World> {
    fn into_world(self) -> Option<World> {
        self
    }
}

struct Fixture {
    // Field order is drop order: the container goes before the servers it talks to.
    m: Machine,
    w: World,
    deb: String,
    newer: (String, String),
    /// The bundles, uploaded once: (key, version, etag).
    bundles: BTreeMap<&'static str, (String, String, String)>,
}

impl Fixture {
    fn new(base: &Path, unified: bool, deb: &Path) -> Option<Fixture> {
        let w = World::with_poll_idle(HOST, POLL_IDLE).into_world()?;
        let m = Machine::boot(base, unified);
        let deb_in = m.put("agent.deb", &fs::read(deb).expect("read the .deb"));
        let (newer, version) = newer_deb(deb, w.path());
        let newer_in = m.put("newer.deb", &fs::read(&newer).expect("read the newer .deb"));
        let mut f = Fixture {
            m,
            w,
            deb: deb_in,
            newer: (newer_in, version),
            bundles: BTreeMap::new(),
        };
        f.publish_bundles();
        Some(f)
    }

    fn layout(&self) -> &'static str {
        if self.m.unified {
            "cgroup v2"
        } else {
            "hybrid"
        }
    }

    /// Every hook writes its markers into the shared directory, which the test reads directly.
    fn publish_bundles(&mut self) {
        let s = SHARED;
        let slow = format!(
            "#!/bin/sh\necho \"slow-start $DEPLOYMENT_ID\"\ntouch {s}/$DEPLOYMENT_ID.started\n\
             sleep \"$(cat {s}/slow-seconds)\"\necho \"slow-end $DEPLOYMENT_ID\"\ntouch {s}/$DEPLOYMENT_ID.done\n"
        );
        let hang = format!(
            "#!/bin/sh\necho $$ > {s}/$DEPLOYMENT_ID.pid\ntouch {s}/$DEPLOYMENT_ID.started\nexec sleep 601\n"
        );
        let lines = |n: u32| format!("#!/bin/sh\nseq 1 {n}\ntouch {s}/$DEPLOYMENT_ID.done\n");
        let plan: [(&'static str, &str, String); 4] = [
            ("slow", "slow.sh", slow),
            ("hang", "hang.sh", hang),
            ("few", "out.sh", lines(3)),
            ("flood", "out.sh", lines(200_000)),
        ];
        for (name, script, body) in plan {
            let dir = self.w.path().join(format!("bundle-{name}"));
            write(
                &dir.join("appspec.yml"),
                &format!(
                    "version: 0.0\nos: linux\nfiles:\n  - source: {script}\n    destination: /srv/app-{name}\n\
                     hooks:\n  BeforeInstall:\n    - location: {script}\n      timeout: 300\n"
                ),
                false,
            );
            write(&dir.join(script), &body, true);
            let tgz = self.w.path().join(format!("{name}.tgz"));
            make_tgz(&dir, &tgz);
            let (v, e) = self.w.upload(name, fs::read(&tgz).expect("tgz"));
            self.bundles.insert(name, (name.to_string(), v, e));
        }
    }

    fn deploy(&self, bundle: &str) -> String {
        let (k, v, e) = &self.bundles[bundle];
        self.w.deploy(self.w.s3_request(k, "tgz", v, e))
    }

    fn marker(&self, id: &str, what: &str) -> PathBuf {
        self.m.shared.join(format!("{id}.{what}"))
    }

    fn wait_marker(&self, id: &str, what: &str, within: Duration) {
        let p = self.marker(id, what);
        assert!(
            eventually(within, || p.exists()),
            "[{}] {id}: no {what} marker within {within:?}; agent journal:\n{}",
            self.layout(),
            self.journal_tail()
        );
    }

    fn set_slow(&self, secs: u32) {
        fs::write(self.m.shared.join("slow-seconds"), secs.to_string()).expect("slow-seconds");
    }

    fn show(&self, prop: &str) -> String {
        self.m
            .ok(&format!("systemctl show -p {prop} --value {UNIT}"))
            .trim()
            .to_string()
    }

    fn main_pid(&self) -> i32 {
        self.show("MainPID").parse().unwrap_or(0)
    }

    fn journal_tail(&self) -> String {
        String::from_utf8_lossy(
            &self
                .m
                .sh(&format!("journalctl -u {UNIT} --no-pager -n 40"))
                .stdout,
        )
        .into_owned()
    }

    /// The unit's journal records of one deployment, as JSON objects.
    fn journal(&self, deployment: &str) -> Vec<serde_json::Value> {
        let out = self.m.ok(&format!(
            "journalctl -o json --no-pager -u {UNIT} DEPLOYMENT_ID={deployment}"
        ));
        out.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn wait_active(&self, within: Duration, not_pid: i32) -> i32 {
        let mut pid = 0;
        let ok = eventually(within, || {
            pid = self.main_pid();
            pid > 0 && pid != not_pid && self.show("ActiveState") == "active"
        });
        assert!(
            ok,
            "[{}] the agent is not active again (MainPID {pid}, was {not_pid}):\n{}",
            self.layout(),
            self.journal_tail()
        );
        pid
    }

    fn wait_deployment(&self, id: &str, want: DeploymentStatus) {
        let d = self.w.wait_done(id, Duration::from_secs(120));
        assert_eq!(
            d.status,
            want,
            "[{}] deployment {id}: {:?}\n{}",
            self.layout(),
            self.w.commands(id),
            self.journal_tail()
        );
    }

    fn install_and_start(&mut self) {
        let onprem = format!(
            "region: {}\niam_user_arn: {HOST}\naws_access_key_id: {}\naws_secret_access_key: {}\n",
            daemon_support::moto::REGION,
            self.w.moto.access_key_id,
            self.w.moto.secret_access_key
        );
        let conf = "/etc/codedeploy-agent/conf";
        let config = format!(
            "root_dir: /opt/codedeploy-agent/deployment-root\nlog_dir: /var/log/aws/codedeploy-agent\n\
             pid_dir: /opt/codedeploy-agent/state/.pid\non_premises_config_file: {conf}/codedeploy.onpremises.yml\n\
             deploy_control_endpoint: {}\ns3_endpoint_override: {}\ndeployment_spec_ca_file: {conf}/emulator-ca.pem\n\
             wait_between_runs: 1\nkill_agent_max_wait_time_seconds: 60\n",
            self.w.emu.endpoint(),
            self.w.moto.endpoint
        );
        self.m.put("onprem.yml", onprem.as_bytes());
        self.m.put("agent.yml", config.as_bytes());
        self.m.put(
            "ca.pem",
            &fs::read(self.w.emu.ca_cert_path()).expect("emulator CA"),
        );
        self.m.ok(&format!(
            "mkdir -p {conf} && cp {SHARED}/onprem.yml {conf}/codedeploy.onpremises.yml && \
             cp {SHARED}/agent.yml {conf}/codedeployagent.yml && cp {SHARED}/ca.pem {conf}/emulator-ca.pem"
        ));
        // postinst enables and starts the unit; Type=notify: `systemctl start` returns once
        // the agent sent READY=1 (identity and crash recovery done).
        let out = self
            .m
            .sh_within(&format!("dpkg -i {}", self.deb), Duration::from_secs(180));
        assert!(
            out.status.success(),
            "dpkg -i: {}",
            nspawn_support::text(&out)
        );
        // The TLS client cannot start without the system's CA store: a dependency.
        let depends = self
            .m
            .ok("dpkg-query -W -f '${Depends}' codedeploy-agent-rs");
        assert!(depends.contains("ca-certificates"), "Depends: {depends}");
        assert_eq!(self.show("Type"), "notify");
        assert_eq!(
            self.show("ActiveState"),
            "active",
            "{}",
            self.journal_tail()
        );
        assert_eq!(self.show("SubState"), "running");
        assert_eq!(self.show("UnitFileState"), "enabled");
        assert!(self.main_pid() > 0);
        let mut status = String::new();
        assert!(
            eventually(Duration::from_secs(20), || {
                status = self.show("StatusText");
                status == "idle, polling"
            }),
            "STATUS= after start: {status:?}"
        );
        let j = self
            .m
            .ok(&format!("journalctl -u {UNIT} --no-pager -o cat"));
        assert!(j.contains("agent started; polling for commands"), "{j}");
    }

    fn slow_hook_seen(&mut self) {
        self.set_slow(14);
        let id = self.deploy("slow");
        self.wait_marker(&id, "started", Duration::from_secs(60));
        let hook_started = Instant::now();

        // systemctl status: the event, the script and an elapsed time that keeps up.
        let mut samples = Vec::new();
        while hook_started.elapsed() < Duration::from_secs(9) {
            std::thread::sleep(Duration::from_secs(1));
            let st = self.show("StatusText");
            let real = hook_started.elapsed().as_secs();
            samples.push((real, st));
        }
        for (_, st) in &samples {
            assert!(
                st.contains(&id) && st.contains("BeforeInstall") && st.contains("slow.sh"),
                "STATUS= during the hook: {st:?}"
            );
        }
        let shown: Vec<(u64, u64)> = samples
            .iter()
            .map(|(real, st)| (*real, elapsed_in(st).unwrap_or(0)))
            .collect();
        for (real, s) in &shown {
            assert!(
                s + 4 >= *real,
                "STATUS= elapsed {s} s lags the hook's real {real} s: {samples:?}"
            );
        }
        let full = self.m.ok(&format!(
            "systemctl status --no-pager --lines=0 {UNIT} || true"
        ));
        assert!(
            full.contains("Status:") && full.contains("slow.sh"),
            "systemctl status: {full}"
        );

        // status --json: the running event and script.
        // As the README types it: the package puts the command on PATH.
        let js = self.m.ok("codedeploy-agent status --json");
        let v: serde_json::Value = serde_json::from_str(&js).expect("status --json is JSON");
        let running = v["in_progress"].as_array().cloned().unwrap_or_default();
        assert!(
            running.iter().any(|p| p["deployment_id"] == id.as_str()
                && p["event"] == "BeforeInstall"
                && p["script"].as_str().is_some_and(|s| s.contains("slow.sh"))),
            "status --json: {js}"
        );

        // logs --follow prints the line the hook wrote.
        let mut follow = self.m.spawn(&format!("exec {AGENT} logs --follow"));
        let stdout = follow.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let want = format!("slow-start {id}");
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(&want) {
                    let _ = tx.send(line);
                }
            }
        });
        let got = rx.recv_timeout(Duration::from_secs(20));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(follow.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = follow.wait();
        let _ = reader.join();
        assert!(got.is_ok(), "logs --follow did not print the hook's line");

        self.wait_marker(&id, "done", Duration::from_secs(60));
        self.wait_deployment(&id, DeploymentStatus::Succeeded);

        // The journal: hook lines carry the deployment, event and script.
        let recs = self.journal(&id);
        let hook_line = recs
            .iter()
            .find(|r| {
                r["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| m.contains("slow-end"))
            })
            .unwrap_or_else(|| panic!("no hook line in the journal: {recs:?}"));
        assert_eq!(hook_line["DEPLOYMENT_ID"], id.as_str());
        assert_eq!(hook_line["LIFECYCLE_EVENT"], "BeforeInstall");
        assert_eq!(hook_line["PRIORITY"], "6", "hook output at priority info");
        assert!(
            hook_line["SCRIPT"]
                .as_str()
                .is_some_and(|s| s.contains("slow.sh")),
            "{hook_line}"
        );
    }

    fn stop_drains(&mut self) {
        self.set_slow(8);
        let id = self.deploy("slow");
        self.wait_marker(&id, "started", Duration::from_secs(60));
        let pid = self.main_pid();
        self.m.ok(&format!("systemctl stop --no-block {UNIT}"));
        let mut seen_stopping = String::new();
        let stopped = eventually(Duration::from_secs(60), || {
            let st = self.show("StatusText");
            if st.starts_with("stopping") && seen_stopping.is_empty() {
                seen_stopping = st;
            }
            self.show("ActiveState") == "inactive"
        });
        assert!(stopped, "the agent did not stop:\n{}", self.journal_tail());
        assert!(
            self.marker(&id, "done").exists(),
            "stop did not wait for the running hook"
        );
        assert!(
            seen_stopping.contains(&id) && seen_stopping.contains("slow.sh"),
            "STATUS= while stopping: {seen_stopping:?}"
        );
        let cmds = self.w.commands(&id);
        assert!(
            cmds.iter()
                .any(|c| c.name == "BeforeInstall" && c.state == CommandState::Succeeded),
            "the drained hook was not reported: {cmds:?}"
        );
        let j = self.m.ok(&format!(
            "journalctl -u {UNIT} --no-pager -o cat _PID={pid}"
        ));
        assert!(j.contains("received SIGTERM"), "{j}");
        assert!(j.contains("agent exiting now"), "{j}");
        // Let the stopped agent's abandoned long poll lapse before the next deployment.
        std::thread::sleep(POLL_IDLE + Duration::from_secs(1));
        self.m.ok(&format!("systemctl start {UNIT}"));
        self.wait_active(Duration::from_secs(30), pid);
        self.wait_deployment(&id, DeploymentStatus::Succeeded);
    }

    fn kill_mid_hook(&mut self) {
        let id = self.deploy("hang");
        self.wait_marker(&id, "started", Duration::from_secs(60));
        let hook: i32 = fs::read_to_string(self.marker(&id, "pid"))
            .expect("hook pid")
            .trim()
            .parse()
            .expect("pid");
        let restarts: u32 = self.show("NRestarts").parse().unwrap_or(0);
        let pid = self.main_pid();
        self.m.ok(&format!("kill -9 {pid}"));
        let killed = Instant::now();
        // Restart=on-failure after RestartSec=10s.
        self.wait_active(Duration::from_secs(60), pid);
        assert!(self.show("NRestarts").parse::<u32>().unwrap_or(0) > restarts);
        let ok = eventually(Duration::from_secs(60), || {
            self.w
                .commands(&id)
                .iter()
                .any(|c| c.name == "BeforeInstall" && c.state == CommandState::Failed)
        });
        let cmds = self.w.commands(&id);
        assert!(ok, "no failure reported after the restart: {cmds:?}");
        let c = cmds
            .iter()
            .find(|c| c.name == "BeforeInstall")
            .expect("the hook's command");
        assert_eq!(diagnostics(c)["error_code"], 7, "{c:?}");
        let gone = self.m.sh(&format!("kill -0 {hook}"));
        assert!(
            !gone.status.success(),
            "the killed agent's hook (pid {hook} inside) still runs"
        );
        self.wait_deployment(&id, DeploymentStatus::Failed);
        let lapse = POLL_IDLE + Duration::from_secs(1);
        if let Some(rest) = lapse.checked_sub(killed.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    fn watchdog_restarts(&mut self) {
        let dropin = format!("/etc/systemd/system/{UNIT}.d/90-test-watchdog.conf");
        self.m.ok(&format!(
            "mkdir -p /etc/systemd/system/{UNIT}.d && printf '[Service]\\nWatchdogSec=6s\\nRestartSec=1s\\n' > {dropin} \
             && systemctl daemon-reload && systemctl restart {UNIT}"
        ));
        let pid = self.wait_active(Duration::from_secs(30), 0);
        let restarts: u32 = self.show("NRestarts").parse().unwrap_or(0);
        // The whole agent stops moving, its poll loop with it.
        self.m.ok(&format!("kill -STOP {pid}"));
        let stopped = Instant::now();
        let new = self.wait_active(Duration::from_secs(60), pid);
        assert!(self.show("NRestarts").parse::<u32>().unwrap_or(0) > restarts);
        let j = self
            .m
            .ok(&format!("journalctl -u {UNIT} --no-pager -o cat"));
        assert!(j.contains("Watchdog timeout"), "{j}");
        assert!(
            !self.m.sh(&format!("kill -0 {pid}")).status.success(),
            "the stopped agent {pid} is still there beside {new}"
        );
        self.m.ok(&format!(
            "rm {dropin} && systemctl daemon-reload && systemctl restart {UNIT}"
        ));
        self.wait_active(Duration::from_secs(30), new);
        let lapse = POLL_IDLE + Duration::from_secs(1);
        if let Some(rest) = lapse.checked_sub(stopped.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    fn upgrade_waits(&mut self) {
        self.set_slow(10);
        let id = self.deploy("slow");
        self.wait_marker(&id, "started", Duration::from_secs(60));
        let pid = self.main_pid();
        let out = self.m.sh_within(
            &format!("dpkg -i {}", self.newer.0),
            Duration::from_secs(180),
        );
        let upgraded = Instant::now();
        assert!(
            out.status.success(),
            "dpkg -i newer: {}",
            nspawn_support::text(&out)
        );
        assert!(
            self.marker(&id, "done").exists(),
            "the upgrade did not wait for the running hook"
        );
        let v = self
            .m
            .ok("dpkg-query -W -f '${Version}' codedeploy-agent-rs");
        assert_eq!(v.trim(), self.newer.1);
        self.wait_active(Duration::from_secs(30), pid);
        let cmds = self.w.commands(&id);
        assert!(
            cmds.iter()
                .any(|c| c.name == "BeforeInstall" && c.state == CommandState::Succeeded),
            "{cmds:?}"
        );
        let lapse = POLL_IDLE + Duration::from_secs(1);
        if let Some(rest) = lapse.checked_sub(upgraded.elapsed()) {
            std::thread::sleep(rest);
        }
        self.wait_deployment(&id, DeploymentStatus::Succeeded);
    }

    /// The agent's own records of a deployment (not its hooks' output).
    fn own_records(&self, id: &str) -> Vec<String> {
        self.journal(id)
            .iter()
            .filter(|r| r["TARGET"] != HOOK_TARGET && r["TARGET"] != HOOK_SUMMARY_TARGET)
            .map(|r| r["MESSAGE"].as_str().unwrap_or("").replace(id, "<id>"))
            .collect()
    }

    fn flood_keeps_agent_records(&mut self) {
        let mut own = Vec::new();
        for bundle in ["few", "flood", "few"] {
            let id = self.deploy(bundle);
            self.wait_deployment(&id, DeploymentStatus::Succeeded);
            // journald may still be taking in what the hook and the agent sent last: wait
            // (bounded) until two reads 2 s apart agree.
            let mut recs = Vec::new();
            let mut settled = false;
            for _ in 0..30 {
                let now = self.own_records(&id);
                if !now.is_empty() && now == recs {
                    settled = true;
                    break;
                }
                recs = now;
                std::thread::sleep(Duration::from_secs(2));
            }
            assert!(settled, "the journal of {id} did not settle: {recs:?}");
            own.push((id, recs));
        }
        // Command ids and durations differ between deployments; so does whether an old
        // revision was pruned (that depends on how many earlier ones are kept, not on the flood).
        let strip = |v: &[String]| -> Vec<String> {
            v.iter()
                .filter(|m| !m.starts_with("removed old revision "))
                .map(|m| {
                    let mut prev = "";
                    let mut words = Vec::new();
                    for w in m.split_whitespace() {
                        words.push(if prev == "command" {
                            "<cmd>"
                        } else if w.parse::<f64>().is_ok() {
                            "<n>"
                        } else {
                            w
                        });
                        prev = w;
                    }
                    words.join(" ")
                })
                .collect()
        };
        let reference = strip(&own[0].1);
        assert!(
            reference.len() >= 3,
            "too few agent records to compare: {:?}",
            own[0].1
        );
        assert_eq!(
            strip(&own[1].1),
            reference,
            "the flooding deployment lost agent records"
        );
        assert_eq!(
            strip(&own[2].1),
            reference,
            "the deployment after the flood lost agent records"
        );
        // One line says how many lines were left out and where all of them are.
        let flood = self.journal(&own[1].0);
        let summary = flood
            .iter()
            .find(|r| r["TARGET"] == HOOK_SUMMARY_TARGET)
            .unwrap_or_else(|| panic!("no left-out line for the flooding script"));
        let text = summary["MESSAGE"].as_str().unwrap_or("");
        assert!(
            text.contains("left out") && text.contains("scripts.log"),
            "{summary}"
        );
        let suppressed = self
            .m
            .ok("journalctl --no-pager -o cat -u systemd-journald.service");
        assert!(
            !suppressed.contains("Suppressed"),
            "journald dropped records: {suppressed}"
        );
    }

    fn remove_and_purge(&mut self) {
        self.m.ok("dpkg -r codedeploy-agent-rs");
        assert_ne!(self.show("ActiveState"), "active");
        let exists = |p: &str| self.m.sh(&format!("test -e {p}")).status.success();
        assert!(!exists(AGENT), "removal leaves the binary");
        assert!(
            !exists("/usr/bin/codedeploy-agent"),
            "removal leaves the PATH link"
        );
        for kept in [
            "/etc/codedeploy-agent/conf/codedeployagent.yml",
            "/opt/codedeploy-agent/deployment-root",
            "/var/log/aws/codedeploy-agent",
        ] {
            assert!(exists(kept), "removal must keep {kept}");
        }
        self.m.ok("dpkg -P codedeploy-agent-rs");
        for gone in [
            "/etc/codedeploy-agent/conf/codedeployagent.yml",
            "/var/log/aws/codedeploy-agent",
            "/opt/codedeploy-agent/state",
        ] {
            assert!(!exists(gone), "purge must remove {gone}");
        }
        assert!(
            exists("/opt/codedeploy-agent/deployment-root"),
            "purge keeps the deployment root (README)"
        );
        let agents = self.m.pids_with("codedeploy-agent");
        assert!(
            agents.is_empty(),
            "an agent still runs after purge: {agents:?}"
        );
    }
}

/// The elapsed seconds at the end of a STATUS= text (`..., 41 s` or `..., 12 s of 7200 s`).
fn elapsed_in(status: &str) -> Option<u64> {
    let i = status.rfind(", ")?;
    status[i + 2..].split(' ').next()?.parse().ok()
}

#[test]
fn elapsed_is_read_from_the_status_text() {
    assert_eq!(
        elapsed_in("d-1 BeforeInstall: a.sh (script 1), 3 s"),
        Some(3)
    );
    assert_eq!(
        elapsed_in("stopping, waiting for d-X ApplicationStart: start.sh, 12 s of 7200 s"),
        Some(12)
    );
    assert_eq!(elapsed_in("idle, polling"), None);
}

/// scripts/fresh-machine-proof reuses this cache: it computes the same key in shell.
#[test]
fn proof_script_finds_the_tests_root() {
    let out =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fresh-machine-proof"))
            .arg("--print-root")
            .output()
            .expect("run scripts/fresh-machine-proof --print-root");
    assert!(out.status.success(), "{}", nspawn_support::text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        nspawn_support::root_cache_dir()
            .join("rootfs")
            .to_string_lossy()
    );
}
