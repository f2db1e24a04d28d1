//! The disk space the kept revisions take: every deployment directory of every group under the
//! deployment root, measured as allocated blocks (what `du` shows), for `status`.
//!
//! Invariants: files only; links are counted as themselves, never followed; an inode with
//! several hard links inside one measured tree is counted once; an entry that vanishes while
//! it is measured (a deployment pruning it) is skipped, not an error, and so is a directory
//! the caller may not list (`status` run without root): the figure is then a floor.

use crate::state::{self, Layout};
use serde::Serialize;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One kept revision (deployment directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionUsage {
    pub deployment: String,
    /// Everything in the deployment directory.
    pub bytes: u64,
    /// Of `bytes`, what `bundle.tar` takes (0: not kept, or a link to a local file).
    pub bundle_archive_bytes: u64,
}

/// The kept revisions of one deployment group, oldest name first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupUsage {
    pub group: String,
    pub bytes: u64,
    pub revisions: Vec<RevisionUsage>,
}

/// Every group's kept revisions under one deployment root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Usage {
    pub root: PathBuf,
    pub bytes: u64,
    pub revisions: usize,
    pub groups: Vec<GroupUsage>,
}

/// Measures the revisions kept under `layout`'s root; `tracking_dir` is the
/// `ongoing_deployment_tracking` directory name (not a group). A missing root is empty.
pub fn kept_revisions(layout: &Layout, tracking_dir: &str) -> io::Result<Usage> {
    let root = layout.root();
    let not_groups = [
        layout.instructions_dir(),
        layout.deployment_logs_dir(),
        layout.ongoing_dir(tracking_dir),
    ];
    let mut usage = Usage {
        root: root.to_path_buf(),
        ..Usage::default()
    };
    for group_dir in subdirs(root)? {
        if not_groups.contains(&group_dir) {
            continue;
        }
        let mut group = GroupUsage {
            group: name_of(&group_dir),
            bytes: 0,
            revisions: Vec::new(),
        };
        for dir in subdirs(&group_dir)? {
            let bytes = measure(&dir)?;
            let bundle_archive_bytes = match fs::symlink_metadata(state::bundle_file(&dir)) {
                Ok(m) if m.file_type().is_file() => m.blocks() * 512,
                _ => 0,
            };
            group.bytes += bytes;
            group.revisions.push(RevisionUsage {
                deployment: name_of(&dir),
                bytes,
                bundle_archive_bytes,
            });
        }
        usage.bytes += group.bytes;
        usage.revisions += group.revisions.len();
        usage.groups.push(group);
    }
    Ok(usage)
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| crate::names::os(n).into_owned())
        .unwrap_or_default()
}

/// Real directories directly inside `dir`, sorted by name (none when `dir` is missing).
fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Allocated bytes of the tree at `path` (itself included), without following links.
pub fn measure(path: &Path) -> io::Result<u64> {
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = 0u64;
    // Iterative, so a deep tree cannot exhaust the stack.
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            match fs::read_dir(&p) {
                Ok(listing) => {
                    for entry in listing.flatten() {
                        stack.push(entry.path());
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_groups_and_revisions_not_state_dirs() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::new(t.path().join("root"));
        assert_eq!(kept_revisions(&layout, "ongoing").unwrap().revisions, 0);
        for (g, d) in [("g1", "d-1"), ("g1", "d-2"), ("g2", "d-3")] {
            let dir = layout.deployment_dir(g, d);
            fs::create_dir_all(state::archive_dir(&dir)).unwrap();
            fs::write(state::archive_dir(&dir).join("f"), vec![7u8; 100_000]).unwrap();
        }
        fs::write(
            state::bundle_file(&layout.deployment_dir("g1", "d-2")),
            vec![1u8; 50_000],
        )
        .unwrap();
        fs::create_dir_all(layout.instructions_dir()).unwrap();
        fs::create_dir_all(layout.ongoing_dir("ongoing")).unwrap();
        let u = kept_revisions(&layout, "ongoing").unwrap();
        assert_eq!(u.revisions, 3);
        let names: Vec<&str> = u.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["g1", "g2"]);
        let d2 = &u.groups[0].revisions[1];
        assert!(d2.bundle_archive_bytes >= 50_000, "{d2:?}");
        assert!(d2.bytes >= 150_000, "{d2:?}");
        assert_eq!(u.groups[0].revisions[0].bundle_archive_bytes, 0);
        assert_eq!(u.bytes, u.groups.iter().map(|g| g.bytes).sum::<u64>());
    }

    #[test]
    fn hard_links_count_once_and_links_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("a"), vec![0u8; 200_000]).unwrap();
        let one = measure(&d).unwrap();
        fs::hard_link(d.join("a"), d.join("b")).unwrap();
        std::os::unix::fs::symlink("/usr", d.join("l")).unwrap();
        let with_links = measure(&d).unwrap();
        // A symlink's own inode takes at most a block; /usr is not walked.
        assert!(with_links - one <= 4096, "{one} {with_links}");
        assert_eq!(measure(&t.path().join("absent")).unwrap(), 0);
    }
}
