//! Table-driven tests of the pure planner against an in-memory filesystem.

use super::memfs::MemFs;
use super::*;
use crate::appspec::model::{
    AceKind, FileExistsBehavior as B, FileMapping, ObjectTypes, Permission,
};
use std::collections::HashSet;
use std::path::Path;

fn fm(source: &str, destination: &str) -> FileMapping {
    FileMapping {
        source: source.into(),
        destination: destination.into(),
        pos: Pos { line: 7, col: 3 },
    }
}

fn run(
    fs: &MemFs,
    files: &[FileMapping],
    perms: &[Permission],
    b: B,
    prev: &[&str],
) -> Result<InstallPlan, PlanError> {
    let previous: HashSet<PathBuf> = prev.iter().map(PathBuf::from).collect();
    let input = PlanInput {
        archive_dir: Path::new("/ar"),
        files,
        permissions: perms,
        behavior: b,
        previous: &previous,
        cwd: Path::new("/cwd"),
        spill: None,
    };
    plan_install(&input, fs)
}

fn mk(d: &str, replace: bool) -> Step {
    Step::Mkdir {
        dir: d.into(),
        replace,
    }
}

fn cp(s: &str, d: &str, replace: bool) -> Step {
    Step::Copy {
        source: s.into(),
        destination: d.into(),
        replace,
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Copied { replace: bool },
    Retained,
    Refused,
    DirInTheWay,
}

fn outcome(r: Result<InstallPlan, PlanError>, target: &str) -> Outcome {
    match r {
        Ok(p) => {
            if p.retained.iter().any(|x| x == Path::new(target)) {
                return Outcome::Retained;
            }
            match p
                .all_steps()
                .into_iter()
                .find(|s| s.path() == Path::new(target))
            {
                Some(Step::Copy { replace, .. }) | Some(Step::Mkdir { replace, .. }) => {
                    Outcome::Copied { replace }
                }
                other => panic!("no step for {target}: {other:?} in {p:?}"),
            }
        }
        Err(PlanError::FileExists { path, .. }) if path == target => Outcome::Refused,
        Err(PlanError::DirectoryInTheWay { path, .. }) if path == target => Outcome::DirInTheWay,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// A file source landing on each kind of existing object, under each behaviour.
#[test]
fn file_over_each_clash_kind() {
    use Outcome::*;
    let base = MemFs::new()
        .file("/ar/app.txt")
        .dir("/dst")
        .dir("/elsewhere");
    let t = "/dst/app.txt";
    let clashes: Vec<(&str, MemFs)> = vec![
        ("file", base.clone().file(t)),
        ("directory", base.clone().dir(t)),
        (
            "symlink to file",
            base.clone().file("/elsewhere/f").link(t, "/elsewhere/f"),
        ),
        ("dangling symlink", base.clone().link(t, "/nowhere")),
        ("symlink to dir", base.clone().link(t, "/elsewhere")),
        ("fifo", base.clone().special(t)),
    ];
    let expect = |kind: &str, b: B| match (kind, b) {
        (_, B::Disallow) => Refused,
        (_, B::Retain) => Retained,
        ("directory", B::Overwrite) => DirInTheWay,
        (_, B::Overwrite) => Copied { replace: true },
    };
    for (kind, fs) in &clashes {
        for b in [B::Disallow, B::Overwrite, B::Retain] {
            let got = outcome(run(fs, &[fm("app.txt", "/dst")], &[], b, &[]), t);
            assert_eq!(got, expect(kind, b), "file over {kind} with {b:?}");
        }
    }
    for b in [B::Disallow, B::Overwrite, B::Retain] {
        let got = outcome(run(&base, &[fm("app.txt", "/dst")], &[], b, &[]), t);
        assert_eq!(got, Copied { replace: false }, "no clash with {b:?}");
    }
}

/// A directory of the revision landing on each kind of existing object.
#[test]
fn directory_over_each_clash_kind() {
    use Outcome::*;
    let base = MemFs::new()
        .file("/ar/site/sub/index.html")
        .dir("/dst")
        .dir("/elsewhere");
    let t = "/dst/sub";
    let clashes: Vec<(&str, MemFs)> = vec![
        ("file", base.clone().file(t)),
        (
            "symlink to file",
            base.clone().file("/elsewhere/f").link(t, "/elsewhere/f"),
        ),
        ("dangling symlink", base.clone().link(t, "/nowhere")),
        ("fifo", base.clone().special(t)),
    ];
    for (kind, fs) in &clashes {
        for b in [B::Disallow, B::Overwrite, B::Retain] {
            let r = run(fs, &[fm("site", "/dst")], &[], b, &[]);
            let expected = match b {
                B::Disallow => Refused,
                B::Overwrite => Copied { replace: true },
                B::Retain => Retained,
            };
            let plan_ok = r.as_ref().ok().map(InstallPlan::all_steps);
            assert_eq!(outcome(r, t), expected, "directory over {kind} with {b:?}");
            if let Some(p) = plan_ok {
                let below = p
                    .iter()
                    .any(|s| s.path().starts_with(t) && s.path() != Path::new(t));
                // RETAIN keeps the object, so nothing of the revision goes below it.
                assert_eq!(below, b == B::Overwrite, "{kind} {b:?}: {p:?}");
            }
        }
    }
    // An existing directory, or a symlink to one, is reused under every behaviour.
    for fs in [base.clone().dir(t), base.clone().link(t, "/elsewhere")] {
        for b in [B::Disallow, B::Overwrite, B::Retain] {
            let p = run(&fs, &[fm("site", "/dst")], &[], b, &[]).unwrap();
            assert_eq!(
                p.all_steps(),
                vec![cp("/ar/site/sub/index.html", "/dst/sub/index.html", false)]
            );
        }
    }
}

#[test]
fn nested_directories_missing_ancestors_and_order() {
    let fs = MemFs::new()
        .file("/ar/b.txt")
        .file("/ar/a/x")
        .file("/ar/a/deep/y")
        .dir("/ar/a/empty")
        .dir("/opt");
    let p = run(
        &fs,
        &[fm("a", "/opt/app/v1"), fm("b.txt", "/opt/app/etc")],
        &[],
        B::Disallow,
        &[],
    )
    .unwrap();
    assert_eq!(
        p.all_steps(),
        vec![
            mk("/opt/app", false),
            mk("/opt/app/v1", false),
            mk("/opt/app/v1/deep", false),
            cp("/ar/a/deep/y", "/opt/app/v1/deep/y", false),
            mk("/opt/app/v1/empty", false),
            cp("/ar/a/x", "/opt/app/v1/x", false),
            mk("/opt/app/etc", false),
            cp("/ar/b.txt", "/opt/app/etc/b.txt", false),
        ]
    );
}

#[test]
fn whole_archive_source_and_relative_destination() {
    let fs = MemFs::new().file("/ar/appspec.yml").dir("/cwd");
    let p = run(&fs, &[fm("/", "out/")], &[], B::Disallow, &[]).unwrap();
    assert_eq!(
        p.all_steps(),
        vec![
            mk("/cwd/out", false),
            cp("/ar/appspec.yml", "/cwd/out/appspec.yml", false)
        ]
    );
}

#[test]
fn duplicate_targets_follow_the_official_rules() {
    let fs = MemFs::new()
        .file("/ar/x/f")
        .file("/ar/y/f")
        .file("/ar/f")
        .dir("/d");
    // Same mkdir twice (also with a trailing slash) is collapsed.
    let p = run(
        &fs,
        &[fm("x", "/d/t"), fm("y/", "/d/t/")],
        &[],
        B::Disallow,
        &[],
    );
    assert!(
        matches!(p, Err(PlanError::DuplicateCopy { ref path, .. }) if path == "/d/t/f"),
        "{p:?}"
    );
    let p = run(
        &fs,
        &[fm("x", "/d/t"), fm("f", "/d/u")],
        &[],
        B::Disallow,
        &[],
    )
    .unwrap();
    assert_eq!(
        p.all_steps()
            .iter()
            .filter(|s| matches!(s, Step::Mkdir { .. }))
            .count(),
        2
    );
    // mkdir where a copy was planned: the later mapping's destination, or a directory on its
    // way there.
    for later in ["/d/f", "/d/f/sub"] {
        let p = run(&fs, &[fm("f", "/d"), fm("x", later)], &[], B::Disallow, &[]);
        assert!(
            matches!(p, Err(PlanError::MkdirOverCopy { ref path, .. }) if path == "/d/f"),
            "{later}: {p:?}"
        );
    }
    // copy where a mkdir was planned.
    let fs2 = MemFs::new().file("/ar/f/f").file("/ar/f2/f").dir("/d");
    let p = run(
        &fs2,
        &[fm("f2", "/d/f"), fm("f/f", "/d")],
        &[],
        B::Disallow,
        &[],
    );
    assert!(
        matches!(p, Err(PlanError::CopyOverMkdir { ref path, .. }) if path == "/d/f"),
        "{p:?}"
    );
}

#[test]
fn previous_revision_paths_never_clash() {
    let fs = MemFs::new()
        .file("/ar/app/f")
        .file("/d/app/f")
        .file("/d/app/old");
    let prev = ["/d/app", "/d/app/f", "/d/app/old"];
    let p = run(&fs, &[fm("app", "/d/app")], &[], B::Disallow, &prev).unwrap();
    assert_eq!(
        p.all_steps(),
        vec![mk("/d/app", false), cp("/ar/app/f", "/d/app/f", false)]
    );
    // A directory kept alive by a file a script wrote is still there after cleanup.
    let fs = fs.file("/d/app/script.log");
    let p = run(&fs, &[fm("app", "/d/app")], &[], B::Disallow, &prev).unwrap();
    assert_eq!(
        p.all_steps(),
        vec![mk("/d/app", false), cp("/ar/app/f", "/d/app/f", false)]
    );
    // ...and a file of the new revision cannot take its place.
    let fs3 = MemFs::new()
        .file("/ar/app")
        .dir("/d/app/x")
        .file("/d/app/x/keep");
    let p = run(
        &fs3,
        &[fm("app", "/d")],
        &[],
        B::Overwrite,
        &["/d/app", "/d/app/x"],
    );
    assert!(
        matches!(p, Err(PlanError::DirectoryInTheWay { .. })),
        "{p:?}"
    );
}

#[test]
fn bad_sources_are_refused() {
    let fs = MemFs::new()
        .special("/ar/fifo")
        .link("/ar/loop/self", "../loop")
        .link("/ar/loop2/a/up", "..")
        .dir("/d");
    let e = run(&fs, &[fm("missing", "/d")], &[], B::Disallow, &[]).unwrap_err();
    assert!(matches!(e, PlanError::MissingSource { .. }));
    assert_eq!(e.location(), Some(("files", Pos { line: 7, col: 3 })));
    let e = run(&fs, &[fm("../etc/passwd", "/d")], &[], B::Disallow, &[]).unwrap_err();
    assert!(matches!(e, PlanError::SourceOutsideBundle { .. }));
    let e = run(&fs, &[fm("fifo", "/d")], &[], B::Disallow, &[]).unwrap_err();
    assert!(matches!(e, PlanError::SpecialSource { .. }));
    let e = run(&fs, &[fm("loop", "/d")], &[], B::Disallow, &[]).unwrap_err();
    assert!(matches!(e, PlanError::SourceLoop { .. }), "{e:?}");
    let e = run(&fs, &[fm("loop2", "/d")], &[], B::Disallow, &[]).unwrap_err();
    assert!(matches!(e, PlanError::SourceLoop { .. }), "{e:?}");
    let fs = MemFs::new().file("/ar/a\nb").dir("/d");
    let e = run(&fs, &[fm("a\nb", "/d")], &[], B::Disallow, &[]).unwrap_err();
    assert!(matches!(e, PlanError::NewlineInPath { .. }));
}

#[test]
fn symlink_sources_copy_as_links_and_dir_links_are_followed() {
    let fs = MemFs::new()
        .file("/ar/real/f")
        .link("/ar/ln", "real/f")
        .link("/ar/dirln", "real")
        .dir("/d");
    let p = run(&fs, &[fm("/", "/d")], &[], B::Disallow, &[]).unwrap();
    assert_eq!(
        p.all_steps(),
        vec![
            mk("/d/dirln", false),
            cp("/ar/dirln/f", "/d/dirln/f", false),
            cp("/ar/ln", "/d/ln", false),
            mk("/d/real", false),
            cp("/ar/real/f", "/d/real/f", false),
        ]
    );
}

/// A revision whose links lead outside it in every way: absolute, through `..`, by a chain,
/// through a directory link inside, and dangling. The host files they name exist in the view
/// (so following them would plan copies of `/etc`); none may be planned.
fn hostile_links() -> MemFs {
    MemFs::new()
        .file("/etc/shadow")
        .file("/etc/passwd")
        .file("/ar/inner/app.ini")
        .link("/ar/inner/secret", "/etc/shadow")
        .link("/ar/inner/up", "../..")
        .link("/ar/etc", "/etc")
        .link("/ar/conf", "inner")
        .link("/ar/chain1", "chain2")
        .link("/ar/chain2", "etc")
        .link("/ar/dotdot", "inner/../../etc")
        .link("/ar/dangling", "nowhere")
        .dir("/d")
}

#[test]
fn links_leaving_the_revision_are_copied_as_links_never_followed() {
    let p = run(&hostile_links(), &[fm("/", "/d")], &[], B::Disallow, &[]).unwrap();
    let steps: Vec<Step> = p.all_steps();
    assert_eq!(
        steps,
        vec![
            cp("/ar/chain1", "/d/chain1", false),
            cp("/ar/chain2", "/d/chain2", false),
            // A link to a directory inside is followed; the links in it that leave are not.
            mk("/d/conf", false),
            cp("/ar/conf/app.ini", "/d/conf/app.ini", false),
            cp("/ar/conf/secret", "/d/conf/secret", false),
            cp("/ar/conf/up", "/d/conf/up", false),
            cp("/ar/dangling", "/d/dangling", false),
            cp("/ar/dotdot", "/d/dotdot", false),
            cp("/ar/etc", "/d/etc", false),
            mk("/d/inner", false),
            cp("/ar/inner/app.ini", "/d/inner/app.ini", false),
            cp("/ar/inner/secret", "/d/inner/secret", false),
            cp("/ar/inner/up", "/d/inner/up", false),
        ]
    );
    // Each of them named as a source of its own: still a link.
    for src in [
        "etc",
        "chain1",
        "dotdot",
        "conf/secret",
        "conf/up",
        "dangling",
    ] {
        let p = run(&hostile_links(), &[fm(src, "/d")], &[], B::Disallow, &[]).unwrap();
        let name = Path::new(src).file_name().unwrap().to_str().unwrap();
        let want = cp(&format!("/ar/{src}"), &format!("/d/{name}"), false);
        assert_eq!(p.all_steps(), vec![want], "{src}");
    }
}

#[test]
fn sources_reaching_outside_through_a_link_are_refused_naming_it() {
    for (src, link) in [
        ("etc/shadow", "etc -> /etc"),
        ("chain1/passwd", "etc -> /etc"),
        ("dotdot/passwd", "dotdot -> inner/../../etc"),
        ("conf/up/etc/shadow", "inner/up -> ../.."),
        ("inner/up/x", "inner/up -> ../.."),
    ] {
        let e = run(&hostile_links(), &[fm(src, "/d")], &[], B::Disallow, &[]).unwrap_err();
        match &e {
            PlanError::SourceLeavesRevision {
                src: s, link: l, ..
            } => {
                assert_eq!((s.as_str(), l.as_str()), (src, link));
            }
            other => panic!("{src}: {other:?}"),
        }
        assert!(e.to_string().contains(link), "{e}");
        assert_eq!(e.location(), Some(("files", Pos { line: 7, col: 3 })));
    }
    // Through a link that stays inside, a source is fine.
    let p = run(
        &hostile_links(),
        &[fm("conf/app.ini", "/d")],
        &[],
        B::Disallow,
        &[],
    )
    .unwrap();
    assert_eq!(
        p.all_steps(),
        vec![cp("/ar/conf/app.ini", "/d/app.ini", false)]
    );
}

#[test]
fn permissions_on_a_linked_path_apply_to_the_link_only() {
    // `**` under the destination matches the copied link, which the install then treats as
    // a link (lchown only); nothing below it exists in the plan.
    let p = run(
        &hostile_links(),
        &[fm("etc", "/d")],
        &[perm("/d")],
        B::Disallow,
        &[],
    )
    .unwrap();
    let targets: Vec<PathBuf> = p.permission_steps().map(|s| s.unwrap().path).collect();
    assert_eq!(targets, [PathBuf::from("/d/etc")]);
    let copies: Vec<PathBuf> = p
        .all_steps()
        .into_iter()
        .filter_map(|s| match s {
            Step::Copy { destination, .. } => Some(destination),
            _ => None,
        })
        .collect();
    assert_eq!(copies, [PathBuf::from("/d/etc")]);
}

fn perm(object: &str) -> Permission {
    Permission {
        object: object.into(),
        pattern: "**".into(),
        except: vec![],
        owner: None,
        group: None,
        mode: Some(Mode(0o640)),
        acls: vec![],
        context: None,
        types: ObjectTypes::default(),
        pos: Pos { line: 20, col: 5 },
    }
}

fn perm_paths(p: &InstallPlan) -> Vec<String> {
    p.all_steps()
        .into_iter()
        .filter_map(|s| match s {
            Step::SetPermissions(x) => Some(x.path.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

fn perm_fs() -> (MemFs, Vec<FileMapping>) {
    let fs = MemFs::new()
        .file("/ar/app/a.txt")
        .file("/ar/app/b.tmp")
        .file("/ar/app/sub/c.txt")
        .file("/ar/app/sub/d.tmp")
        .file("/d/pre/existing");
    (fs, vec![fm("app", "/d/app")])
}

#[test]
fn permissions_pattern_except_and_type() {
    let (fs, files) = perm_fs();
    let all = |p: Permission| perm_paths(&run(&fs, &files, &[p], B::Disallow, &[]).unwrap());
    // `**`: every descendant, files first, never the object itself.
    assert_eq!(
        all(perm("/d/app")),
        [
            "/d/app/a.txt",
            "/d/app/b.tmp",
            "/d/app/sub/c.txt",
            "/d/app/sub/d.tmp",
            "/d/app/sub"
        ]
    );
    // Any other pattern: direct children only.
    let mut p = perm("/d/app");
    p.pattern = "*.txt".into();
    assert_eq!(all(p), ["/d/app/a.txt"]);
    // except only excludes direct children (docs/behaviour/official-quirks.md#quirk-8).
    let mut p = perm("/d/app");
    p.except = vec!["*.tmp".into()];
    assert_eq!(
        all(p),
        [
            "/d/app/a.txt",
            "/d/app/sub/c.txt",
            "/d/app/sub/d.tmp",
            "/d/app/sub"
        ]
    );
    let mut p = perm("/d/app");
    p.types = ObjectTypes {
        file: false,
        directory: true,
    };
    assert_eq!(all(p), ["/d/app/sub"]);
    // A pre-existing directory as object: only what this install creates below it.
    assert_eq!(
        all(perm("/d")),
        [
            "/d/app/a.txt",
            "/d/app/b.tmp",
            "/d/app/sub/c.txt",
            "/d/app/sub/d.tmp",
            "/d/app",
            "/d/app/sub"
        ]
    );
    // A file object.
    assert_eq!(all(perm("/d/app/a.txt")), ["/d/app/a.txt"]);
    let mut p = perm("/d/app/a.txt");
    p.types = ObjectTypes {
        file: false,
        directory: true,
    };
    assert!(all(p).is_empty());
    // Unknown object: ignored.
    assert!(all(perm("/nope")).is_empty());
}

#[test]
fn permission_errors() {
    let (fs, files) = perm_fs();
    let one = |p: Permission| run(&fs, &files, &[p], B::Disallow, &[]).unwrap_err();
    let mut p = perm("/d/app/a.txt");
    p.pattern = "*".into();
    assert!(matches!(one(p), PlanError::InvalidPattern { .. }));
    let mut p = perm("/d/app/a.txt");
    p.except = vec!["x".into()];
    let e = one(p);
    assert!(e.to_string().contains("([\"x\"])"), "{e}");
    let mut p = perm("/d/app");
    p.acls = vec![Ace {
        default: true,
        kind: AceKind::User,
        name: "bob".into(),
        perms: 7,
    }];
    assert!(matches!(one(p), PlanError::DefaultAclOnFile { .. }));
    let e = run(
        &fs,
        &files,
        &[perm("/d/app"), perm("/d/app/sub")],
        B::Disallow,
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(e, PlanError::DuplicatePermission { ref path, .. } if path == "/d/app/sub/c.txt"),
        "{e:?}"
    );
    assert_eq!(
        e.location(),
        Some(("permissions", Pos { line: 20, col: 5 }))
    );
    // Default ACEs are fine on directories only.
    let mut p = perm("/d/app");
    p.types = ObjectTypes {
        file: false,
        directory: true,
    };
    p.acls = vec![Ace {
        default: true,
        kind: AceKind::User,
        name: "bob".into(),
        perms: 7,
    }];
    assert!(run(&fs, &files, &[p], B::Disallow, &[]).is_ok());
}

#[test]
fn empty_permission_adds_nothing_but_counts_for_duplicates() {
    let (fs, files) = perm_fs();
    let mut empty = perm("/d/app/a.txt");
    empty.mode = None;
    let p = run(&fs, &files, &[empty.clone()], B::Disallow, &[]).unwrap();
    assert!(perm_paths(&p).is_empty());
    assert!(run(&fs, &files, &[empty, perm("/d/app")], B::Disallow, &[]).is_err());
}

#[test]
fn retained_files_get_no_permissions() {
    let (fs, files) = perm_fs();
    let fs = fs.file("/d/app/a.txt");
    let p = run(&fs, &files, &[perm("/d/app")], B::Retain, &[]).unwrap();
    assert_eq!(p.retained, [PathBuf::from("/d/app/a.txt")]);
    assert!(!perm_paths(&p).contains(&"/d/app/a.txt".to_string()));
}

#[test]
fn only_destinations_that_share_paths_are_watched() {
    use super::files::{later_overlaps, watched};
    let d: Vec<PathBuf> = [
        "/opt/app",
        "/etc/app",
        "/opt/app/conf",
        "/opt",
        "/opt/application",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    // /opt/application is no descendant of /opt/app: components, not string prefixes.
    assert_eq!(
        later_overlaps(&d, 0),
        [PathBuf::from("/opt/app/conf"), "/opt".into()]
    );
    assert!(later_overlaps(&d, 1).is_empty());
    assert_eq!(later_overlaps(&d, 3), [PathBuf::from("/opt/application")]);
    assert!(later_overlaps(&d, 4).is_empty());
    assert!(later_overlaps(&d, 9).is_empty());
    let w = later_overlaps(&d, 0);
    assert!(
        watched(Path::new("/opt/app/conf/x.ini"), &w),
        "below a later destination"
    );
    assert!(
        watched(Path::new("/opt/app/conf"), &w),
        "a later destination itself"
    );
    assert!(
        !watched(Path::new("/opt/app/bin/run"), &w[..1]),
        "elsewhere"
    );
    assert!(
        watched(Path::new("/opt/app/bin/run"), &w),
        "below /opt, the last mapping"
    );
}

#[test]
fn a_spilled_plan_is_the_same_plan() {
    let mut fs = MemFs::new().dir("/d");
    for i in 0..6_000 {
        fs = fs.file(&format!(
            "/ar/app/d{}/some-longer-file-name-{i}.txt",
            i / 100
        ));
    }
    fs = fs.file("/ar/conf/app.ini");
    let files = [fm("app", "/d/app"), fm("conf", "/d/etc")];
    let mut ini = perm("/d/app/d7/some-longer-file-name-700.txt");
    ini.pattern = "**".into();
    let perms = [ini, perm("/d/etc")];
    let previous: HashSet<PathBuf> = HashSet::new();
    let spills = super::testing::MemSpills::default();
    let mut input = PlanInput {
        archive_dir: Path::new("/ar"),
        files: &files,
        permissions: &perms,
        behavior: B::Disallow,
        previous: &previous,
        cwd: Path::new("/cwd"),
        spill: None,
    };
    let in_memory = plan_install(&input, &fs).unwrap();
    input.spill = Some(&spills);
    let spilled = plan_install(&input, &fs).unwrap();
    assert_eq!(
        spills.opened(),
        1,
        "one spill, opened once the plan outgrew memory"
    );
    assert_eq!(spilled.all_steps(), in_memory.all_steps());
    assert_eq!(spilled.copies(), 6_001);
    // The permission on one file of an unwatched mapping was found on the spilled tape.
    assert_eq!(
        perm_paths(&spilled),
        ["/d/app/d7/some-longer-file-name-700.txt", "/d/etc/app.ini"]
    );

    // A pattern over every file: the covered paths outgrow memory too and get their own
    // spill; a later entry that covers one of them again is still refused.
    let every = perm("/d/app");
    let spills = super::testing::MemSpills::default();
    input.permissions = std::slice::from_ref(&every);
    input.spill = Some(&spills);
    let p = plan_install(&input, &fs).unwrap();
    assert_eq!(spills.opened(), 2, "one spill for each tape");
    // Every file and the 60 directories below the object (not the object itself).
    assert_eq!(p.permission_count(), 6_000 + 60);
    assert_eq!(p.permission_steps().count(), 6_000 + 60);
    assert_eq!(
        p.permission_settings().count(),
        1,
        "the entry's settings, held once"
    );
    let mut again = perm("/d/app/d59/some-longer-file-name-5999.txt");
    again.pattern = "**".into();
    let both = [every.clone(), again];
    input.permissions = &both;
    let r = plan_install(&input, &fs);
    assert!(
        matches!(r, Err(PlanError::DuplicatePermission { ref path, .. })
            if path == "/d/app/d59/some-longer-file-name-5999.txt"),
        "{r:?}"
    );
    // Objects that share no path: nothing is refused.
    let apart = [every.clone(), perm("/d/etc")];
    input.permissions = &apart;
    assert_eq!(
        plan_install(&input, &fs).unwrap().permission_count(),
        6_000 + 60 + 1
    );
}

#[test]
fn paths_below_a_directory_that_was_absent_are_not_looked_at() {
    let fs = MemFs::new()
        .file("/ar/site/a/x")
        .file("/ar/site/a/y")
        .file("/ar/site/z")
        .link("/ar/site/l", "z");
    let plan = run(&fs, &[fm("site", "/new")], &[], B::Disallow, &[]).unwrap();
    assert_eq!(
        plan.all_steps(),
        [
            mk("/new", false),
            mk("/new/a", false),
            cp("/ar/site/a/x", "/new/a/x", false),
            cp("/ar/site/a/y", "/new/a/y", false),
            cp("/ar/site/l", "/new/l", false),
            cp("/ar/site/z", "/new/z", false),
        ]
    );
    // Only the top of the new tree is looked at; the listing told the kinds of the
    // revision's files and directories, so only its link (and where it leads) is asked
    // about.
    assert_eq!(fs.asked("dest_kind"), [Path::new("/new")]);
    let sources = fs.asked("source_node");
    assert_eq!(sources[0], Path::new("/ar/site"));
    assert!(
        sources[1..]
            .iter()
            .all(|p| p.ends_with("l") || p.ends_with("z")),
        "{sources:?}"
    );
}

#[test]
fn paths_below_a_directory_that_stands_are_looked_at_each() {
    let fs = MemFs::new()
        .file("/ar/site/a/x")
        .file("/ar/site/z")
        .dir("/old/a")
        .file("/old/z");
    let r = run(&fs, &[fm("site", "/old")], &[], B::Disallow, &[]);
    assert!(matches!(r, Err(PlanError::FileExists { ref path, .. }) if path == "/old/z"));
    // Each path once, except a standing directory, asked again when the walk comes back to
    // it from a subdirectory (not once per file).
    let asked = fs.asked("dest_kind");
    assert_eq!(
        asked,
        ["/old", "/old/a", "/old/a/x", "/old", "/old/z"].map(Path::new)
    );
    // A directory the previous revision installed, gone by the time of planning: what was
    // below it is not asked about either.
    let fs = MemFs::new().file("/ar/site/a/x");
    let plan = run(
        &fs,
        &[fm("site", "/gone")],
        &[],
        B::Disallow,
        &["/gone", "/gone/a"],
    )
    .unwrap();
    assert_eq!(plan.copies(), 1);
    assert_eq!(fs.asked("dest_kind"), [Path::new("/gone")]);
}
