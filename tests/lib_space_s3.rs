//! Free space for S3 bundles, against a real moto server and a small tmpfs holding the
//! deployment dir: an object longer than the room is refused from its Content-Length before
//! its bytes are written; a compressed bomb is stopped by the reserve while it unpacks; a
//! bundle that fits still arrives whole. Needs root to mount tmpfs; skips with a message
//! elsewhere.

#[path = "support/bundle.rs"]
mod bundle_support;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/mount.rs"]
mod mount_support;

use std::time::Duration;

use bundle_support::{gzip, noise, opts, tar_bytes, Raw};
use codedeploy_agent::bundle::UnpackOptions;
use codedeploy_agent::deployspec::BundleType;
use codedeploy_agent::space::Reserve;
use codedeploy_agent::transfer::{Fetcher, GitHubSettings, Tuning};
use moto::Moto;
use mount_support::tmpfs_or_skip;

const MIB: usize = 1024 * 1024;

fn quick() -> Tuning {
    Tuning {
        resume_base_delay: Duration::from_millis(20),
        request_attempts: 2,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(20),
        github_delays: vec![],
        ..Tuning::default()
    }
}

#[test]
fn s3_bundles_are_checked_against_the_reserve() {
    let Some(fs_) = tmpfs_or_skip("s3_bundles_are_checked_against_the_reserve", "size=16m") else {
        return;
    };
    let Some(moto) = Moto::start_or_skip() else {
        return;
    };
    let fetcher = Fetcher::with_tuning(
        Some(moto.settings()),
        GitHubSettings::default(),
        None,
        quick(),
    )
    .unwrap();
    let with_reserve = UnpackOptions {
        reserve: Some(Reserve {
            basis_points: 0,
            bytes: MIB as u64,
        }),
        ..opts()
    };
    let appspec = Raw::file("appspec.yml", b"version: 0.0\nos: linux\n");

    // 40 MiB object, 16 MiB file system: refused from its length, nothing written (with one
    // copy on disk only the tar's unpacked lower bound, half its length, is counted up front).
    let big = noise(40 * MIB, 1);
    moto.put(
        "big.tar",
        tar_bytes(&[Raw::file("appspec.yml", b"x"), Raw::file("big", &big)]),
    );
    let dir = fs_.path().join("d-1");
    let err = fetcher
        .fetch(
            &moto.revision("big.tar", BundleType::Tar, None, None),
            &dir,
            &with_reserve,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("not enough disk space"), "{err}");
    assert!(err.contains("s3://"), "{err}");
    assert!(
        !err.contains("entry \""),
        "refused only after writing: {err}"
    );
    assert!(fs_.used() < MIB as u64, "{} bytes written", fs_.used());

    // A small tgz that unpacks to 64 MiB: stopped while unpacking, by the reserve.
    let zeros = vec![0u8; 64 * MIB];
    moto.put(
        "bomb.tgz",
        gzip(&tar_bytes(&[
            Raw::file("appspec.yml", b"x"),
            Raw::file("bomb", &zeros),
        ])),
    );
    let dir = fs_.path().join("d-2");
    let err = fetcher
        .fetch(
            &moto.revision("bomb.tgz", BundleType::Tgz, None, None),
            &dir,
            &with_reserve,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("not enough disk space"), "{err}");
    assert!(err.contains("entry \"bomb\""), "{err}");
    assert!(
        !dir.join("deployment-archive").exists(),
        "the partial extraction was left"
    );

    // What fits arrives whole.
    let fits = noise(2 * MIB, 1);
    moto.put("ok.tar", tar_bytes(&[appspec, Raw::file("data", &fits)]));
    let dir = fs_.path().join("d-3");
    fetcher
        .fetch(
            &moto.revision("ok.tar", BundleType::Tar, None, None),
            &dir,
            &with_reserve,
        )
        .unwrap();
    assert_eq!(
        std::fs::read(dir.join("deployment-archive/data")).unwrap(),
        fits
    );
}
