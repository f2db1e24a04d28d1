//! The command-line surface. `codedeploy-agent <command>`; invoked through a link named
//! `codedeploy-local`, the binary takes `deploy-local`'s flags directly.
//!
//! Invariant: parsing only; no I/O happens here.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "codedeploy-agent",
    version,
    about = "Host agent for AWS CodeDeploy in-place deployments"
)]
pub struct Cli {
    /// Agent configuration file [default: /etc/codedeploy-agent/conf/codedeployagent.yml]
    #[arg(
        long,
        global = true,
        env = "CODEDEPLOY_AGENT_CONFIG",
        value_name = "PATH"
    )]
    pub config_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: poll the CodeDeploy host-command service and execute its commands.
    Run,
    /// Deploy a bundle on this host without the service (the official codedeploy-local).
    DeployLocal(DeployLocalArgs),
    /// Check a bundle (directory, tar, tgz or zip) and its AppSpec; print what it would do.
    Validate(ValidateArgs),
    /// Show whether the agent runs and what it is doing.
    Status(StatusArgs),
    /// Print hook output from the deployments' scripts.log files.
    Logs(LogsArgs),
}

#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct DeployLocalArgs {
    /// Bundle: a local directory or archive, s3://bucket/key[?versionId=..&etag=..], or a GitHub https URL
    #[arg(short = 'l', long, value_name = "LOCATION")]
    pub bundle_location: Option<String>,
    /// Bundle type: tgz, tar, zip or directory
    #[arg(
        short = 't',
        long = "type",
        value_name = "TYPE",
        default_value = "directory"
    )]
    pub bundle_type: String,
    /// What to do with files that already exist at a destination: DISALLOW, OVERWRITE or RETAIN
    #[arg(short = 'b', long, value_name = "BEHAVIOR", default_value = "DISALLOW")]
    pub file_exists_behavior: String,
    /// Deployment group id (the directory under the deployment root)
    #[arg(
        short = 'g',
        long,
        value_name = "ID",
        default_value = "default-local-deployment-group"
    )]
    pub deployment_group: String,
    /// Deployment group name (DEPLOYMENT_GROUP_NAME of the hooks)
    #[arg(short = 'd', long, value_name = "NAME", default_value = "LocalFleet")]
    pub deployment_group_name: String,
    /// Application name (APPLICATION_NAME of the hooks) [default: the bundle location]
    #[arg(short = 'a', long, value_name = "NAME")]
    pub application_name: Option<String>,
    /// Comma-separated lifecycle events to run [default: all]
    #[arg(short = 'e', long, value_name = "EVENTS")]
    pub events: Option<String>,
    /// Agent configuration file (root_dir, log_dir, ...)
    #[arg(short = 'c', long, value_name = "PATH")]
    pub agent_configuration_file: Option<PathBuf>,
    /// AppSpec file name in the bundle root [default: appspec.yml, then appspec.yaml]
    #[arg(short = 'A', long, value_name = "NAME")]
    pub appspec_filename: Option<String>,
    /// When an event fails, redeploy the group's last successful revision
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Seconds to wait while another deployment holds the group (0: stop at once)
    /// [default: deploy_local_lock_wait_seconds of the configuration, 60]
    #[arg(long, value_name = "SECONDS")]
    pub lock_wait: Option<u64>,
    /// Continue the local deployments a reboot paused (a hook asked for it; docs/reboot.md);
    /// the other flags but -c and --lock-wait are not used
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Bundle directory or tar/tgz/zip archive
    pub path: PathBuf,
    /// AppSpec file name in the bundle root
    #[arg(short = 'A', long, value_name = "NAME")]
    pub appspec_filename: Option<String>,
    /// Print one JSON document (valid, problems, summary) for a pipeline to read
    #[arg(long)]
    pub json: bool,
    /// Warnings make the bundle invalid too (exit status 1)
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing as hooks write, until interrupted (after the last 10 lines, or -n)
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines of the history (with --follow: 10 unless given)
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Only this deployment id
    #[arg(long, value_name = "ID")]
    pub deployment: Option<String>,
    /// Only this deployment group id
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// Only this lifecycle event
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
}

/// `codedeploy-local`: the same flags, without a subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "codedeploy-local",
    version,
    about = "Deploy a bundle on this host without the CodeDeploy service"
)]
pub struct LocalCli {
    #[command(flatten)]
    pub args: DeployLocalArgs,
}

/// True when the program was started through a name that means `deploy-local`.
pub fn invoked_as_local(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "codedeploy-local")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
        LocalCli::command().debug_assert();
    }

    #[test]
    fn deploy_local_short_flags() {
        let cli = Cli::try_parse_from([
            "codedeploy-agent",
            "deploy-local",
            "-l",
            "/b",
            "-t",
            "tgz",
            "-b",
            "OVERWRITE",
            "-g",
            "g1",
            "-d",
            "Fleet",
            "-a",
            "app",
            "-e",
            "ApplicationStart",
            "-c",
            "/c.yml",
            "-A",
            "x.yml",
        ])
        .unwrap();
        let Command::DeployLocal(a) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(a.bundle_location.as_deref(), Some("/b"));
        assert_eq!(a.bundle_type, "tgz");
        assert_eq!(a.file_exists_behavior, "OVERWRITE");
        assert_eq!(a.deployment_group, "g1");
        assert_eq!(a.deployment_group_name, "Fleet");
        assert_eq!(a.application_name.as_deref(), Some("app"));
        assert_eq!(a.events.as_deref(), Some("ApplicationStart"));
        assert_eq!(a.appspec_filename.as_deref(), Some("x.yml"));
        assert!(!a.rollback_on_failure);
        assert_eq!(a.lock_wait, None);
        let waits =
            Cli::try_parse_from(["codedeploy-agent", "deploy-local", "--lock-wait", "0"]).unwrap();
        let Command::DeployLocal(w) = waits.command else {
            panic!("wrong command")
        };
        assert_eq!(w.lock_wait, Some(0));
    }

    #[test]
    fn argv0_selects_local_mode() {
        assert!(invoked_as_local(
            "/opt/codedeploy-agent/bin/codedeploy-local".as_ref()
        ));
        assert!(!invoked_as_local("codedeploy-agent".as_ref()));
        let l = LocalCli::try_parse_from(["codedeploy-local", "-l", "/x"]).unwrap();
        assert_eq!(l.args.deployment_group, "default-local-deployment-group");
    }
}
