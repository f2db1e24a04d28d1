//! The install engine on real files: consecutive deployments, every clash kind under every
//! file_exists_behavior, DISALLOW refusal, and recovery from a crash between two steps.

use codedeploy_agent::appspec::model::{
    AppSpec, FileExistsBehavior as B, FileMapping, Hooks, Os, Pos,
};
use codedeploy_agent::install::{install, InstallError, InstallOptions};
use codedeploy_agent::plan::PlanError;
use codedeploy_agent::state::{archive_dir, read_pointer, Layout};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

struct Env {
    _tmp: tempfile::TempDir,
    layout: Layout,
    dest: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path().join("root"));
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    Env {
        _tmp: tmp,
        layout,
        dest,
    }
}

impl Env {
    /// Creates deployment `id` whose archive holds `files` (path, content); a content
    /// starting with `->` makes a symlink to the rest.
    fn revision(&self, id: &str, files: &[(&str, &str)]) -> PathBuf {
        let dd = self.layout.deployment_dir("g", id);
        let ar = archive_dir(&dd);
        fs::create_dir_all(&ar).unwrap();
        for (p, content) in files {
            let path = ar.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            match content.strip_prefix("->") {
                Some(target) => symlink(target, &path).unwrap(),
                None if p.ends_with('/') => fs::create_dir_all(&path).unwrap(),
                None => fs::write(&path, content).unwrap(),
            }
        }
        dd
    }

    fn spec(&self, mappings: &[(&str, &str)], b: Option<B>) -> AppSpec {
        AppSpec {
            os: Os::Linux,
            files: mappings
                .iter()
                .map(|(s, d)| FileMapping {
                    source: s.to_string(),
                    destination: self.dest.join(d).to_string_lossy().into_owned(),
                    pos: Pos { line: 4, col: 5 },
                })
                .collect(),
            permissions: vec![],
            hooks: Hooks::default(),
            file_exists_behavior: b,
        }
    }

    fn install(&self, dd: &Path, spec: &AppSpec) -> Result<(), InstallError> {
        install(
            &self.layout,
            "g",
            dd,
            spec,
            None,
            &InstallOptions::default(),
        )
        .map(|_| ())
    }

    fn d(&self, p: &str) -> PathBuf {
        self.dest.join(p)
    }

    fn journal(&self) -> String {
        fs::read_to_string(self.layout.cleanup_file("g")).unwrap_or_default()
    }
}

#[test]
fn second_deployment_removes_keeps_and_replaces() {
    let e = env();
    let d1 = e.revision(
        "d-1",
        &[
            ("app/a.txt", "one"),
            ("app/b.txt", "only in one"),
            ("app/sub/c.txt", "c1"),
            ("app/old/x.txt", "x"),
            ("app/link", "->a.txt"),
        ],
    );
    let spec = e.spec(&[("app", "www")], None);
    e.install(&d1, &spec).unwrap();
    assert_eq!(fs::read_to_string(e.d("www/a.txt")).unwrap(), "one");
    assert_eq!(fs::read_link(e.d("www/link")).unwrap(), Path::new("a.txt"));
    assert_eq!(
        read_pointer(&e.layout.last_successful_install("g")).unwrap(),
        Some(d1.clone())
    );
    let journal1 = e.journal();
    assert!(journal1.contains(&format!("{}\n", e.d("www/old/x.txt").display())));
    let json = fs::read_to_string(e.layout.install_json("g")).unwrap();
    assert!(
        json.starts_with(r#"{"instructions":[{"type":"mkdir","directory":""#),
        "{json}"
    );

    // What the hooks of the first revision left behind.
    fs::write(e.d("www/sub/script.log"), "log").unwrap();
    fs::create_dir(e.d("www/runtime")).unwrap();
    fs::write(e.d("www/runtime/pid"), "1").unwrap();

    let d2 = e.revision(
        "d-2",
        &[
            ("app/a.txt", "two"),
            ("app/sub/c.txt", "c2"),
            ("app/new.txt", "new"),
        ],
    );
    e.install(&d2, &spec).unwrap();
    assert_eq!(fs::read_to_string(e.d("www/a.txt")).unwrap(), "two");
    assert_eq!(fs::read_to_string(e.d("www/sub/c.txt")).unwrap(), "c2");
    assert_eq!(fs::read_to_string(e.d("www/new.txt")).unwrap(), "new");
    assert!(!e.d("www/b.txt").exists());
    assert!(
        !e.d("www/old").exists(),
        "an emptied directory of the first revision goes"
    );
    assert!(fs::symlink_metadata(e.d("www/link")).is_err());
    assert_eq!(
        fs::read_to_string(e.d("www/sub/script.log")).unwrap(),
        "log"
    );
    assert_eq!(fs::read_to_string(e.d("www/runtime/pid")).unwrap(), "1");
    assert_eq!(
        read_pointer(&e.layout.last_successful_install("g")).unwrap(),
        Some(d2)
    );
    let journal2 = e.journal();
    assert!(
        !journal2.contains("b.txt") && journal2.contains("new.txt"),
        "{journal2}"
    );
    // A directory both revisions have stays journaled, so it goes once it is empty.
    let sub_line = format!("{}\n", e.d("www/sub").display());
    assert!(journal2.contains(&sub_line), "{journal2}");
}

#[test]
fn disallow_refusal_leaves_the_previous_revision_in_place() {
    let e = env();
    let d1 = e.revision("d-1", &[("app/a.txt", "one"), ("app/b.txt", "b")]);
    let spec = e.spec(&[("app", "www")], None);
    e.install(&d1, &spec).unwrap();
    let journal1 = e.journal();
    fs::write(e.d("www/clash.txt"), "operator's").unwrap();
    let d2 = e.revision("d-2", &[("app/a.txt", "two"), ("app/clash.txt", "new")]);
    let err = e.install(&d2, &spec).unwrap_err();
    match &err {
        InstallError::Plan(PlanError::FileExists { path, .. }) => {
            assert_eq!(Path::new(path), e.d("www/clash.txt"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("already exists at this location"),
        "{err}"
    );
    assert!(err.to_string().contains("line 4"), "{err}");
    assert_eq!(fs::read_to_string(e.d("www/a.txt")).unwrap(), "one");
    assert_eq!(fs::read_to_string(e.d("www/b.txt")).unwrap(), "b");
    assert_eq!(
        fs::read_to_string(e.d("www/clash.txt")).unwrap(),
        "operator's"
    );
    assert_eq!(e.journal(), journal1);
    assert_eq!(
        read_pointer(&e.layout.last_successful_install("g")).unwrap(),
        Some(d1)
    );
}

/// What a clash leaves on disk.
#[derive(Debug, PartialEq)]
enum After {
    NewFile,
    Kept,
    Refused,
}

#[test]
fn every_behaviour_against_every_clash_kind_on_disk() {
    // (name, set up the clash at dest/www/app.txt, check that the old object is intact)
    type Setup = fn(&Path, &Path);
    let kinds: [(&str, Setup); 5] = [
        ("file over file", |t, _| fs::write(t, "old").unwrap()),
        ("file over directory", |t, _| {
            fs::create_dir(t).unwrap();
            fs::write(t.join("inner"), "old").unwrap()
        }),
        ("file over symlink to file", |t, outside| {
            fs::write(outside.join("target"), "old").unwrap();
            symlink(outside.join("target"), t).unwrap()
        }),
        ("file over dangling symlink", |t, outside| {
            symlink(outside.join("missing"), t).unwrap()
        }),
        ("file over symlink to dir", |t, outside| {
            symlink(outside, t).unwrap()
        }),
    ];
    for (kind, setup) in kinds {
        for b in [B::Disallow, B::Overwrite, B::Retain] {
            let e = env();
            let outside = e.dest.parent().unwrap().join("outside");
            fs::create_dir(&outside).unwrap();
            fs::create_dir(e.d("www")).unwrap();
            let t = e.d("www/app.txt");
            setup(&t, &outside);
            let dd = e.revision("d-1", &[("app.txt", "new")]);
            let res = e.install(&dd, &e.spec(&[("app.txt", "www")], Some(b)));
            let after = match res {
                Err(InstallError::Plan(_)) => After::Refused,
                Err(other) => panic!("{kind} {b:?}: {other}"),
                Ok(())
                    if fs::symlink_metadata(&t).unwrap().is_file()
                        && fs::read_to_string(&t).unwrap() == "new" =>
                {
                    After::NewFile
                }
                Ok(()) => After::Kept,
            };
            let expected = match (b, kind) {
                (B::Disallow, _) => After::Refused,
                (B::Retain, _) => After::Kept,
                (B::Overwrite, "file over directory") => After::Refused,
                (B::Overwrite, _) => After::NewFile,
            };
            assert_eq!(after, expected, "{kind} with {b:?}");
            // Never written through a symlink: the outside target keeps its content.
            if let Ok(s) = fs::read_to_string(outside.join("target")) {
                assert_eq!(s, "old", "{kind} {b:?}");
            }
            assert!(!outside.join("app.txt").exists(), "{kind} {b:?}");
            assert!(!outside.join("missing").exists(), "{kind} {b:?}");
            if after != After::NewFile {
                assert!(
                    fs::symlink_metadata(&t).is_ok(),
                    "{kind} {b:?}: old object kept"
                );
            }
        }
    }
}

#[test]
fn directory_over_file_and_symlink() {
    for b in [B::Disallow, B::Overwrite, B::Retain] {
        for link in [false, true] {
            let e = env();
            fs::create_dir(e.d("www")).unwrap();
            let outside = e.dest.parent().unwrap().join("outside");
            fs::write(&outside, "outside").unwrap();
            if link {
                symlink(&outside, e.d("www/sub")).unwrap();
            } else {
                fs::write(e.d("www/sub"), "old").unwrap();
            }
            let dd = e.revision("d-1", &[("app/sub/f", "new")]);
            let res = e.install(&dd, &e.spec(&[("app", "www")], Some(b)));
            let sub = fs::symlink_metadata(e.d("www/sub")).unwrap();
            match b {
                B::Disallow => {
                    assert!(matches!(
                        res,
                        Err(InstallError::Plan(PlanError::FileExists { .. }))
                    ));
                    assert!(!sub.is_dir());
                }
                B::Overwrite => {
                    res.unwrap();
                    assert!(sub.is_dir());
                    assert_eq!(fs::read_to_string(e.d("www/sub/f")).unwrap(), "new");
                }
                B::Retain => {
                    res.unwrap();
                    assert!(!sub.is_dir());
                }
            }
            assert_eq!(fs::read_to_string(&outside).unwrap(), "outside");
        }
    }
}

#[test]
fn existing_symlink_to_directory_is_used_as_the_directory() {
    let e = env();
    let real = e.dest.parent().unwrap().join("srv-www");
    fs::create_dir(&real).unwrap();
    symlink(&real, e.d("www")).unwrap();
    let dd = e.revision("d-1", &[("app/index.html", "hi")]);
    e.install(&dd, &e.spec(&[("app", "www")], None)).unwrap();
    assert_eq!(fs::read_to_string(real.join("index.html")).unwrap(), "hi");
    assert!(fs::symlink_metadata(e.d("www"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn crash_between_steps_is_cleaned_up_by_the_next_deployment() {
    let e = env();
    let d1 = e.revision(
        "d-1",
        &[
            ("app/a.txt", "1"),
            ("app/b/c.txt", "1"),
            ("app/b/d.txt", "1"),
            ("app/e.txt", "1"),
        ],
    );
    let spec = e.spec(&[("app", "www")], None);
    // mkdir www, copy a.txt, mkdir www/b, copy c.txt | crash | d.txt, e.txt
    let opts = InstallOptions {
        fail_after_steps: Some(4),
        ..InstallOptions::default()
    };
    let err = install(&e.layout, "g", &d1, &spec, None, &opts).unwrap_err();
    assert!(matches!(err, InstallError::SimulatedCrash(4)), "{err}");
    assert!(e.d("www/b/c.txt").exists() && !e.d("www/b/d.txt").exists());
    let journal = e.journal();
    assert_eq!(journal.lines().count(), 4, "{journal}");
    assert_eq!(
        read_pointer(&e.layout.last_successful_install("g")).unwrap(),
        None
    );

    // The crash also tore a line being written; it names something we must not delete.
    let precious = e.d("precious.txt");
    fs::write(&precious, "keep").unwrap();
    let mut torn = journal.into_bytes();
    torn.extend_from_slice(precious.to_string_lossy().as_bytes());
    fs::write(e.layout.cleanup_file("g"), torn).unwrap();

    let d2 = e.revision("d-2", &[("app/a.txt", "2"), ("app/z.txt", "2")]);
    e.install(&d2, &spec).unwrap();
    assert_eq!(fs::read_to_string(e.d("www/a.txt")).unwrap(), "2");
    assert_eq!(fs::read_to_string(e.d("www/z.txt")).unwrap(), "2");
    assert!(
        !e.d("www/b").exists(),
        "the crashed revision's files and dirs are gone"
    );
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep");
    assert_eq!(
        read_pointer(&e.layout.last_successful_install("g")).unwrap(),
        Some(d2)
    );
}

#[test]
fn overwrite_leaves_no_temporary_and_is_journaled() {
    let e = env();
    fs::create_dir(e.d("www")).unwrap();
    fs::write(e.d("www/a.txt"), "operator").unwrap();
    let d1 = e.revision("d-1", &[("app/a.txt", "1")]);
    let spec = e.spec(&[("app", "www")], Some(B::Overwrite));
    e.install(&d1, &spec).unwrap();
    assert_eq!(fs::read_to_string(e.d("www/a.txt")).unwrap(), "1");
    let names: Vec<_> = fs::read_dir(e.d("www"))
        .unwrap()
        .map(|x| x.unwrap().file_name())
        .collect();
    assert_eq!(names, ["a.txt"]);
    // The replaced file is the revision's now: the next deployment removes it.
    let d2 = e.revision("d-2", &[("app/other.txt", "2")]);
    e.install(&d2, &spec).unwrap();
    assert!(!e.d("www/a.txt").exists());
}

#[test]
fn file_source_and_metadata_are_preserved() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let e = env();
    let dd = e.revision("d-1", &[("bin/tool", "#!/bin/sh\n")]);
    let src = archive_dir(&dd).join("bin/tool");
    // chown first: Linux clears setuid on chown.
    std::os::unix::fs::chown(&src, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o4750)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(old))
        .unwrap();
    e.install(&dd, &e.spec(&[("bin/tool", "opt/x/y")], None))
        .unwrap();
    let m = fs::metadata(e.d("opt/x/y/tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4750);
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    assert_eq!(m.modified().unwrap(), old);
}

#[test]
fn a_plan_too_large_for_memory_spills_to_disk_and_leaves_nothing_behind() {
    let e = env();
    let dd = e.layout.deployment_dir("g", "d-big");
    let ar = archive_dir(&dd);
    // 8,000 files with long names: the plan's records (about 0.4 MB) outgrow the planner's
    // 128 KiB buffer and move to the spill file in the instructions directory.
    let name = |i: usize| {
        format!(
            "d{:02}/a-rather-long-file-name-for-the-plan-{i:05}.txt",
            i / 100
        )
    };
    for i in 0..8_000 {
        let p = ar.join("app").join(name(i));
        if i % 100 == 0 {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        fs::write(&p, format!("file {i}\n")).unwrap();
    }
    let spec = e.spec(&[("app", "app")], None);
    e.install(&dd, &spec).unwrap();
    for i in (0..8_000).step_by(97).chain([7_999]) {
        assert_eq!(
            fs::read_to_string(e.d("app").join(name(i))).unwrap(),
            format!("file {i}\n")
        );
    }
    let journal = fs::read_to_string(e.layout.cleanup_file("g")).unwrap();
    assert_eq!(
        journal.lines().count(),
        8_000 + 80 + 1,
        "every file and directory"
    );
    let instructions = e.layout.instructions_dir();
    let left: Vec<String> = fs::read_dir(&instructions)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter()
            .all(|n| n.starts_with("g-") || n.starts_with("g_")),
        "only the group's journal and install.json: {left:?}"
    );
    // The spill is closed with its plan: no descriptor of this process still names a file
    // in the instructions directory.
    let open: Vec<PathBuf> = fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|d| fs::read_link(d.unwrap().path()).ok())
        .filter(|t| t.starts_with(&instructions))
        .collect();
    assert!(open.is_empty(), "{open:?}");
}
