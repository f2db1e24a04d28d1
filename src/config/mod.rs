//! Agent configuration: codedeployagent.yml (plain keys or the legacy `:key:` form) and the
//! on-premises file. Every key of the official agent has its default here.
//!
//! Invariant: a `Config` value has been validated; bad values stop start-up with an error that
//! names the file, the key and what was expected.

mod flat_yaml;
pub mod onprem;

use std::path::{Path, PathBuf};

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
    /// The proxy of the command service and S3 (docs/proxies.md); `none`: direct.
    pub proxy_uri: crate::proxy::Setting,
    /// The command service's own proxy; unset: `proxy_uri`.
    pub command_proxy_uri: crate::proxy::Setting,
    /// S3's own proxy; unset: `proxy_uri`.
    pub s3_proxy_uri: crate::proxy::Setting,
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
    /// Base URL of the GitHub API for GitHub revisions (GitHub Enterprise, or tests).
    pub github_api_endpoint: String,
    pub enable_auth_policy: bool,
    pub codedeploy_test_profile: String,
    pub wait_after_throttle_error: u64,
    pub wait_after_connection_problem: u64,
    pub user: Option<String>,
    pub group: Option<String>,
    /// A fixed upper bound of the bytes one bundle may unpack to. None: the free space above
    /// `free_space_reserve` on the deployment root's file system is the bound.
    pub archive_max_extraction_size: Option<u64>,
    /// What must stay free on the file systems of root_dir and of every install destination.
    pub free_space_reserve: crate::space::Reserve,
    /// Refuse setuid/setgid files inside bundles.
    pub reject_unsafe_permissions_in_bundle: bool,
    /// Do not restore tar ownership even when running as root.
    pub ignore_ownership_in_bundle: bool,
    /// Trust anchor for deployment-spec signatures; when set the signer must chain to it.
    pub deployment_spec_ca_file: Option<PathBuf>,
    /// Size at which scripts.log is rotated.
    pub scripts_log_max_bytes: u64,
    /// Lines of each hook script's output the daemon forwards to the journal; the rest is
    /// counted in one summary line (all of it stays in scripts.log).
    pub hook_output_journal_lines: u64,
    /// Size at which the agent's text log is rotated, and how many rotated files are kept.
    pub log_max_bytes: u64,
    pub log_keep_files: u32,
    /// How long `deploy-local` waits for a deployment group another deployment holds
    /// (`--lock-wait` overrides it); 0 refuses at once.
    pub deploy_local_lock_wait_seconds: u64,
    /// What the agent runs when a hook asks for a reboot (docs/reboot.md): a program and its
    /// arguments, run without a shell.
    pub reboot_command: Vec<String>,
    /// Where the daemon writes its fleet metrics for the node_exporter textfile collector
    /// (docs/metrics.md); None: no metrics file.
    pub metrics_textfile: Option<PathBuf>,
    /// Keep a downloaded bundle's archive (`bundle.tar`) beside its extracted revision; off,
    /// only the extracted revision stays on disk (docs/adr/0010-one-copy-on-disk.md).
    pub keep_bundle_archive: bool,
    /// Install regular files as hard links of the kept revision's files (one write instead of
    /// two; the live file and the revision's share an inode), copying where a link cannot be
    /// made (docs/adr/0011-install-by-hard-link.md). Off: copies, as the official agent.
    pub install_by_hard_link: bool,
    /// Ranged GETs of one S3 bundle running at once (docs/adr/0006-bundle-transfer.md).
    pub s3_download_connections: usize,
    /// Bytes each ranged GET of an S3 bundle asks for.
    pub s3_download_part_size: u64,
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
            proxy_uri: crate::proxy::Setting::Unset,
            command_proxy_uri: crate::proxy::Setting::Unset,
            s3_proxy_uri: crate::proxy::Setting::Unset,
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
            github_api_endpoint: "https://api.github.com".into(),
            enable_auth_policy: false,
            codedeploy_test_profile: "prod".into(),
            wait_after_throttle_error: 60,
            wait_after_connection_problem: 5,
            user: None,
            group: None,
            archive_max_extraction_size: None,
            free_space_reserve: crate::space::Reserve::default(),
            reject_unsafe_permissions_in_bundle: false,
            ignore_ownership_in_bundle: false,
            deployment_spec_ca_file: None,
            scripts_log_max_bytes: 64 * 1024 * 1024,
            hook_output_journal_lines: DEFAULT_HOOK_OUTPUT_JOURNAL_LINES,
            log_max_bytes: 64 * 1024 * 1024,
            log_keep_files: 7,
            deploy_local_lock_wait_seconds: 60,
            reboot_command: crate::reboot::DEFAULT_REBOOT_COMMAND
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            metrics_textfile: None,
            keep_bundle_archive: false,
            install_by_hard_link: false,
            s3_download_connections: DEFAULT_S3_DOWNLOAD_CONNECTIONS,
            s3_download_part_size: DEFAULT_S3_DOWNLOAD_PART_SIZE,
        }
    }
}

/// Default of `hook_output_journal_lines`: 1000 lines (about 100 KB) show a script's start-up
/// and its failure in `journalctl`, while ten scripts at their budget stay well below the
/// unit's `LogRateLimitBurst` (docs/adr/0007-systemd-unit.md, "Journal budget").
pub const DEFAULT_HOOK_OUTPUT_JOURNAL_LINES: u64 = 1000;

/// Default of `s3_download_connections`: eight streams of about 80 MiB/s each reach what one
/// host usually gets from S3, and what the unpacker takes (BENCHMARKS.md).
pub const DEFAULT_S3_DOWNLOAD_CONNECTIONS: usize = 8;
/// Most `s3_download_connections`: more only adds buffers and S3 request charges.
pub const MAX_S3_DOWNLOAD_CONNECTIONS: u64 = 64;
/// Default of `s3_download_part_size`: 8 MiB, the AWS CLI's part size.
pub const DEFAULT_S3_DOWNLOAD_PART_SIZE: u64 = 8 << 20;
/// Bounds of `s3_download_part_size`: below 1 MiB the requests cost more than they carry; the
/// window holds half the connections' parts, so a part stays well below the memory budget.
pub const S3_DOWNLOAD_PART_SIZE_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(256 << 20);

/// A configuration file the agent cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), key.as_ref().map(|k| format!(": {k}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

/// Keys the official agent had that mean nothing to this one.
const RETIRED_KEYS: &[&str] = &[
    "children",
    "max_runs_per_worker",
    "wait_between_spawning_children",
    "wait_after_error",
    "plugins",
    "shared_dir",
    "instance_service_region",
    "instance_service_endpoint",
    "instance_service_port",
    "use_mock_command_service",
    "config_file",
];

/// A loaded configuration and the notes (unknown or retired keys) to log once.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub notes: Vec<String>,
}

fn is_true(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn is_null(text: &str, plain: bool) -> bool {
    plain && matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Parses configuration text (pure: no file-system checks; see [`check_paths`]).
pub fn parse(file: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let entries = flat_yaml::parse(text).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: Some(e.line),
        key: None,
        message: format!(
            "not a valid configuration file (column {}): {}",
            e.col, e.message
        ),
    })?;
    let mut c = Config {
        source: Some(file.to_path_buf()),
        ..Config::default()
    };
    let mut notes = Vec::new();
    for entry in entries {
        let key = entry
            .key
            .strip_prefix(':')
            .unwrap_or(&entry.key)
            .to_string();
        let bad = |expected: &str, found: &str| ConfigError {
            file: file.to_path_buf(),
            line: Some(entry.line),
            key: Some(key.clone()),
            message: format!("expected {expected}, found {found:?}"),
        };
        if RETIRED_KEYS.contains(&key.as_str()) {
            notes.push(format!(
                "{}:{}: {key} is a setting of the official agent that this agent does not use; ignored",
                file.display(),
                entry.line
            ));
            continue;
        }
        let (text, plain) = match &entry.value {
            flat_yaml::Value::Scalar { text, plain } => (text.as_str(), *plain),
            flat_yaml::Value::List(_) | flat_yaml::Value::Nested => {
                if KNOWN_KEYS.contains(&key.as_str()) {
                    return Err(bad("a single value", "a list or mapping"));
                }
                notes.push(format!(
                    "{}:{}: unknown setting {key}; ignored",
                    file.display(),
                    entry.line
                ));
                continue;
            }
        };
        let null = is_null(text, plain);
        let boolean = |expected_default: bool| -> Result<bool, ConfigError> {
            if null {
                return Ok(expected_default);
            }
            is_true(text).ok_or_else(|| bad("true or false", text))
        };
        let number = |min: u64, what: &str| -> Result<u64, ConfigError> {
            text.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| bad(what, text))
        };
        let opt_string = || (!null && !text.trim().is_empty()).then(|| text.trim().to_string());
        let abs_path = |what: &str| -> Result<PathBuf, ConfigError> {
            let p = PathBuf::from(text.trim());
            if null || text.trim().is_empty() || !p.is_absolute() {
                return Err(bad(what, text));
            }
            Ok(p)
        };
        // Not `bad`: the error must not repeat a proxy's password.
        let proxy = || -> Result<crate::proxy::Setting, ConfigError> {
            if null {
                return Ok(crate::proxy::Setting::Unset);
            }
            crate::proxy::Setting::parse(text).map_err(|e| ConfigError {
                file: file.to_path_buf(),
                line: Some(entry.line),
                key: Some(key.clone()),
                message: format!("expected an http:// or https:// proxy URL or none: {e}"),
            })
        };
        let url = |allow_empty: bool| -> Result<Option<String>, ConfigError> {
            match opt_string() {
                None if allow_empty => Ok(None),
                None => Err(bad("an http:// or https:// URL", text)),
                Some(u) => {
                    let rest = u
                        .strip_prefix("https://")
                        .or_else(|| u.strip_prefix("http://"));
                    match rest {
                        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(Some(u)),
                        _ => Err(bad("an http:// or https:// URL with a host", text)),
                    }
                }
            }
        };
        match key.as_str() {
            "program_name" => {
                c.program_name = opt_string().ok_or_else(|| bad("a name", text))?;
                if c.program_name.contains('/') {
                    return Err(bad("a name without '/'", text));
                }
            }
            "log_dir" => c.log_dir = abs_path("an absolute directory path")?,
            "pid_dir" => c.pid_dir = abs_path("an absolute directory path")?,
            "root_dir" => c.root_dir = abs_path("an absolute directory path")?,
            "on_premises_config_file" => {
                c.on_premises_config_file = abs_path("an absolute file path")?
            }
            "deployment_spec_ca_file" => {
                c.deployment_spec_ca_file = match opt_string() {
                    None => None,
                    Some(_) => Some(abs_path("an absolute file path")?),
                }
            }
            "verbose" => c.verbose = boolean(false)?,
            "disable_imds_v1" => c.disable_imds_v1 = boolean(false)?,
            "log_aws_wire" => c.log_aws_wire = boolean(false)?,
            "enable_deployments_log" => c.enable_deployments_log = boolean(true)?,
            "use_fips_mode" => c.use_fips_mode = boolean(false)?,
            "enable_auth_policy" => c.enable_auth_policy = boolean(false)?,
            "reject_unsafe_permissions_in_bundle" => {
                c.reject_unsafe_permissions_in_bundle = boolean(false)?
            }
            "ignore_ownership_in_bundle" => c.ignore_ownership_in_bundle = boolean(false)?,
            "keep_bundle_archive" => c.keep_bundle_archive = boolean(false)?,
            "install_by_hard_link" => c.install_by_hard_link = boolean(false)?,
            "wait_between_runs" => c.wait_between_runs = number(0, "a whole number of seconds")?,
            "http_read_timeout" => {
                c.http_read_timeout = number(1, "a whole number of seconds, at least 1")?
            }
            "kill_agent_max_wait_time_seconds" => {
                c.kill_agent_max_wait_time_seconds = number(0, "a whole number of seconds")?
            }
            "wait_after_throttle_error" => {
                c.wait_after_throttle_error = number(0, "a whole number of seconds")?
            }
            "wait_after_connection_problem" => {
                c.wait_after_connection_problem = number(0, "a whole number of seconds")?
            }
            "hook_output_journal_lines" => {
                c.hook_output_journal_lines = number(0, "a whole number of lines, 0 or more")?
            }
            "max_revisions" => {
                let n = number(0, "a whole number of revisions to keep, 0 or more")?;
                c.max_revisions = u32::try_from(n).map_err(|_| bad("a number below 2^32", text))?;
            }
            "archive_max_extraction_size" => {
                c.archive_max_extraction_size = match opt_string() {
                    None => None,
                    Some(v) => Some(
                        crate::space::parse_size(&v)
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| {
                                bad("a size of at least 1 byte (bytes, or 512MiB, 16GiB)", text)
                            })?,
                    ),
                }
            }
            "free_space_reserve" => {
                c.free_space_reserve = crate::space::parse_reserve(text.trim())
                    .map_err(|e| bad(&e.to_string(), text))?
            }
            "scripts_log_max_bytes" => {
                c.scripts_log_max_bytes = number(4096, "a size in bytes, at least 4096")?
            }
            "log_max_bytes" => c.log_max_bytes = number(4096, "a size in bytes, at least 4096")?,
            "deploy_local_lock_wait_seconds" => {
                c.deploy_local_lock_wait_seconds = number(0, "a whole number of seconds")?
            }
            "reboot_command" => {
                c.reboot_command =
                    crate::reboot::parse_reboot_command(text).map_err(|m| bad(m, text))?
            }
            "metrics_textfile" => {
                c.metrics_textfile = match opt_string() {
                    None => None,
                    // The textfile collector reads only `*.prom` files: any other name would
                    // be written and never scraped.
                    Some(v) if v.ends_with(".prom") => {
                        Some(abs_path("an absolute file path ending in .prom")?)
                    }
                    Some(_) => return Err(bad("an absolute file path ending in .prom", text)),
                }
            }
            "log_keep_files" => {
                let n = number(1, "a number of rotated files to keep, at least 1")?;
                c.log_keep_files = u32::try_from(n).map_err(|_| bad("a small number", text))?;
            }
            "s3_download_connections" => {
                let n = number(1, "a number of connections from 1 to 64")?;
                if n > MAX_S3_DOWNLOAD_CONNECTIONS {
                    return Err(bad("a number of connections from 1 to 64", text));
                }
                c.s3_download_connections =
                    usize::try_from(n).map_err(|_| bad("a small number", text))?;
            }
            "s3_download_part_size" => {
                let want = "a size from 1MiB to 256MiB (bytes, or 8MiB)";
                c.s3_download_part_size = opt_string()
                    .and_then(|v| crate::space::parse_size(&v))
                    .filter(|n| S3_DOWNLOAD_PART_SIZE_RANGE.contains(n))
                    .ok_or_else(|| bad(want, text))?;
            }
            "proxy_uri" => c.proxy_uri = proxy()?,
            "command_proxy_uri" => c.command_proxy_uri = proxy()?,
            "s3_proxy_uri" => c.s3_proxy_uri = proxy()?,
            "deploy_control_endpoint" => c.deploy_control_endpoint = url(true)?,
            "s3_endpoint_override" => c.s3_endpoint_override = url(true)?,
            "github_api_endpoint" => {
                c.github_api_endpoint =
                    url(false)?.unwrap_or_else(|| "https://api.github.com".into())
            }
            "ongoing_deployment_tracking" => {
                let v = opt_string().ok_or_else(|| bad("a directory name", text))?;
                if !crate::names::usable_as_dir_name(&v) {
                    return Err(bad("a directory name without '/'", text));
                }
                c.ongoing_deployment_tracking = v;
            }
            "codedeploy_test_profile" => {
                c.codedeploy_test_profile = opt_string().unwrap_or_else(|| "prod".into())
            }
            "user" => c.user = opt_string(),
            "group" => c.group = opt_string(),
            _ => notes.push(format!(
                "{}:{}: unknown setting {key}; ignored",
                file.display(),
                entry.line
            )),
        }
    }
    Ok(Loaded { config: c, notes })
}

const KNOWN_KEYS: &[&str] = &[
    "program_name",
    "log_dir",
    "pid_dir",
    "root_dir",
    "on_premises_config_file",
    "deployment_spec_ca_file",
    "verbose",
    "disable_imds_v1",
    "log_aws_wire",
    "enable_deployments_log",
    "use_fips_mode",
    "enable_auth_policy",
    "reject_unsafe_permissions_in_bundle",
    "ignore_ownership_in_bundle",
    "keep_bundle_archive",
    "install_by_hard_link",
    "wait_between_runs",
    "http_read_timeout",
    "kill_agent_max_wait_time_seconds",
    "wait_after_throttle_error",
    "wait_after_connection_problem",
    "max_revisions",
    "archive_max_extraction_size",
    "free_space_reserve",
    "scripts_log_max_bytes",
    "hook_output_journal_lines",
    "log_max_bytes",
    "log_keep_files",
    "deploy_local_lock_wait_seconds",
    "reboot_command",
    "metrics_textfile",
    "s3_download_connections",
    "s3_download_part_size",
    "proxy_uri",
    "command_proxy_uri",
    "s3_proxy_uri",
    "deploy_control_endpoint",
    "s3_endpoint_override",
    "github_api_endpoint",
    "ongoing_deployment_tracking",
    "codedeploy_test_profile",
    "user",
    "group",
];

impl Config {
    /// The proxy setting of the command-service client.
    pub fn command_proxy(&self) -> crate::proxy::Configured {
        crate::proxy::configured(
            "command_proxy_uri",
            &self.command_proxy_uri,
            &self.proxy_uri,
        )
    }

    /// The proxy setting of the S3 client.
    pub fn s3_proxy(&self) -> crate::proxy::Configured {
        crate::proxy::configured("s3_proxy_uri", &self.s3_proxy_uri, &self.proxy_uri)
    }
}

/// Reads and parses a configuration file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: None,
        message: format!("cannot read the configuration file: {e}"),
    })?;
    parse(path, &text)
}

/// The start-up checks, shared by `run` and `deploy-local`: what would make every deployment
/// fail is refused here, naming the key, the path and the cause. root_dir and log_dir are
/// created when missing and must accept a new file (a read-only file system, a full one or
/// missing permissions show here, not in the first lifecycle event); deployment_spec_ca_file,
/// when set, and the on-premises file, when present, must be readable.
pub fn check_paths(c: &Config) -> Result<(), ConfigError> {
    let file = c
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from("(built-in defaults)"));
    let fail = |key: &str, e: PathCheckError| ConfigError {
        file: file.clone(),
        line: None,
        key: Some(key.into()),
        message: e.to_string(),
    };
    for (key, dir) in [("root_dir", &c.root_dir), ("log_dir", &c.log_dir)] {
        writable_dir(dir).map_err(|m| fail(key, m))?;
    }
    if let Some(ca) = &c.deployment_spec_ca_file {
        readable_file(ca, false).map_err(|m| fail("deployment_spec_ca_file", m))?;
    }
    readable_file(&c.on_premises_config_file, true)
        .map_err(|m| fail("on_premises_config_file", m))?;
    if let Some(dir) = c.metrics_textfile.as_deref().and_then(Path::parent) {
        writable_dir(dir).map_err(|m| fail("metrics_textfile", m))?;
    }
    Ok(())
}

/// Why a path named in the configuration fails the start-up checks.
#[derive(Debug, thiserror::Error)]
pub enum PathCheckError {
    #[error("expected a directory, but {} is a file", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write in {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `dir` exists (created if missing) as a directory in which a file can be created.
fn writable_dir(dir: &Path) -> Result<(), PathCheckError> {
    let path = || dir.to_path_buf();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(PathCheckError::NotADirectory { path: path() }),
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(dir).map_err(|source| PathCheckError::Create {
            path: path(),
            source,
        })?,
    }
    let probe = dir.join(format!(".codedeploy-write-check.{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // Left by a process of the same id that died between the two calls: writable.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(PathCheckError::Write {
            path: path(),
            source,
        }),
    }
}

/// `path` can be opened and read; with `optional`, a missing file is fine.
fn readable_file(path: &Path, optional: bool) -> Result<(), PathCheckError> {
    use std::io::Read;
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut [0u8; 1]));
    match read {
        Ok(_) => Ok(()),
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PathCheckError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Where the configuration comes from when the command line does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file that must exist (given on the command line or in CODEDEPLOY_AGENT_CONFIG).
    File(PathBuf),
    /// No configuration file: built-in defaults, with the state under `dir` when set (a
    /// non-root developer trying deploy-local).
    Defaults { state_dir: Option<PathBuf> },
}

/// Chooses the configuration source. `explicit` is --config-file or CODEDEPLOY_AGENT_CONFIG;
/// without it the default file is used if it exists. A non-root user without any file gets
/// the state under $XDG_STATE_HOME (or ~/.local/state)/codedeploy-agent.
pub fn choose_source(
    explicit: Option<&Path>,
    default_exists: bool,
    is_root: bool,
    xdg_state_home: Option<&Path>,
    home: Option<&Path>,
) -> Source {
    if let Some(p) = explicit {
        return Source::File(p.to_path_buf());
    }
    if default_exists {
        return Source::File(PathBuf::from(DEFAULT_CONFIG_FILE));
    }
    if is_root {
        return Source::Defaults { state_dir: None };
    }
    let base = xdg_state_home
        .filter(|p| p.is_absolute())
        .map(Path::to_path_buf)
        .or_else(|| home.map(|h| h.join(".local/state")));
    Source::Defaults {
        state_dir: base.map(|b| b.join("codedeploy-agent")),
    }
}

/// Built-in defaults, with root and log directories moved under `state_dir` when given.
pub fn defaults_under(state_dir: Option<&Path>) -> Config {
    let mut c = Config::default();
    if let Some(d) = state_dir {
        c.root_dir = d.join("deployment-root");
        c.log_dir = d.join("log");
        c.pid_dir = d.join("state");
    }
    c
}

#[cfg(test)]
mod tests;
