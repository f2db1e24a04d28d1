//! `validate_path` on real bundles: a copy of the seed app as a directory and as tar, tgz
//! and zip archives built here (with and without a wrapping top-level directory), plus
//! bundles that must be refused.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use codedeploy_agent::cmd::validate::render;
use codedeploy_agent::validate::validate_path;

/// The founding document's app (tests/fixtures/seed-app; bin_deploy_local_seed checks it is
/// unchanged from the original when that is at hand).
fn seed() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-app");
    assert!(
        dir.join("appspec.yml").is_file(),
        "{} is missing",
        dir.display()
    );
    dir
}

/// Copies a tree with fresh writable directories (the shared fixture is read-only).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn seed_copy(root: &Path) -> PathBuf {
    let dir = root.join("bundle");
    copy_dir(&seed(), &dir);
    dir
}

fn tar_bytes(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(prefix, dir).unwrap();
    b.into_inner().unwrap()
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn tgz_bytes(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes(dir, prefix)).unwrap();
    gz.finish().unwrap()
}

fn zip_bytes(dir: &Path, prefix: &str) -> Vec<u8> {
    fn add(z: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>, dir: &Path, name: &str) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = if name.is_empty() {
                e.file_name().to_string_lossy().into_owned()
            } else {
                format!("{name}/{}", e.file_name().to_string_lossy())
            };
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(mode);
            if e.file_type().unwrap().is_dir() {
                z.add_directory(format!("{child}/"), opts).unwrap();
                add(z, &e.path(), &child);
            } else {
                z.start_file(child, opts).unwrap();
                z.write_all(&fs::read(e.path()).unwrap()).unwrap();
            }
        }
    }
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    if !prefix.is_empty() {
        z.add_directory(
            format!("{prefix}/"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    }
    add(&mut z, dir, prefix);
    z.finish().unwrap().into_inner()
}

#[test]
fn seed_app_directory_is_valid_and_summarised() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    let report = validate_path(&dir, None);
    assert!(report.ok, "{}", render::text(&report));
    assert!(report.problems.is_empty());
    assert_eq!(report.appspec.as_deref(), Some("appspec.yml"));
    let text = render::text(&report);
    for part in [
        "valid",
        "/ -> /opt/myapp",
        "BeforeInstall:",
        "scripts/stop_server.sh (timeout 30s)",
        "scripts/install_dependencies.sh (timeout 120s)",
        "ValidateService:",
        "file_exists_behavior not set",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn seed_app_archives_are_valid_with_and_without_a_wrapper_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    type Build = fn(&Path, &str) -> Vec<u8>;
    let builders: [(&str, Build); 3] = [("tar", tar_bytes), ("tgz", tgz_bytes), ("zip", zip_bytes)];
    for (ext, build) in builders {
        for prefix in ["", "owner-repo-abc123"] {
            // A misleading extension shows the type comes from the content.
            let path = write(
                &tmp.path().join(format!("b-{prefix}.{ext}.bin")),
                &build(&dir, prefix),
            );
            let report = validate_path(&path, None);
            assert!(report.ok, "{ext} {prefix:?}: {}", render::text(&report));
            let spec = report.spec.as_ref().unwrap();
            assert_eq!(spec.hooks.events().count(), 4);
            assert!(render::text(&report).contains("scripts/health_check.sh (timeout 60s)"));
        }
    }
}

#[test]
fn missing_and_non_file_scripts_are_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    fs::remove_file(dir.join("scripts/start_server.sh")).unwrap();
    fs::create_dir(dir.join("scripts/start_server.sh")).unwrap();
    fs::remove_file(dir.join("scripts/health_check.sh")).unwrap();
    let report = validate_path(&dir, None);
    assert!(!report.ok);
    let text = render::text(&report);
    assert!(text.contains("2 problems"), "{text}");
    assert!(text.contains("appspec.yml:15:7: hooks.ApplicationStart[0].location: \"scripts/start_server.sh\" is a directory"), "{text}");
    assert!(text.contains("hooks.ValidateService[0].location: \"scripts/health_check.sh\" does not exist in the bundle"), "{text}");
    // The same problems are found inside an archive.
    let tgz = write(&tmp.path().join("b.tgz"), &tgz_bytes(&dir, "top"));
    let report = validate_path(&tgz, None);
    assert_eq!(report.problems.len(), 2, "{}", render::text(&report));
    assert!(report.problems[0]
        .to_string()
        .contains("start_server.sh\" is a directory"));
    assert!(report.problems[1]
        .to_string()
        .contains("health_check.sh\" does not exist"));
}

#[test]
fn non_executable_script_is_a_warning_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    fs::set_permissions(
        dir.join("scripts/stop_server.sh"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for path in [
        dir.clone(),
        write(&tmp.path().join("b.zip"), &zip_bytes(&dir, "")),
    ] {
        let report = validate_path(&path, None);
        assert!(report.ok, "{}", render::text(&report));
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0]
            .to_string()
            .contains("stop_server.sh\" is not executable"));
    }
}

#[test]
fn appspec_problems_are_all_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    fs::write(
        dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: nowhere\n    destination: /opt/x\nhooks:\n  AfterInstall:\n    - location: scripts/start_server.sh\n      timeout: soon\n  Install: []\n",
    )
    .unwrap();
    let report = validate_path(&dir, None);
    assert!(!report.ok);
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report.problems[0]
        .to_string()
        .starts_with("appspec.yml:9:16: hooks.AfterInstall[0].timeout"));
    assert!(report.problems[1]
        .to_string()
        .starts_with("appspec.yml:10:3: hooks.Install"));
    // With the YAML fixed, the missing source is found against the bundle.
    fs::write(
        dir.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: nowhere\n    destination: /opt/x\n",
    )
    .unwrap();
    let report = validate_path(&dir, None);
    let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["appspec.yml:4:5: files[0].source: \"nowhere\" does not exist in the bundle"]
    );
}

#[test]
fn appspec_name_fallback_and_custom_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    fs::rename(dir.join("appspec.yml"), dir.join("appspec.yaml")).unwrap();
    let report = validate_path(&dir, None);
    assert!(report.ok, "{}", render::text(&report));
    assert_eq!(report.appspec.as_deref(), Some("appspec.yaml"));
    let zip = write(&tmp.path().join("b.zip"), &zip_bytes(&dir, "wrapped"));
    assert!(validate_path(&zip, None).ok);

    fs::rename(dir.join("appspec.yaml"), dir.join("deploy.yml")).unwrap();
    let report = validate_path(&dir, None);
    assert!(!report.ok);
    assert!(
        report.problems[0].to_string().contains("appspec.yml")
            && report.problems[0].to_string().contains("appspec.yaml"),
        "{:?}",
        report.problems
    );
    let report = validate_path(&dir, Some("deploy.yml"));
    assert!(report.ok, "{}", render::text(&report));
    let tar = write(&tmp.path().join("b.tar"), &tar_bytes(&dir, ""));
    assert!(validate_path(&tar, Some("deploy.yml")).ok);
    let report = validate_path(&tar, None);
    assert!(
        report.problems[0]
            .to_string()
            .contains("no AppSpec file found in the archive"),
        "{:?}",
        report.problems
    );
}

#[test]
fn not_a_bundle_and_damaged_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let text = write(&tmp.path().join("notes.txt"), b"version: 0.0\nos: linux\n");
    let report = validate_path(&text, None);
    assert!(!report.ok);
    assert!(
        report.problems[0].to_string().contains("is not a bundle"),
        "{:?}",
        report.problems
    );

    let missing = validate_path(&tmp.path().join("nope.tgz"), None);
    assert!(
        missing.problems[0].to_string().contains("cannot read"),
        "{:?}",
        missing.problems
    );

    let dir = seed_copy(tmp.path());
    let mut tgz = tgz_bytes(&dir, "");
    tgz.truncate(tgz.len() / 2);
    let cut = write(&tmp.path().join("cut.tgz"), &tgz);
    let report = validate_path(&cut, None);
    assert!(!report.ok);
    assert!(
        render::text(&report).contains("damaged tgz archive"),
        "{}",
        render::text(&report)
    );
}

#[test]
fn permissions_outside_every_destination_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = seed_copy(tmp.path());
    let mut text = fs::read_to_string(dir.join("appspec.yml")).unwrap();
    text.push_str("permissions:\n  - object: /opt/myapp/scripts\n    mode: 0755\n    type: [file]\n  - object: /opt\n    owner: app\n  - object: /srv/other\n    mode: 644\n");
    fs::write(dir.join("appspec.yml"), text).unwrap();
    let report = validate_path(&dir, None);
    assert!(report.ok, "{}", render::text(&report));
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0]
            .to_string()
            .contains("permissions[2].object: \"/srv/other\""),
        "{:?}",
        report.warnings
    );
    let shown = render::text(&report);
    assert!(
        shown.contains("  /opt/myapp/scripts mode 755 (files only)"),
        "{shown}"
    );
    assert!(shown.contains("  /opt owner app"), "{shown}");
}
