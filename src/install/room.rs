//! Before an install changes anything: does the plan fit on every destination's file system,
//! above the reserve? Counted per file system (by device): each copy's size rounded up to the
//! block, a block per new directory, less what the previous revision's cleanup will free
//! there (its journaled regular files that have no other link).
//!
//! Invariant: only looks (`lstat`, `statvfs`); a refusal leaves the previous revision
//! installed. When root_dir shares a file system with a destination, the archive copy is
//! already on it and so already out of its free space: both copies are counted, unless
//! `install_by_hard_link` makes the live files second names of the archive's there: those
//! cost no blocks and their sources are not looked at (a link the file system then refuses
//! falls back to a copy: rare, and not counted).

use super::InstallError;
use crate::fscopy::{open_dir_path, LastDir};
use crate::plan::{InstallPlan, PreviousInstall, Removal, Step};
use crate::space::{self, NoSpace, Reserve};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the plan needs and frees on one file system.
#[derive(Debug, Default)]
struct Tally {
    needed: u64,
    freed: u64,
    /// A destination on it, for measuring and for the message.
    example: PathBuf,
    block: u64,
}

/// PURE: the bytes a file system must still give: what is written less what is freed first.
pub(crate) fn net_need(needed: u64, freed: u64) -> u64 {
    needed.saturating_sub(freed)
}

/// Refuses the plan when some destination file system would end up inside its reserve.
/// `links_on`: with `install_by_hard_link`, the device of the archive dir.
pub(crate) fn check(
    plan: &InstallPlan,
    previous: &PreviousInstall,
    rule: Reserve,
    links_on: Option<u64>,
) -> Result<(), InstallError> {
    let mut by_dev: HashMap<u64, Tally> = HashMap::new();
    // Copies come grouped by destination directory: one device lookup per directory.
    let mut last_dir = LastDir::default();
    let mut dev_of = |p: &Path| -> Result<u64, InstallError> {
        let dev = last_dir.get_or_open(p.parent().unwrap_or(p), |dir| {
            space::device_of(dir).map_err(|e| InstallError::io("inspect", dir, e))
        })?;
        Ok(*dev)
    };
    let mut sources = SourceSizes::default();
    for step in plan.steps() {
        let step = step.map_err(InstallError::plan_unreadable)?;
        let (dest, source) = match &step {
            Step::Mkdir { dir, .. } => (dir, None),
            Step::Copy {
                source,
                destination,
                ..
            } => (destination, Some(source)),
            Step::SetPermissions(_) => continue,
        };
        let dev = dev_of(dest)?;
        let t = by_dev.entry(dev).or_default();
        if t.example.as_os_str().is_empty() {
            t.example = dest.clone();
            t.block = space::probe(dest).map_or(4096, |s| s.block);
        }
        let cost = match source {
            None => t.block,
            Some(_) if links_on == Some(dev) => 0,
            Some(src) => {
                let len = sources
                    .file_len(src)
                    .map_err(|e| InstallError::io("inspect", src, e))?;
                space::on_disk(len, t.block)
            }
        };
        t.needed = t.needed.saturating_add(cost);
    }
    for r in previous.removals() {
        let Removal::Path(p) = r.map_err(InstallError::journal_unreadable)? else {
            continue;
        };
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !m.is_file() || m.nlink() > 1 {
            continue;
        }
        if let Some(t) = by_dev.get_mut(&m.dev()) {
            t.freed = t.freed.saturating_add(m.blocks().saturating_mul(512));
        }
    }
    for t in by_dev.values() {
        let need = net_need(t.needed, t.freed);
        let fs =
            space::probe(&t.example).map_err(|e| InstallError::io("measure", &t.example, e))?;
        if let Err(short) = space::check(need, fs, &rule) {
            return Err(InstallError::NoSpace(NoSpace::new(short, &t.example, rule)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_space_counts_against_what_is_written() {
        assert_eq!(net_need(10, 3), 7);
        assert_eq!(net_need(3, 10), 0);
    }
}

/// Sizes of the plan's sources, asked relative to their directory, which stays open while
/// consecutive sources share it (no walk of the whole path per file).
#[derive(Default)]
struct SourceSizes {
    dir: LastDir<std::os::fd::OwnedFd>,
}

impl SourceSizes {
    /// The size of the regular file at `path`; 0 for anything else (a link is copied as one).
    fn file_len(&mut self, path: &Path) -> std::io::Result<u64> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let fd = self.dir.get_or_open(parent, open_dir_path)?;
        let st = nix::sys::stat::fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
        Ok(if st.st_mode & libc::S_IFMT == libc::S_IFREG {
            u64::try_from(st.st_size).unwrap_or(0)
        } else {
            0
        })
    }
}
