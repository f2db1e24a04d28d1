//! What a hook process sees: its environment (docs/behaviour/hooks.md#hook-process) and, with
//! `runas`, the identity it switches to.
//!
//! Invariants: the agent's own credentials and its systemd hand-shake variables never reach
//! a hook ([`STRIPPED_VARS`]); a `BUNDLE_*` variable the revision does not define is absent,
//! never inherited from the agent; `runas` is resolved in the parent, so the forked child
//! only makes system calls.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// Removed from every hook's environment, with why:
/// * `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_SECURITY_TOKEN`,
///   `AWS_ACCESS_KEY`, `AWS_SECRET_KEY` (the on-premises IAM-user form), `AWS_CREDENTIAL_FILE`,
///   `AWS_CREDENTIALS_FILE` (the on-premises IAM-session file), `AWS_SHARED_CREDENTIALS_FILE`,
///   `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, `AWS_CONTAINER_CREDENTIALS_FULL_URI`,
///   `AWS_CONTAINER_AUTHORIZATION_TOKEN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`:
///   the agent's identity; a script must use its own (for example the instance profile).
/// * `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`: a hook must not speak for the agent
///   to systemd (a stray `READY=1`/`STOPPING=1` or a missed watchdog ping).
/// * `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`: socket-activation hand-over meant for the
///   agent only.
pub const STRIPPED_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_CREDENTIAL_FILE",
    "AWS_CREDENTIALS_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// Revision variables: set only from the revision, never inherited.
pub const BUNDLE_VARS: &[&str] = &[
    "BUNDLE_BUCKET",
    "BUNDLE_KEY",
    "BUNDLE_VERSION",
    "BUNDLE_ETAG",
    "BUNDLE_COMMIT",
];

/// Marks every process of one hook; the fallback containment finds escaped processes by it.
pub const HOOK_TOKEN_VAR: &str = "CODEDEPLOY_HOOK_ID";

/// The file a hook creates to ask for a reboot after it (docs/reboot.md).
pub const REBOOT_REQUEST_VAR: &str = "CODEDEPLOY_REBOOT_REQUEST";

/// The identity a `runas` script switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// Why a script's `runas` user cannot be taken; the text is the hook's failure message.
#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error("cannot look up user {name}: {source}")]
    Lookup { name: String, source: nix::Error },
    #[error("user {0} does not exist")]
    NoSuchUser(String),
    #[error("invalid user name {0:?}")]
    BadName(String),
    #[error("cannot list the groups of user {name}: {source}")]
    Groups { name: String, source: nix::Error },
}

/// Looks the user up (passwd and group database) in the parent.
pub fn resolve_runas(name: &str) -> Result<RunAs, RunAsError> {
    let user = nix::unistd::User::from_name(name)
        .map_err(|source| RunAsError::Lookup {
            name: name.to_string(),
            source,
        })?
        .ok_or_else(|| RunAsError::NoSuchUser(name.to_string()))?;
    let cname = std::ffi::CString::new(name).map_err(|_| RunAsError::BadName(name.to_string()))?;
    let groups =
        nix::unistd::getgrouplist(&cname, user.gid).map_err(|source| RunAsError::Groups {
            name: name.to_string(),
            source,
        })?;
    Ok(RunAs {
        name: name.to_string(),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.iter().map(|g| g.as_raw()).collect(),
        home: user.dir,
        shell: user.shell,
    })
}

/// The per-event values a hook receives.
#[derive(Debug, Clone, Copy)]
pub struct HookVars<'a> {
    pub event: &'a str,
    pub deployment_id: &'a str,
    pub application_name: &'a str,
    pub deployment_group_name: &'a str,
    pub deployment_group_id: &'a str,
    pub revision_env: &'a [(String, String)],
    pub token: &'a str,
    /// Where this script may ask for a reboot; `None`: the variable is absent.
    pub reboot_request: Option<&'a std::path::Path>,
}

/// Builds a hook's whole environment from the agent's.
pub fn hook_env<I>(
    inherited: I,
    vars: &HookVars<'_>,
    runas: Option<&RunAs>,
) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut set: Vec<(&str, OsString)> = vec![
        ("LIFECYCLE_EVENT", vars.event.into()),
        ("DEPLOYMENT_ID", vars.deployment_id.into()),
        ("APPLICATION_NAME", vars.application_name.into()),
        ("DEPLOYMENT_GROUP_NAME", vars.deployment_group_name.into()),
        ("DEPLOYMENT_GROUP_ID", vars.deployment_group_id.into()),
        (HOOK_TOKEN_VAR, vars.token.into()),
    ];
    if let Some(r) = vars.reboot_request {
        set.push((REBOOT_REQUEST_VAR, r.as_os_str().to_os_string()));
    }
    for (k, v) in vars.revision_env {
        if BUNDLE_VARS.contains(&k.as_str()) {
            set.push((k.as_str(), v.into()));
        }
    }
    if let Some(u) = runas {
        set.push(("HOME", u.home.clone().into_os_string()));
        set.push(("USER", u.name.as_str().into()));
        set.push(("LOGNAME", u.name.as_str().into()));
        set.push(("SHELL", u.shell.clone().into_os_string()));
    }
    let overridden = |k: &OsStr| {
        STRIPPED_VARS.iter().any(|s| k == OsStr::new(s))
            || k == OsStr::new(REBOOT_REQUEST_VAR)
            || BUNDLE_VARS.iter().any(|s| k == OsStr::new(s))
            || set.iter().any(|(s, _)| k == OsStr::new(s))
    };
    let mut env: Vec<(OsString, OsString)> = inherited
        .into_iter()
        .filter(|(k, _)| !overridden(k))
        .collect();
    env.extend(set.into_iter().map(|(k, v)| (OsString::from(k), v)));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(rev: &'a [(String, String)]) -> HookVars<'a> {
        HookVars {
            event: "ApplicationStart",
            deployment_id: "d-1",
            application_name: "app",
            deployment_group_name: "grp",
            deployment_group_id: "gid-1",
            revision_env: rev,
            token: "tok",
            reboot_request: None,
        }
    }

    fn get<'a>(env: &'a [(OsString, OsString)], k: &str) -> Option<&'a OsStr> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_os_str())
    }

    #[test]
    fn credentials_and_systemd_vars_are_removed_and_ids_added() {
        let inherited = [
            ("PATH", "/bin"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ACCESS_KEY", "k"),
            ("NOTIFY_SOCKET", "/run/x"),
            ("BUNDLE_ETAG", "stale"),
            ("AWS_REGION", "eu-west-1"),
            ("DEPLOYMENT_ID", "old"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let rev = vec![("BUNDLE_BUCKET".to_string(), "b".to_string())];
        let env = hook_env(inherited, &vars(&rev), None);
        assert_eq!(get(&env, "PATH"), Some(OsStr::new("/bin")));
        assert_eq!(get(&env, "AWS_REGION"), Some(OsStr::new("eu-west-1")));
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY",
            "NOTIFY_SOCKET",
            "BUNDLE_ETAG",
        ] {
            assert_eq!(get(&env, k), None, "{k}");
        }
        assert_eq!(get(&env, "DEPLOYMENT_ID"), Some(OsStr::new("d-1")));
        assert_eq!(env.iter().filter(|(k, _)| k == "DEPLOYMENT_ID").count(), 1);
        assert_eq!(get(&env, "BUNDLE_BUCKET"), Some(OsStr::new("b")));
        assert_eq!(
            get(&env, "LIFECYCLE_EVENT"),
            Some(OsStr::new("ApplicationStart"))
        );
    }

    #[test]
    fn the_reboot_request_path_is_set_only_by_the_agent() {
        let inherited = [(OsString::from(REBOOT_REQUEST_VAR), OsString::from("/old"))];
        let env = hook_env(inherited.clone(), &vars(&[]), None);
        assert_eq!(get(&env, REBOOT_REQUEST_VAR), None, "never inherited");
        let mut v = vars(&[]);
        let path = std::path::Path::new("/r/g/d-1/reboot-request/AfterInstall.1/reboot");
        v.reboot_request = Some(path);
        let env = hook_env(inherited, &v, None);
        assert_eq!(get(&env, REBOOT_REQUEST_VAR), Some(path.as_os_str()));
        assert_eq!(
            env.iter().filter(|(k, _)| k == REBOOT_REQUEST_VAR).count(),
            1
        );
    }

    #[test]
    fn runas_sets_the_users_identity_variables() {
        let u = RunAs {
            name: "web".into(),
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            home: "/home/web".into(),
            shell: "/bin/bash".into(),
        };
        let inherited = [("HOME", "/root"), ("USER", "root")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = hook_env(inherited, &vars(&[]), Some(&u));
        assert_eq!(get(&env, "HOME"), Some(OsStr::new("/home/web")));
        assert_eq!(get(&env, "USER"), Some(OsStr::new("web")));
        assert_eq!(get(&env, "LOGNAME"), Some(OsStr::new("web")));
        assert_eq!(get(&env, "SHELL"), Some(OsStr::new("/bin/bash")));
        assert_eq!(env.iter().filter(|(k, _)| k == "HOME").count(), 1);
    }
}
