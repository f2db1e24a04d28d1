//! The .deb and .rpm that packaging/build.sh leaves in target/packages/ (or
//! $CODEDEPLOY_PACKAGES_DIR): metadata, contents, scripts, and the .deb installed into a
//! temporary Debian root with `dpkg --root --force-script-chrootless` (its scripts honour
//! DPKG_ROOT), over a stand-in for the Ruby agent's package, then removed and purged.
//! Skips with a message when the packages or dpkg/rpm are missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/skip.rs"]
mod skip;
use skip::Kind;

/// How to get the packages, for the skip line.
const GET_PACKAGES: &str =
    "run packaging/build.sh --install-tools (scripts/test does; tools go to target/tools)";

fn packages_dir() -> PathBuf {
    std::env::var_os("CODEDEPLOY_PACKAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/packages"))
}

fn find(ext: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(packages_dir())
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .filter(|p| p.to_string_lossy().contains("codedeploy-agent-rs"))
        .collect();
    found.sort();
    found.pop()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Where the unit's `Documentation=` and the default configuration say operations.md is.
fn documentation_paths() -> Vec<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = fs::read_to_string(repo.join("systemd/codedeploy-agent.service")).unwrap();
    let from_unit = unit
        .lines()
        .find_map(|l| l.strip_prefix("Documentation=file://"))
        .expect("the unit has a Documentation=file:// line")
        .trim()
        .to_string();
    let config = fs::read_to_string(repo.join("packaging/files/codedeployagent.yml")).unwrap();
    assert!(
        config.contains(&from_unit),
        "the configuration points elsewhere"
    );
    assert_eq!(from_unit, "/opt/codedeploy-agent/share/doc/operations.md");
    vec![from_unit]
}

/// Without the packages: what the unit and the configuration name is in the repository and
/// in both packages' asset lists, and so are the /usr/bin links.
#[test]
fn documentation_and_links_are_in_both_asset_lists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    let (deb, rpm) = manifest
        .split_once("[package.metadata.generate-rpm]")
        .unwrap();
    for doc in documentation_paths() {
        assert!(repo.join("docs/operations.md").is_file());
        let line = format!(
            "\"docs/operations.md\", \"{}\"",
            doc.trim_start_matches('/')
        );
        assert!(deb.contains(&line), "deb assets lack {line}");
        let line = format!("source = \"docs/operations.md\", dest = \"{doc}\"");
        assert!(rpm.contains(&line), "rpm assets lack {line}");
    }
    for name in ["codedeploy-agent", "codedeploy-local"] {
        let link = repo.join("packaging/files/usr-bin").join(name);
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("/opt/codedeploy-agent/bin").join(name)
        );
        assert!(deb.contains(&format!("dest = \"usr/bin/{name}\"")));
        let post = fs::read_to_string(repo.join("packaging/rpm/post.sh")).unwrap();
        assert!(post.contains(&format!(
            "ln -sfn /opt/codedeploy-agent/bin/{name} /usr/bin/{name}"
        )));
    }
    for (assets, dest) in [
        (deb, "\"opt/codedeploy-agent/share/hardening.conf.example\""),
        (
            rpm,
            "\"/opt/codedeploy-agent/share/hardening.conf.example\"",
        ),
    ] {
        assert!(assets.contains(dest), "{dest}");
    }
}

fn deb_or_skip() -> Option<PathBuf> {
    skip::require_tool("dpkg-deb", "apt-get install dpkg")?;
    let deb = find("deb");
    if deb.is_none() {
        let missing = format!("a codedeploy-agent-rs .deb in {}", packages_dir().display());
        skip::skip(&missing, GET_PACKAGES, Kind::Tool);
    }
    deb
}

#[test]
fn deb_metadata_contents_and_scripts() {
    let Some(deb) = deb_or_skip() else { return };
    let info = stdout(&run(Command::new("dpkg-deb").arg("-I").arg(&deb)));
    assert!(info.contains("Package: codedeploy-agent-rs"), "{info}");
    for field in [
        "Conflicts: codedeploy-agent",
        "Replaces: codedeploy-agent",
        "Provides: codedeploy-agent",
    ] {
        assert!(info.contains(field), "{field}: {info}");
    }
    let list = stdout(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)));
    let entry = |path: &str| {
        list.lines()
            .find(|l| l.ends_with(path) || l.contains(&format!("{path} -> ")))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{list}"))
            .to_string()
    };
    let root_owned = |line: &str, perms: &str| {
        let mut f = line.split_whitespace();
        f.next() == Some(perms) && matches!(f.next(), Some("0/0" | "root/root"))
    };
    assert!(root_owned(
        &entry("./opt/codedeploy-agent/bin/codedeploy-agent"),
        "-rwxr-xr-x"
    ));
    let link = entry("./opt/codedeploy-agent/bin/codedeploy-local");
    assert!(
        link.starts_with('l') && link.ends_with("-> codedeploy-agent"),
        "{link}"
    );
    assert!(root_owned(
        &entry("./lib/systemd/system/codedeploy-agent.service"),
        "-rw-r--r--"
    ));
    assert!(root_owned(
        &entry("./opt/codedeploy-agent/.version"),
        "-r--r--r--"
    ));
    entry("./opt/codedeploy-agent/share/codedeployagent.yml.default");
    // On PATH, and the documentation the unit and the configuration point to.
    for (name, target) in [
        (
            "codedeploy-agent",
            "/opt/codedeploy-agent/bin/codedeploy-agent",
        ),
        (
            "codedeploy-local",
            "/opt/codedeploy-agent/bin/codedeploy-local",
        ),
    ] {
        let link = entry(&format!("./usr/bin/{name}"));
        assert!(
            link.starts_with('l') && link.ends_with(&format!("-> {target}")),
            "{link}"
        );
    }
    for doc in documentation_paths() {
        assert!(
            root_owned(&entry(&format!(".{doc}")), "-rw-r--r--"),
            "{doc}"
        );
    }
    assert!(root_owned(
        &entry("./opt/codedeploy-agent/share/hardening.conf.example"),
        "-rw-r--r--"
    ));
    assert!(
        !list.contains("./etc/codedeploy-agent/conf/codedeployagent.yml"),
        "config must not be a packaged file"
    );

    let t = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(t.path().join("control")));
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let p = t.path().join("control").join(script);
        assert_eq!(mode(&p) & 0o111, 0o111, "{script} not executable");
        run(Command::new("sh").arg("-n").arg(&p));
    }
    // .version carries what --version prints.
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(t.path().join("x")));
    let bin = t.path().join("x/opt/codedeploy-agent/bin/codedeploy-agent");
    let printed = stdout(&run(Command::new(&bin).arg("--version")));
    let version = printed.split_whitespace().nth(1).unwrap().to_string();
    let file = fs::read_to_string(t.path().join("x/opt/codedeploy-agent/.version")).unwrap();
    assert_eq!(file, format!("agent_version: {version}\n"));
    // The shipped default configuration loads.
    let cfg = t
        .path()
        .join("x/opt/codedeploy-agent/share/codedeployagent.yml.default");
    let loaded = codedeploy_agent::config::load(&cfg).unwrap();
    assert_eq!(
        loaded.config.root_dir,
        Path::new("/opt/codedeploy-agent/deployment-root")
    );
}

/// An empty dpkg database under `root`.
fn dpkg_root(root: &Path) {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/log",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
}

fn dpkg(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .arg("--force-depends")
        .arg("--force-not-root")
        .arg("--log=/dev/null");
    c
}

/// A stand-in for the official agent's package: a Ruby script as the binary and the
/// configuration as a conffile.
fn fake_ruby_package(dir: &Path) -> PathBuf {
    let pkg = dir.join("ruby-pkg");
    fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    fs::create_dir_all(pkg.join("opt/codedeploy-agent/bin")).unwrap();
    fs::create_dir_all(pkg.join("etc/codedeploy-agent/conf")).unwrap();
    fs::write(
        pkg.join("DEBIAN/control"),
        "Package: codedeploy-agent\nVersion: 1.8.1-26\nArchitecture: all\nMaintainer: x <x@example.invalid>\nDescription: stand-in for the Ruby agent\n",
    )
    .unwrap();
    fs::write(
        pkg.join("DEBIAN/conffiles"),
        "/etc/codedeploy-agent/conf/codedeployagent.yml\n",
    )
    .unwrap();
    let bin = pkg.join("opt/codedeploy-agent/bin/codedeploy-agent");
    fs::write(&bin, "#!/usr/bin/env ruby\nputs 'ruby agent'\n").unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        pkg.join("etc/codedeploy-agent/conf/codedeployagent.yml"),
        "---\n:root_dir: '/opt/codedeploy-agent/deployment-root'\n:max_revisions: 3\n# operator's setting\n",
    )
    .unwrap();
    let out = dir.join("ruby.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&pkg)
        .arg(&out));
    out
}

#[test]
fn deb_installs_over_the_ruby_agent_keeps_its_state_and_removes_cleanly() {
    let Some(deb) = deb_or_skip() else { return };
    if skip::require_tool("dpkg", "apt-get install dpkg").is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    dpkg_root(&root);
    run(dpkg(&root).arg("-i").arg(fake_ruby_package(t.path())));
    // State the Ruby agent left: a deployment, its instructions, and a unit in /etc.
    let instr = root.join("opt/codedeploy-agent/deployment-root/deployment-instructions");
    fs::create_dir_all(&instr).unwrap();
    fs::write(
        instr.join("g-1_last_successful_install"),
        "/opt/codedeploy-agent/deployment-root/g-1/d-OLD",
    )
    .unwrap();
    fs::write(instr.join("g-1-cleanup"), "/var/www/index.html\n").unwrap();
    let old_archive =
        root.join("opt/codedeploy-agent/deployment-root/g-1/d-OLD/deployment-archive");
    fs::create_dir_all(&old_archive).unwrap();
    fs::write(old_archive.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    fs::write(
        root.join("etc/systemd/system/codedeploy-agent.service"),
        "[Service]\nType=forking\nExecStart=/bin/bash -a -c '/opt/codedeploy-agent/bin/codedeploy-agent start'\n",
    )
    .unwrap();

    let out = run(dpkg(&root).arg("-i").arg(&deb));
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        said.contains("taking over from the Ruby codedeploy-agent"),
        "{said}"
    );

    let status = stdout(
        &Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["-l"])
            .output()
            .unwrap(),
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("ii  codedeploy-agent-rs")),
        "{status}"
    );
    assert!(
        !status
            .lines()
            .any(|l| l.starts_with("ii  codedeploy-agent ")),
        "{status}"
    );

    let home = root.join("opt/codedeploy-agent");
    let bin = home.join("bin/codedeploy-agent");
    assert_eq!(mode(&bin), 0o755);
    assert!(fs::read(&bin).unwrap().starts_with(b"\x7fELF"));
    assert_eq!(
        fs::read_link(home.join("bin/codedeploy-local")).unwrap(),
        Path::new("codedeploy-agent")
    );
    for name in ["codedeploy-agent", "codedeploy-local"] {
        assert_eq!(
            fs::read_link(root.join("usr/bin").join(name)).unwrap(),
            Path::new("/opt/codedeploy-agent/bin").join(name)
        );
    }
    assert!(home.join("share/doc/operations.md").is_file());
    assert_eq!(mode(&home.join(".version")), 0o444);
    assert_eq!(
        mode(&root.join("lib/systemd/system/codedeploy-agent.service")),
        0o644
    );
    // The operator's configuration, the deployment root and the history survive.
    let conf = root.join("etc/codedeploy-agent/conf/codedeployagent.yml");
    assert!(fs::read_to_string(&conf)
        .unwrap()
        .contains("# operator's setting"));
    assert!(old_archive.join("appspec.yml").is_file());
    assert_eq!(
        fs::read_to_string(instr.join("g-1-cleanup")).unwrap(),
        "/var/www/index.html\n"
    );
    assert!(instr.join("g-1_last_successful_install").is_file());
    // The old unit no longer shadows ours; ours is enabled.
    assert!(!root
        .join("etc/systemd/system/codedeploy-agent.service")
        .exists());
    assert!(root
        .join("etc/systemd/system/codedeploy-agent.service.ruby-agent.disabled")
        .is_file());
    let wants = root.join("etc/systemd/system/multi-user.target.wants/codedeploy-agent.service");
    assert!(fs::symlink_metadata(&wants).is_ok(), "not enabled");
    // `status` works without sudo: the status file and its directory are readable.
    assert_eq!(mode(&home.join("state/.pid")), 0o755);
    assert!(root.join("var/log/aws/codedeploy-agent").is_dir());

    // Upgrade (reinstall): the configuration stays as it is.
    fs::write(&conf, "---\n:max_revisions: 4\n").unwrap();
    run(dpkg(&root).arg("-i").arg(&deb));
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        "---\n:max_revisions: 4\n"
    );

    run(dpkg(&root).args(["-r", "codedeploy-agent-rs"]));
    assert!(!bin.exists());
    assert!(fs::symlink_metadata(root.join("usr/bin/codedeploy-agent")).is_err());
    assert!(fs::symlink_metadata(home.join("bin/codedeploy-local")).is_err());
    assert!(
        fs::symlink_metadata(&wants).is_err(),
        "still enabled after removal"
    );
    assert!(conf.is_file(), "removal keeps the configuration");
    assert!(
        old_archive.join("appspec.yml").is_file(),
        "removal keeps deployments"
    );

    run(dpkg(&root).args(["-P", "codedeploy-agent-rs"]));
    assert!(!conf.exists(), "purge removes the configuration");
    assert!(!root.join("var/log/aws/codedeploy-agent").exists());
}

#[test]
fn deb_fresh_install_creates_the_default_configuration() {
    let Some(deb) = deb_or_skip() else { return };
    if skip::require_tool("dpkg", "apt-get install dpkg").is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    dpkg_root(&root);
    run(dpkg(&root).arg("-i").arg(&deb));
    let conf = root.join("etc/codedeploy-agent/conf/codedeployagent.yml");
    let default = root.join("opt/codedeploy-agent/share/codedeployagent.yml.default");
    assert_eq!(fs::read(&conf).unwrap(), fs::read(&default).unwrap());
    assert_eq!(mode(&conf), 0o644);
    assert!(root.join("opt/codedeploy-agent/deployment-root").is_dir());
}

#[test]
fn rpm_metadata_contents_and_scripts() {
    if skip::require_tool("rpm", "apt-get install rpm (scripts/test does)").is_none() {
        return;
    }
    let Some(rpm) = find("rpm") else {
        let missing = format!("a codedeploy-agent-rs .rpm in {}", packages_dir().display());
        skip::skip(&missing, GET_PACKAGES, Kind::Tool);
        return;
    };
    let q = |args: &[&str]| stdout(&run(Command::new("rpm").arg("-qp").args(args).arg(&rpm)));
    assert!(q(&["--queryformat", "%{NAME}"]).starts_with("codedeploy-agent-rs"));
    assert!(q(&["--obsoletes"]).contains("codedeploy-agent"));
    let files = q(&["-l"]);
    for f in [
        "/opt/codedeploy-agent/bin/codedeploy-agent",
        "/usr/lib/systemd/system/codedeploy-agent.service",
        "/opt/codedeploy-agent/.version",
        "/opt/codedeploy-agent/share/codedeployagent.yml.default",
        "/opt/codedeploy-agent/share/hardening.conf.example",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} missing:\n{files}");
    }
    for doc in documentation_paths() {
        assert!(files.lines().any(|l| l == doc), "{doc} missing:\n{files}");
    }
    let scripts = q(&["--scripts"]);
    for part in [
        "preinstall",
        "postinstall",
        "preuninstall",
        "postuninstall",
        "posttrans",
        "ln -sfn codedeploy-agent",
        "ln -sfn /opt/codedeploy-agent/bin/codedeploy-agent /usr/bin/codedeploy-agent",
        "ln -sfn /opt/codedeploy-agent/bin/codedeploy-local /usr/bin/codedeploy-local",
        "try-restart",
    ] {
        assert!(scripts.contains(part), "{part} missing:\n{scripts}");
    }
    for script in ["pre.sh", "post.sh", "posttrans.sh", "preun.sh", "postun.sh"] {
        run(Command::new("sh").arg("-n").arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("packaging/rpm")
                .join(script),
        ));
    }
    // Unpacked without scripts (they need the target system), files and modes are right.
    let t = tempfile::tempdir().unwrap();
    let out = Command::new("rpm")
        .arg("--root")
        .arg(t.path())
        .args(["-i", "--nodeps", "--noscripts", "--notriggers"])
        .arg(&rpm)
        .output()
        .unwrap();
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        skip::skip(
            &format!("an rpm that installs into --root here ({})", why.trim()),
            "the files and scripts were checked above; this host's rpm cannot unpack",
            Kind::Machine,
        );
        return;
    }
    assert_eq!(
        mode(&t.path().join("opt/codedeploy-agent/bin/codedeploy-agent")),
        0o755
    );
    assert_eq!(mode(&t.path().join("opt/codedeploy-agent/.version")), 0o444);
}
