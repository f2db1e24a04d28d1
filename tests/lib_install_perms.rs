//! Permissions on real files: mode/owner/group with object, pattern, except and type;
//! symlinks never followed; ACLs through setfacl; clear errors when tools are missing.

#[path = "support/skip.rs"]
mod skip;
use codedeploy_agent::appspec::model::{
    Ace, AceKind, AppSpec, FileMapping, Hooks, Mode, ObjectTypes, Os, Permission, Pos, SeContext,
};
use codedeploy_agent::install::{install, InstallError, InstallOptions, InstallReport};
use codedeploy_agent::state::{archive_dir, Layout};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Env {
    tmp: tempfile::TempDir,
    layout: Layout,
    dest: PathBuf,
    dd: PathBuf,
}

/// A revision with app/{a.txt,b.tmp,sub/c.txt,sub/d.tmp} installed to dest/www.
fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path().join("root"));
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let dd = layout.deployment_dir("g", "d-1");
    let ar = archive_dir(&dd);
    fs::create_dir_all(ar.join("app/sub")).unwrap();
    for f in ["app/a.txt", "app/b.tmp", "app/sub/c.txt", "app/sub/d.tmp"] {
        fs::write(ar.join(f), f).unwrap();
        fs::set_permissions(ar.join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }
    Env {
        tmp,
        layout,
        dest,
        dd,
    }
}

fn perm(object: &Path) -> Permission {
    Permission {
        object: object.to_string_lossy().into_owned(),
        pattern: "**".into(),
        except: vec![],
        owner: None,
        group: None,
        mode: None,
        acls: vec![],
        context: None,
        types: ObjectTypes::default(),
        pos: Pos { line: 12, col: 3 },
    }
}

impl Env {
    fn www(&self, p: &str) -> PathBuf {
        self.dest.join("www").join(p)
    }
    fn run(
        &self,
        perms: Vec<Permission>,
        opts: &InstallOptions,
    ) -> Result<InstallReport, InstallError> {
        let spec = AppSpec {
            os: Os::Linux,
            files: vec![FileMapping {
                source: "app".into(),
                destination: self.dest.join("www").to_string_lossy().into_owned(),
                pos: Pos { line: 4, col: 3 },
            }],
            permissions: perms,
            hooks: Hooks::default(),
            file_exists_behavior: None,
        };
        install(&self.layout, "g", &self.dd, &spec, None, opts)
    }
    fn mode(&self, p: &str) -> u32 {
        fs::symlink_metadata(self.www(p)).unwrap().mode() & 0o7777
    }
}

#[test]
fn mode_owner_group_with_pattern_except_and_type() {
    let e = env();
    let www = e.dest.join("www");
    let mut txt = perm(&www);
    txt.pattern = "*.txt".into();
    txt.mode = Some(Mode(0o600));
    txt.owner = Some("nobody".into());
    let mut dirs = perm(&www);
    dirs.types = ObjectTypes {
        file: false,
        directory: true,
    };
    dirs.mode = Some(Mode(0o2750));
    dirs.group = Some("nogroup".into());
    let mut sub = perm(&www.join("sub"));
    sub.except = vec!["*.tmp".into()];
    sub.mode = Some(Mode(0o640));
    let report = e
        .run(vec![txt, dirs, sub], &InstallOptions::default())
        .unwrap();
    assert_eq!(report.permissions_set, 3);
    assert_eq!(e.mode("a.txt"), 0o600);
    assert_eq!(fs::metadata(e.www("a.txt")).unwrap().uid(), 65534);
    assert_eq!(e.mode("b.tmp"), 0o644, "not matched by *.txt");
    assert_eq!(e.mode("sub"), 0o2750);
    assert_eq!(fs::metadata(e.www("sub")).unwrap().gid(), 65534);
    assert_eq!(e.mode("sub/c.txt"), 0o640);
    assert_eq!(e.mode("sub/d.tmp"), 0o644, "excluded");
    assert_ne!(
        fs::metadata(&www).unwrap().mode() & 0o7777,
        0o2750,
        "object itself untouched"
    );
}

#[test]
fn setuid_survives_an_owner_change() {
    let e = env();
    let mut p = perm(&e.www("a.txt"));
    p.mode = Some(Mode(0o4755));
    p.owner = Some("nobody".into());
    e.run(vec![p], &InstallOptions::default()).unwrap();
    assert_eq!(e.mode("a.txt"), 0o4755);
}

#[test]
fn symlinks_in_the_destination_are_never_followed() {
    let e = env();
    let outside = e.tmp.path().join("outside.conf");
    fs::write(&outside, "x").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
    symlink(&outside, archive_dir(&e.dd).join("app/link")).unwrap();
    let mut p = perm(&e.dest.join("www"));
    p.mode = Some(Mode(0o600));
    p.owner = Some("nobody".into());
    let report = e.run(vec![p], &InstallOptions::default()).unwrap();
    let m = fs::metadata(&outside).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o644);
    assert_eq!(m.uid(), 0);
    // The link itself got the owner.
    assert_eq!(fs::symlink_metadata(e.www("link")).unwrap().uid(), 65534);
    assert!(
        report.warnings.iter().any(|w| w.contains("is a symlink")),
        "{report:?}"
    );
    assert_eq!(e.mode("a.txt"), 0o600);
}

fn acl_perm(e: &Env) -> Permission {
    let mut p = perm(&e.www("a.txt"));
    p.mode = Some(Mode(0o640));
    p.acls = vec![Ace {
        default: false,
        kind: AceKind::User,
        name: "nobody".into(),
        perms: 4,
    }];
    p
}

#[test]
fn missing_setfacl_is_a_clear_error_before_anything_changes() {
    let e = env();
    let empty = e.tmp.path().join("no-tools");
    fs::create_dir(&empty).unwrap();
    let opts = InstallOptions {
        tool_path: Some(empty.into_os_string()),
        ..InstallOptions::default()
    };
    let err = e.run(vec![acl_perm(&e)], &opts).unwrap_err();
    assert!(
        matches!(
            err,
            InstallError::MissingTool {
                tool: "setfacl",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("a.txt") && msg.contains("line 12") && msg.contains("setfacl"),
        "{msg}"
    );
    assert!(!e.dest.join("www").exists(), "nothing installed");

    let mut ctx = perm(&e.www("a.txt"));
    ctx.context = Some(SeContext {
        user: None,
        type_: "httpd_sys_content_t".into(),
        range: None,
    });
    let err = e.run(vec![ctx], &opts).unwrap_err();
    assert!(
        matches!(
            err,
            InstallError::MissingTool {
                tool: "semanage",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_owner_is_refused_before_anything_changes() {
    let e = env();
    let mut p = perm(&e.www("a.txt"));
    p.owner = Some("no-such-user-xyz".into());
    let err = e.run(vec![p], &InstallOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("can't find user for no-such-user-xyz"),
        "{err}"
    );
    assert!(!e.dest.join("www").exists());
}

#[test]
fn acl_is_set_with_setfacl_when_installed() {
    if skip::require_tool("setfacl", "apt-get install acl (scripts/test does)").is_none() {
        return;
    }
    let e = env();
    e.run(vec![acl_perm(&e)], &InstallOptions::default())
        .unwrap();
    let out = Command::new("getfacl")
        .arg("-c")
        .arg(e.www("a.txt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user:nobody:r--"), "{text}");
    assert!(text.contains("group::r--"), "{text}");
    assert!(text.contains("mask::r--"), "{text}");
    let json = fs::read_to_string(e.layout.install_json("g")).unwrap();
    assert!(
        json.contains(r#"{"type":"setfacl","acl":["user:nobody:r--"],"file":"#),
        "{json}"
    );
}

#[test]
fn failing_setfacl_reports_the_official_message() {
    let e = env();
    let tools = e.tmp.path().join("tools");
    fs::create_dir(&tools).unwrap();
    let fake = tools.join("setfacl");
    fs::write(&fake, "#!/bin/sh\necho nope >&2\nexit 3\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let opts = InstallOptions {
        tool_path: Some(tools.into_os_string()),
        ..InstallOptions::default()
    };
    let err = e.run(vec![acl_perm(&e)], &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("The deployment failed because of a problem with the acls permission settings in the application specification file for this object: "),
        "{msg}"
    );
    assert!(msg.contains("Failed command: setfacl --set user:nobody:r--,user::rw-,group::r--,other::---,mask::r-- "), "{msg}");
    assert!(msg.contains(" exit 3; "), "{msg}");
    // The failure came after the disk changed: what it wrote is gone again, and it says so.
    assert!(msg.contains("what it wrote was removed"), "{msg}");
    match err {
        InstallError::RolledBack { error, .. } => match *error {
            InstallError::Command { stderr, .. } => assert_eq!(stderr, "nope"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}
