//! Retention of old deployment directories on disk, and the pointer files.

use codedeploy_agent::revisions::{prune_old_revisions, record_most_recent};
use codedeploy_agent::state::{read_pointer, write_pointer, Layout};
use std::fs;

use std::time::{Duration, SystemTime};

/// A group with deployments d-0 (oldest) .. d-{n-1}, each holding a file.
fn group(n: usize) -> (tempfile::TempDir, Layout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path().join("root"));
    for i in 0..n {
        let d = layout.deployment_dir("g", &format!("d-{i}"));
        fs::create_dir_all(d.join("deployment-archive")).unwrap();
        fs::write(d.join("bundle.tar"), "x").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i as u64 * 60);
        fs::File::open(&d)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(t))
            .unwrap();
    }
    (tmp, layout)
}

fn left(layout: &Layout) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(layout.group_dir("g"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn five_keeps_the_newest_four_and_the_current() {
    let (_t, layout) = group(7);
    let current = layout.deployment_dir("g", "d-new");
    let removed = prune_old_revisions(&layout, "g", &current, 5).unwrap();
    assert_eq!(removed.len(), 3);
    assert_eq!(left(&layout), ["d-3", "d-4", "d-5", "d-6"]);
    // Nothing more to do the second time.
    assert!(prune_old_revisions(&layout, "g", &current, 5)
        .unwrap()
        .is_empty());
}

#[test]
fn one_keeps_current_and_protected() {
    let (_t, layout) = group(5);
    write_pointer(
        &layout.last_successful_install("g"),
        &layout.deployment_dir("g", "d-0"),
    )
    .unwrap();
    record_most_recent(&layout, "g", &layout.deployment_dir("g", "d-2")).unwrap();
    let current = layout.deployment_dir("g", "d-4");
    prune_old_revisions(&layout, "g", &current, 1).unwrap();
    assert_eq!(left(&layout), ["d-0", "d-2", "d-4"]);
    assert_eq!(
        read_pointer(&layout.most_recent_install("g")).unwrap(),
        Some(layout.deployment_dir("g", "d-2"))
    );
}

#[test]
fn zero_keeps_only_the_protected_ones() {
    let (_t, layout) = group(4);
    write_pointer(
        &layout.last_successful_install("g"),
        &layout.deployment_dir("g", "d-1"),
    )
    .unwrap();
    let current = layout.deployment_dir("g", "d-3");
    prune_old_revisions(&layout, "g", &current, 0).unwrap();
    assert_eq!(left(&layout), ["d-1", "d-3"]);
}

#[test]
fn missing_root_group_or_deployment_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path().join("never-created"));
    let current = layout.deployment_dir("g", "d-1");
    assert!(prune_old_revisions(&layout, "g", &current, 5)
        .unwrap()
        .is_empty());
    // Pointers naming deployments an operator deleted by hand.
    let (_t, layout) = group(3);
    write_pointer(
        &layout.last_successful_install("g"),
        &layout.deployment_dir("g", "gone"),
    )
    .unwrap();
    fs::remove_dir_all(layout.deployment_dir("g", "d-1")).unwrap();
    let current = layout.deployment_dir("g", "d-2");
    let removed = prune_old_revisions(&layout, "g", &current, 1).unwrap();
    let paths: Vec<_> = removed.iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, [layout.deployment_dir("g", "d-0")]);
    assert!(
        removed[0].bytes > 0,
        "what the pruned revision took is measured"
    );
    assert_eq!(left(&layout), ["d-2"]);
}

#[test]
fn stray_files_and_symlinks_are_left_alone() {
    let (t, layout) = group(2);
    fs::write(layout.group_dir("g").join("notes.txt"), "x").unwrap();
    let outside = t.path().join("elsewhere");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), "x").unwrap();
    std::os::unix::fs::symlink(&outside, layout.group_dir("g").join("link")).unwrap();
    prune_old_revisions(&layout, "g", &layout.deployment_dir("g", "d-new"), 1).unwrap();
    assert_eq!(left(&layout), ["link", "notes.txt"]);
    assert!(outside.join("keep").exists());
}
