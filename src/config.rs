//! Agent configuration: codedeployagent.yml (plain keys or the legacy `:key:` form) and the
//! on-premises file. Every key of the official agent has its default here.
//!
//! Invariant: a `Config` value has been validated; bad values stop start-up with an error that
//! names the file, the key and what was expected.

use std::path::PathBuf;

pub const DEFAULT_CONFIG_FILE: &str = "/etc/codedeploy-agent/conf/codedeployagent.yml";
pub const DEFAULT_ON_PREMISES_FILE: &str = "/etc/codedeploy-agent/conf/codedeploy.onpremises.yml";
pub const DEFAULT_ROOT_DIR: &str = "/opt/codedeploy-agent/deployment-root";
pub const DEFAULT_LOG_DIR: &str = "/var/log/aws/codedeploy-agent";
pub const DEFAULT_PID_DIR: &str = "/opt/codedeploy-agent/state/.pid";

/// The agent's settings. Field names are the configuration keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the settings came from (None: built-in defaults only).
    pub source: Option<PathBuf>,
    pub program_name: String,
    pub log_dir: PathBuf,
    pub pid_dir: PathBuf,
    pub root_dir: PathBuf,
    pub verbose: bool,
    pub wait_between_runs: u64,
    pub proxy_uri: Option<String>,
    pub max_revisions: u32,
    pub disable_imds_v1: bool,
    pub log_aws_wire: bool,
    pub http_read_timeout: u64,
    pub kill_agent_max_wait_time_seconds: u64,
    pub on_premises_config_file: PathBuf,
    pub ongoing_deployment_tracking: String,
    pub enable_deployments_log: bool,
    pub use_fips_mode: bool,
    pub deploy_control_endpoint: Option<String>,
    pub s3_endpoint_override: Option<String>,
    pub enable_auth_policy: bool,
    pub codedeploy_test_profile: String,
    pub wait_after_throttle_error: u64,
    pub wait_after_connection_problem: u64,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Upper bound of the bytes one bundle may unpack to (zip-bomb guard).
    pub archive_max_extraction_size: u64,
    /// Refuse setuid/setgid files inside bundles.
    pub reject_unsafe_permissions_in_bundle: bool,
    /// Do not restore tar ownership even when running as root.
    pub ignore_ownership_in_bundle: bool,
    /// Trust anchor for deployment-spec signatures; when set the signer must chain to it.
    pub deployment_spec_ca_file: Option<PathBuf>,
    /// Size at which scripts.log is rotated.
    pub scripts_log_max_bytes: u64,
    /// Size at which the agent's text log is rotated, and how many rotated files are kept.
    pub log_max_bytes: u64,
    pub log_keep_files: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: None,
            program_name: "codedeploy-agent".into(),
            log_dir: DEFAULT_LOG_DIR.into(),
            pid_dir: DEFAULT_PID_DIR.into(),
            root_dir: DEFAULT_ROOT_DIR.into(),
            verbose: false,
            wait_between_runs: 30,
            proxy_uri: None,
            max_revisions: 5,
            disable_imds_v1: false,
            log_aws_wire: false,
            http_read_timeout: 80,
            kill_agent_max_wait_time_seconds: 7200,
            on_premises_config_file: DEFAULT_ON_PREMISES_FILE.into(),
            ongoing_deployment_tracking: "ongoing-deployment".into(),
            enable_deployments_log: true,
            use_fips_mode: false,
            deploy_control_endpoint: None,
            s3_endpoint_override: None,
            enable_auth_policy: false,
            codedeploy_test_profile: "prod".into(),
            wait_after_throttle_error: 60,
            wait_after_connection_problem: 5,
            user: None,
            group: None,
            archive_max_extraction_size: 16 * 1024 * 1024 * 1024,
            reject_unsafe_permissions_in_bundle: false,
            ignore_ownership_in_bundle: false,
            deployment_spec_ca_file: None,
            scripts_log_max_bytes: 64 * 1024 * 1024,
            log_max_bytes: 64 * 1024 * 1024,
            log_keep_files: 7,
        }
    }
}
