//! The seed app deploys as written: directory, tgz and zip bundles, with its destination, pid
//! file and port moved into a temp location; its health check passes against the server its
//! start script launched.

#[path = "support/common.rs"]
mod common;
use common::*;
use std::path::Path;

fn assert_deployed(sb: &Sandbox, app: &SeedApp, out: &std::process::Output) {
    assert!(out.status.success(), "{}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("AppSpec file valid. Local deployment successful"),
        "{stdout}"
    );
    for event in [
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ] {
        assert!(stdout.contains(event), "{event} missing from {stdout}");
    }
    assert!(app.dest.join("public/index.html").is_file());
    assert!(
        app.dest.join("public/installed_at").is_file(),
        "AfterInstall ran in the destination"
    );
    assert_eq!(
        http_get_status(app.port, "/health").as_deref(),
        Some("HTTP/1.0 200 OK")
    );
    let log = std::fs::read_to_string(
        sb.group_dir("default-local-deployment-group")
            .read_dir()
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path()
            .join("logs/scripts.log"),
    )
    .unwrap();
    assert!(log.contains("LifecycleEvent - ValidateService"), "{log}");
    assert!(log.contains("[stdout]Health check passed"), "{log}");
}

#[test]
fn seed_app_as_directory_bundle() {
    let sb = Sandbox::new();
    let app = seed_app(sb.path(), "bundle");
    let out = sb.deploy(&["-l", app.bundle.to_str().unwrap(), "-t", "directory"]);
    assert_deployed(&sb, &app, &out);
}

#[test]
fn seed_app_as_tgz_bundle() {
    let sb = Sandbox::new();
    let app = seed_app(sb.path(), "bundle");
    let tgz = sb.path().join("seed.tgz");
    make_tgz(&app.bundle, &tgz);
    let out = sb.deploy(&["-l", tgz.to_str().unwrap(), "-t", "tgz"]);
    assert_deployed(&sb, &app, &out);
}

#[test]
fn seed_app_as_zip_bundle() {
    let sb = Sandbox::new();
    let app = seed_app(sb.path(), "bundle");
    let zip = sb.path().join("seed.zip");
    make_zip(&app.bundle, &zip);
    let out = sb.deploy(&["-l", zip.to_str().unwrap(), "-t", "zip"]);
    assert_deployed(&sb, &app, &out);
}

#[test]
fn fixture_matches_the_shared_seed_app() {
    // The test copy must be the founding document's app, unchanged.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/seed-app");
    if !shared.is_dir() {
        eprintln!("skipped: {} is not present", shared.display());
        return;
    }
    for f in [
        "appspec.yml",
        "scripts/start_server.sh",
        "scripts/stop_server.sh",
        "scripts/health_check.sh",
        "scripts/install_dependencies.sh",
    ] {
        let ours = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/seed-app")
                .join(f),
        )
        .unwrap();
        assert_eq!(ours, std::fs::read(shared.join(f)).unwrap(), "{f}");
    }
}
