//! Applies one path's permissions: owner/group, mode, ACL (`setfacl`), SELinux context
//! (`semanage` + `restorecon`).
//!
//! Invariants: the last path component is never followed. Owner and mode are applied through
//! a descriptor opened with `O_NOFOLLOW`; a symlink only gets its own owner/group (`lchown`),
//! never a mode, ACL or context, since those would land on the link's target. Owner and
//! group are applied before the mode because Linux clears setuid/setgid on `chown`.

use super::apply::Journal;
use super::InstallError;
use crate::plan::{full_acl, InstallPlan, PermissionStep};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// External tools, found once per install.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tools {
    pub setfacl: Option<PathBuf>,
    pub semanage: Option<PathBuf>,
    pub restorecon: Option<PathBuf>,
}

fn find_tool(name: &str, search: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search)
        .map(|dir| dir.join(name))
        .find(|c| fs::metadata(c).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

impl Tools {
    pub(crate) fn find(search: Option<&OsStr>) -> Self {
        let search: OsString = match search {
            Some(s) => s.to_os_string(),
            None => std::env::var_os("PATH")
                .unwrap_or_else(|| OsString::from("/usr/sbin:/usr/bin:/sbin:/bin")),
        };
        Self {
            setfacl: find_tool("setfacl", &search),
            semanage: find_tool("semanage", &search),
            restorecon: find_tool("restorecon", &search),
        }
    }
}

/// User and group ids the plan names, resolved before anything changes.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

/// Refuses a plan that needs a tool this host lacks or names an unknown user or group.
pub(crate) fn check_and_resolve(plan: &InstallPlan, tools: &Tools) -> Result<Ids, InstallError> {
    let mut ids = Ids::default();
    for p in plan.permission_settings() {
        let missing = |what, tool| InstallError::MissingTool {
            object: p.object.clone(),
            line: p.pos.line,
            what,
            tool,
        };
        if !p.acls.is_empty() && tools.setfacl.is_none() {
            return Err(missing("ACLs", "setfacl"));
        }
        if p.context.is_some() {
            if tools.semanage.is_none() {
                return Err(missing("an SELinux context", "semanage"));
            }
            if tools.restorecon.is_none() {
                return Err(missing("an SELinux context", "restorecon"));
            }
        }
        if let Some(name) = &p.owner {
            if !ids.users.contains_key(name) {
                match nix::unistd::User::from_name(name) {
                    Ok(Some(u)) => {
                        ids.users.insert(name.clone(), u.uid.as_raw());
                    }
                    _ => {
                        return Err(InstallError::UnknownUser {
                            name: name.clone(),
                            object: p.object.clone(),
                            line: p.pos.line,
                        })
                    }
                }
            }
        }
        if let Some(name) = &p.group {
            if !ids.groups.contains_key(name) {
                match nix::unistd::Group::from_name(name) {
                    Ok(Some(g)) => {
                        ids.groups.insert(name.clone(), g.gid.as_raw());
                    }
                    _ => {
                        return Err(InstallError::UnknownGroup {
                            name: name.clone(),
                            object: p.object.clone(),
                            line: p.pos.line,
                        })
                    }
                }
            }
        }
    }
    Ok(ids)
}

/// Applies one permission step.
pub(crate) fn apply_permission(
    p: &PermissionStep,
    ids: &Ids,
    tools: &Tools,
    journal: &mut Journal,
    warnings: &mut Vec<String>,
) -> Result<(), InstallError> {
    let uid = p.owner.as_ref().and_then(|n| ids.users.get(n).copied());
    let gid = p.group.as_ref().and_then(|n| ids.groups.get(n).copied());
    let path = p.path.as_path();
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let is_symlink = match opened {
        Ok(f) => {
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::fchown(&f, uid, gid)
                    .map_err(|e| InstallError::io("chown", path, e))?;
            }
            if let Some(mode) = p.mode {
                f.set_permissions(Permissions::from_mode(mode.bits()))
                    .map_err(|e| InstallError::io("chmod", path, e))?;
            }
            false
        }
        // Unreadable (say mode 000): fall back to path calls once lstat says it is no symlink.
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            let meta =
                fs::symlink_metadata(path).map_err(|e| InstallError::io("inspect", path, e))?;
            let link = meta.file_type().is_symlink();
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(path, uid, gid)
                    .map_err(|e| InstallError::io("chown", path, e))?;
            }
            if let (Some(mode), false) = (p.mode, link) {
                fs::set_permissions(path, Permissions::from_mode(mode.bits()))
                    .map_err(|e| InstallError::io("chmod", path, e))?;
            }
            link
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(path, uid, gid)
                    .map_err(|e| InstallError::io("chown", path, e))?;
            }
            true
        }
        Err(e) => return Err(InstallError::io("open", path, e)),
    };
    if is_symlink {
        if p.mode.is_some() || !p.acls.is_empty() || p.context.is_some() {
            warnings.push(format!(
                "{} is a symlink: its mode, ACL and SELinux context were left alone so its target is not changed",
                crate::names::Shown(path)
            ));
        }
        return Ok(());
    }
    if let (false, Some(setfacl)) = (p.acls.is_empty(), &tools.setfacl) {
        let mode = fs::symlink_metadata(path)
            .map_err(|e| InstallError::io("inspect", path, e))?
            .mode();
        let acl = full_acl(&p.acls, mode & 0o777).join(",");
        let mut cmd = Command::new(setfacl);
        cmd.arg("--set").arg(&acl).arg(path);
        run(cmd, |status| {
            format!(
                "The deployment failed because of a problem with the acls permission settings in the application specification file for this object: {}. Failed command: setfacl --set {acl} {}. Exit code: {status}",
                crate::names::Shown(path),
                crate::names::Shown(path)
            )
        })?;
    }
    if let (Some(ctx), Some(semanage), Some(restorecon)) =
        (&p.context, &tools.semanage, &tools.restorecon)
    {
        let real = fs::canonicalize(path).map_err(|e| InstallError::io("resolve", path, e))?;
        journal.record_context(&real)?;
        let mut args: Vec<OsString> = vec!["fcontext".into(), "-a".into()];
        if let Some(user) = &ctx.user {
            args.extend(["-s".into(), user.into()]);
        }
        args.extend(["-t".into(), ctx.type_.clone().into()]);
        if let Some(range) = &ctx.range {
            args.extend(["-r".into(), range.to_string().into()]);
        }
        args.push(real.clone().into_os_string());
        let shown = |prog: &str, args: &[OsString]| {
            let rest: Vec<String> = args
                .iter()
                .map(|a| crate::names::os(a).into_owned())
                .collect();
            format!("{prog} {}", rest.join(" "))
        };
        let semanage_text = shown("semanage", &args);
        let mut cmd = Command::new(semanage);
        cmd.args(&args);
        run(cmd, |status| context_message(&semanage_text, status))?;
        let rargs: Vec<OsString> = vec!["-v".into(), real.into_os_string()];
        let restorecon_text = shown("restorecon", &rargs);
        let mut cmd = Command::new(restorecon);
        cmd.args(&rargs);
        run(cmd, |status| context_message(&restorecon_text, status))?;
    }
    Ok(())
}

fn context_message(cmd: &str, status: &str) -> String {
    format!("The deployment failed because the application specification file contains an error in the settings for the context parameter. Update the permissions section of the AppSpec file, and then try again. Failed command: {cmd}. Exit code: {status}")
}

/// Runs a tool; on failure builds the official message from Ruby-style status text
/// (`pid 4242 exit 1`).
fn run(mut cmd: Command, message: impl Fn(&str) -> String) -> Result<(), InstallError> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return Err(InstallError::Command {
                message: message(&format!("could not start: {e}")),
                stderr: String::new(),
            })
        }
    };
    let pid = child.id();
    let out = child
        .wait_with_output()
        .map_err(|e| InstallError::Command {
            message: message(&format!("pid {pid} wait failed: {e}")),
            stderr: String::new(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let status = match out.status.code() {
        Some(c) => format!("pid {pid} exit {c}"),
        None => {
            use std::os::unix::process::ExitStatusExt;
            format!("pid {pid} signal {}", out.status.signal().unwrap_or(0))
        }
    };
    Err(InstallError::Command {
        message: message(&status),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}
