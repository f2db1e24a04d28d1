//! Permission planning (docs/behaviour/install.md#permission-planning), kept to the official
//! semantics (docs/behaviour/official-quirks.md#quirk-8, deliberately): only paths this install
//! creates get permissions; `pattern: "**"` matches every descendant, any other pattern and every
//! `except` pattern match direct children only, with `*` as the only wildcard; one path receiving
//! permissions twice is an error.

use super::files::{disp, later_overlaps, path_hash, spill_err, watched};
use super::fsview::normalize;
use super::{InstallPlan, PermTape, PermissionStep, PlanError, SpillSource, Step};
use crate::appspec::model::Permission;
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `*` matches any run of characters (including none); every other character is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    glob_match_bytes(pattern.as_bytes(), text.as_bytes())
}

/// [`glob_match`] on names as bytes. On UTF-8 both agree (a character's bytes can only match
/// where that character starts); a name that is not UTF-8 is matched on its own bytes, so
/// two names that differ only there are never confused.
pub fn glob_match_bytes(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether `candidate` (strictly under `object`) is matched by the entry's pattern and not
/// excluded by its `except` list.
fn matches(object: &Path, candidate: &Path, perm: &Permission) -> bool {
    let Ok(rel) = candidate.strip_prefix(object) else {
        return false;
    };
    if rel.as_os_str().is_empty() {
        return false;
    }
    let rel = rel.as_os_str().as_bytes();
    let direct_child = !rel.contains(&b'/');
    if perm.pattern != "**" && !(direct_child && glob_match_bytes(perm.pattern.as_bytes(), rel)) {
        return false;
    }
    !(direct_child
        && perm
            .except
            .iter()
            .any(|e| glob_match_bytes(e.as_bytes(), rel)))
}

/// Whether the plan creates directory `dir` (read from the tape: once per permission entry).
fn plan_makes(plan: &InstallPlan, dir: &Path) -> std::io::Result<bool> {
    for d in plan.mkdirs() {
        if d? == dir {
            return Ok(true);
        }
    }
    Ok(false)
}

fn ruby_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", parts.join(", "))
}

/// Plans the permission steps over the copies and mkdirs of `plan`, in appspec order, onto
/// the plan's permission tape. `object_is_copy[i]`: entry `i`'s object is a planned copy.
///
/// A path two entries cover is refused. Only entries whose objects share paths (one is an
/// ancestor of, or the same as, the other) can cover the same path, and one entry never
/// covers a path twice, so a covered path is indexed by hash only where a later entry could
/// meet it, and a hit is confirmed on the tape.
pub(crate) fn plan_permissions(
    perms: &[Permission],
    plan: &mut InstallPlan,
    object_is_copy: &[bool],
    is_existing_dir: &dyn Fn(&Path) -> Result<bool, PlanError>,
    cwd: &Path,
    spill: Option<&dyn SpillSource>,
) -> Result<(), PlanError> {
    let objects: Vec<PathBuf> = perms
        .iter()
        .map(|p| normalize(cwd, Path::new(&p.object)))
        .collect();
    let mut covered = Covered {
        hashes: HashSet::new(),
        watch: Vec::new(),
        spill,
    };
    for (i, perm) in perms.iter().enumerate() {
        let object = &objects[i];
        covered.watch = later_overlaps(&objects, i);
        let has_default_acl = perm.acls.iter().any(|a| a.default);
        let asks_anything = perm.mode.is_some()
            || !perm.acls.is_empty()
            || perm.context.is_some()
            || perm.owner.is_some()
            || perm.group.is_some();
        let entry = plan
            .perms
            .add_entry(
                PermissionStep {
                    path: PathBuf::new(),
                    mode: perm.mode,
                    acls: perm.acls.clone(),
                    context: perm.context.clone(),
                    owner: perm.owner.clone(),
                    group: perm.group.clone(),
                    object: perm.object.clone(),
                    pos: perm.pos,
                },
                asks_anything,
            )
            .map_err(|_| PlanError::TooManyEntries { pos: perm.pos })?;
        if object_is_copy.get(i).copied().unwrap_or(false) {
            if perm.types.file {
                if perm.pattern != "**" {
                    return Err(PlanError::InvalidPattern {
                        object: perm.object.clone(),
                        pattern: perm.pattern.clone(),
                        pos: perm.pos,
                    });
                }
                if !perm.except.is_empty() {
                    return Err(PlanError::InvalidExcept {
                        object: perm.object.clone(),
                        except: ruby_list(&perm.except),
                        pos: perm.pos,
                    });
                }
                if has_default_acl {
                    return Err(PlanError::DefaultAclOnFile {
                        path: disp(object),
                        pos: perm.pos,
                    });
                }
                covered.add(&mut plan.perms, entry, object, perm)?;
            }
        } else if plan_makes(plan, object).map_err(spill_err)? || is_existing_dir(object)? {
            if perm.types.file {
                // The copies are read from one tape while the covered paths go to the other.
                for step in plan.tape.steps(&[]) {
                    let Step::Copy { destination: c, .. } = step.map_err(spill_err)? else {
                        continue;
                    };
                    if !matches(object, &c, perm) {
                        continue;
                    }
                    if has_default_acl {
                        return Err(PlanError::DefaultAclOnFile {
                            path: disp(&c),
                            pos: perm.pos,
                        });
                    }
                    covered.add(&mut plan.perms, entry, &c, perm)?;
                }
            }
            if perm.types.directory {
                for step in plan.tape.steps(&[]) {
                    if let Step::Mkdir { dir, .. } = step.map_err(spill_err)? {
                        if matches(object, &dir, perm) {
                            covered.add(&mut plan.perms, entry, &dir, perm)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The paths covered so far, as far as a later entry can meet them.
struct Covered<'a> {
    hashes: HashSet<u64>,
    /// Objects of later entries that share paths with the current entry's.
    watch: Vec<PathBuf>,
    spill: Option<&'a dyn SpillSource>,
}

impl Covered<'_> {
    fn add(
        &mut self,
        perms: &mut PermTape,
        entry: u32,
        path: &Path,
        perm: &Permission,
    ) -> Result<(), PlanError> {
        let h = path_hash(path);
        if self.hashes.contains(&h) && perms.covers(path).map_err(spill_err)? {
            return Err(PlanError::DuplicatePermission {
                path: disp(path),
                pos: perm.pos,
            });
        }
        if watched(path, &self.watch) {
            self.hashes.insert(h);
        }
        perms.push(entry, path).map_err(|e| e.at(perm.pos))?;
        perms.spill_if_due(self.spill).map_err(spill_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_has_only_star() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("?.txt", "?.txt"));
        assert!(!glob_match("?.txt", "a.txt"));
        assert!(glob_match("[ab]", "[ab]"));
        assert!(!glob_match("[ab]", "a"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("*a", "aaa"));
        assert!(glob_match("caf*", "café"));
        assert!(glob_match("*é", "café"));
        assert!(!glob_match("caf?", "café"));
    }

    #[test]
    fn glob_on_bytes_keeps_names_apart() {
        assert!(glob_match_bytes(b"*.txt", b"caf\xe9.txt"));
        assert!(glob_match_bytes(b"caf\xe9", b"caf\xe9"));
        assert!(!glob_match_bytes(b"caf\xe9", b"caf\xe8"));
        assert!(!glob_match_bytes("caf\u{fffd}".as_bytes(), b"caf\xe9"));
    }
}
