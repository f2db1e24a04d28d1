//! Benchmark (ignored by default; prints figures, asserts only correctness):
//! `cargo test --release --test lib_install_bench -- --ignored --nocapture`
//! Installs 10,000 1 KiB files in 100 directories plus one 200 MiB file and compares the
//! time with `cp -a` of the same tree.

use codedeploy_agent::appspec::model::{AppSpec, FileMapping, Hooks, Os, Pos};
use codedeploy_agent::install::{install, InstallOptions};
use codedeploy_agent::state::{archive_dir, Layout};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;
use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// User+system CPU time of this process (`RUSAGE_SELF`) or of its waited-for children.
fn cpu(who: UsageWho) -> Duration {
    let Ok(u) = getrusage(who) else {
        return Duration::ZERO;
    };
    let tv = |t: TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

#[test]
#[ignore]
fn install_versus_cp_a() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path().join("root"));
    let dd = layout.deployment_dir("g", "d-1");
    let app = archive_dir(&dd).join("app");
    let kib = vec![b'x'; 1024];
    for d in 0..100 {
        let dir = app.join(format!("dir{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(dir.join(format!("f{f:03}")), &kib).unwrap();
        }
    }
    let mut big = fs::File::create(app.join("big.bin")).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..200 {
        big.write_all(&chunk).unwrap();
    }
    drop(big);

    let cp = |to: &str| {
        let (start, c0) = (Instant::now(), cpu(UsageWho::RUSAGE_CHILDREN));
        let ok = Command::new("cp")
            .arg("-a")
            .arg(&app)
            .arg(tmp.path().join(to))
            .status()
            .unwrap();
        assert!(ok.success());
        (start.elapsed(), cpu(UsageWho::RUSAGE_CHILDREN) - c0)
    };
    let warm = cp("warm");
    let spec = AppSpec {
        os: Os::Linux,
        files: vec![FileMapping {
            source: "app".into(),
            destination: tmp.path().join("dest").to_string_lossy().into_owned(),
            pos: Pos::default(),
        }],
        permissions: vec![],
        hooks: Hooks::default(),
        file_exists_behavior: None,
    };
    let (start, c0) = (Instant::now(), cpu(UsageWho::RUSAGE_SELF));
    let report = install(&layout, "g", &dd, &spec, None, &InstallOptions::default()).unwrap();
    let ours = (start.elapsed(), cpu(UsageWho::RUSAGE_SELF) - c0);
    let cp_time = cp("cp-a");
    assert_eq!(report.files_copied, 10_001);
    assert_eq!(report.dirs_created, 101);
    assert_eq!(
        fs::metadata(tmp.path().join("dest/big.bin")).unwrap().len(),
        200 << 20
    );
    // A redeployment of the same revision: removes all of it, then installs it again.
    let start = Instant::now();
    install(&layout, "g", &dd, &spec, None, &InstallOptions::default()).unwrap();
    let again = start.elapsed();
    println!("redeploy (cleanup + install): {:.3}s", again.as_secs_f64());
    println!(
        "wall: install {:.3}s, cp -a {:.3}s (warm-up cp -a {:.3}s); cpu: install {:.3}s, cp -a {:.3}s",
        ours.0.as_secs_f64(),
        cp_time.0.as_secs_f64(),
        warm.0.as_secs_f64(),
        ours.1.as_secs_f64(),
        cp_time.1.as_secs_f64(),
    );
}
