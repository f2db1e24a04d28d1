//! Removes what the previous revision installed, from its parsed journal
//! (docs/behaviour/install.md#install-execution).
//!
//! Invariants: never follows a symlink in the last component (a symlink is unlinked);
//! removes a directory only when it is empty; a path that is already gone is fine; a path
//! below a journaled directory that has since become a symlink is left alone, so a swapped
//! symlink cannot redirect the removal outside the installed tree.

use super::perms::Tools;
use super::InstallError;
use crate::plan::{Previous, PreviousInstall, Removal};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Whether every ancestor of `p` that the journal lists is still a real directory. Each
/// ancestor's answer is kept: many removals share their ancestors.
fn ancestors_intact(
    p: &Path,
    journaled: &PreviousInstall,
    cache: &mut HashMap<PathBuf, bool>,
) -> io::Result<bool> {
    for a in p.ancestors().skip(1) {
        let ok = match cache.get(a) {
            Some(&ok) => ok,
            None => {
                let ok = !journaled.installed(a)?
                    || fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_dir());
                cache.insert(a.to_path_buf(), ok);
                ok
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies the journal's removals (last line first). Returns how many entries were
/// processed.
pub(crate) fn apply_removals(
    journaled: &PreviousInstall,
    tools: &Tools,
    warnings: &mut Vec<String>,
) -> Result<usize, InstallError> {
    let mut cache = HashMap::new();
    for r in journaled.removals() {
        match r.map_err(InstallError::journal_unreadable)? {
            Removal::Path(p) => {
                let intact = ancestors_intact(&p, journaled, &mut cache)
                    .map_err(InstallError::journal_unreadable)?;
                if !intact {
                    warnings.push(format!(
                        "not removing {}: a directory above it is no longer the one the previous install created",
                        crate::names::Shown(&p)
                    ));
                    continue;
                }
                remove_one(&p)?;
            }
            Removal::SeContext(p) => match &tools.semanage {
                Some(semanage) => {
                    // The official agent ignores the result too: the rule may already be gone.
                    let _ = Command::new(semanage)
                        .args(["fcontext", "-d"])
                        .arg(&p)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
                None => warnings.push(format!(
                    "semanage is not installed; the SELinux file context rule for {} was not removed",
                    crate::names::Shown(&p)
                )),
            },
        }
    }
    Ok(journaled.len())
}

fn remove_one(p: &Path) -> Result<(), InstallError> {
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(InstallError::io("inspect", p, e)),
    };
    if meta.file_type().is_dir() {
        match fs::remove_dir(p) {
            Ok(()) => Ok(()),
            Err(e)
                if gone(&e)
                    || matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) =>
            {
                Ok(())
            }
            Err(e) => Err(InstallError::io("remove directory", p, e)),
        }
    } else {
        match fs::remove_file(p) {
            Ok(()) => Ok(()),
            Err(e) if gone(&e) => Ok(()),
            Err(e) => Err(InstallError::io("remove", p, e)),
        }
    }
}
