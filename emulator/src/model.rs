//! Plain data of the emulator: hosts, revisions, deployment requests and records, commands
//! and history events. All of it serialises to JSON (admin API and `--state-file`).

use serde::{Deserialize, Serialize};

/// Where a revision comes from, with every field the deployment spec can carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Revision {
    S3 {
        bucket: String,
        key: String,
        bundle_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
    },
    GitHub {
        account: String,
        repository: String,
        commit_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bundle_type: Option<String>,
    },
}

/// How many hosts may be taken out of service at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeploymentConfig {
    #[default]
    #[serde(alias = "CodeDeployDefault.OneAtATime")]
    OneAtATime,
    #[serde(alias = "CodeDeployDefault.HalfAtATime")]
    HalfAtATime,
    #[serde(alias = "CodeDeployDefault.AllAtOnce")]
    AllAtOnce,
    /// Minimum healthy hosts as an absolute count (`HOST_COUNT`).
    HostCount(u32),
    /// Minimum healthy hosts as a percentage of the fleet, rounded up (`FLEET_PERCENT`).
    FleetPercent(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SpecFormat {
    #[default]
    #[serde(rename = "PKCS7/JSON")]
    Pkcs7Json,
    #[serde(rename = "TEXT/JSON")]
    TextJson,
}

/// Blue/green settings: the replacement hosts receive the revision, then the group's current
/// hosts (the originals) have traffic blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreen {
    pub replacement_hosts: Vec<String>,
}

fn default_app() -> String {
    "app".into()
}
fn default_group() -> String {
    "default".into()
}

/// What an admin asks for when creating a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRequest {
    #[serde(default = "default_app")]
    pub application: String,
    #[serde(default = "default_group")]
    pub group: String,
    pub revision: Revision,
    #[serde(default)]
    pub config: DeploymentConfig,
    #[serde(default)]
    pub auto_rollback: bool,
    #[serde(default)]
    pub load_balancer: bool,
    #[serde(default)]
    pub blue_green: Option<BlueGreen>,
    /// `DISALLOW`, `OVERWRITE` or `RETAIN`; absent means no override in the spec.
    #[serde(default)]
    pub file_exists_behavior: Option<String>,
    #[serde(default)]
    pub app_spec_filename: Option<String>,
    #[serde(default)]
    pub github_access_token: Option<String>,
    #[serde(default)]
    pub spec_format: SpecFormat,
    /// Overrides `AllPossibleLifecycleEvents` (default: the 11 canonical events).
    #[serde(default)]
    pub all_possible_lifecycle_events: Option<Vec<String>>,
}

impl DeploymentRequest {
    /// A request for an S3 revision with defaults for everything else.
    pub fn s3(group: &str, bucket: &str, key: &str, bundle_type: &str) -> Self {
        DeploymentRequest {
            application: default_app(),
            group: group.into(),
            revision: Revision::S3 {
                bucket: bucket.into(),
                key: key.into(),
                bundle_type: bundle_type.into(),
                version: None,
                etag: None,
            },
            config: DeploymentConfig::default(),
            auto_rollback: false,
            load_balancer: false,
            blue_green: None,
            file_exists_behavior: None,
            app_spec_filename: None,
            github_access_token: None,
            spec_format: SpecFormat::default(),
            all_possible_lifecycle_events: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// Never deployed to; counts as healthy, as the service counts it.
    Unknown,
    Healthy,
    Unhealthy,
}

/// A host known to the emulator, with the credentials it signs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub host_id: String,
    pub access_key: String,
    pub secret_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
    /// Deployment groups the host belongs to, in the order it joined them; empty for a
    /// retired blue/green original. State files of older versions carry a single `group`
    /// (a string or null), which still loads.
    #[serde(default, alias = "group", deserialize_with = "groups_compat")]
    pub groups: Vec<String>,
    pub health: Health,
    /// Revision last installed successfully.
    pub revision: Option<Revision>,
}

impl Host {
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Reads `groups` as a list, or the former `group` member as a string or null.
fn groups_compat<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Many(Vec<String>),
        One(Option<String>),
    }
    Ok(match Form::deserialize(d)? {
        Form::Many(v) => v,
        Form::One(g) => g.into_iter().collect(),
    })
}

/// Part a host plays in a deployment; it selects the lifecycle events it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    InPlace,
    Replacement,
    Original,
    /// Blue/green rollback: traffic is allowed back to an original host.
    RollbackOriginal,
    /// Blue/green rollback: traffic is blocked on a replacement host.
    RollbackReplacement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    /// Never started because the deployment ended first.
    Skipped,
}

/// One host's progress through its lifecycle events in one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    pub host_id: String,
    pub role: Role,
    pub events: Vec<String>,
    /// Index into `events` of the command issued last (or to issue next).
    pub next_event: usize,
    pub status: RunStatus,
    /// Whether the host counted as healthy when the deployment began.
    pub healthy_at_start: bool,
    pub current_command: Option<String>,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

/// A group of host runs scheduled together under one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub config: DeploymentConfig,
    /// Every host must succeed (blue/green traffic phases).
    pub require_all: bool,
    pub runs: Vec<HostRun>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Creator {
    #[serde(rename = "user")]
    User,
    #[serde(rename = "codeDeployRollback")]
    CodeDeployRollback,
}

/// A deployment as the emulator tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub deployment_id: String,
    pub application_id: String,
    pub group_id: String,
    pub request: DeploymentRequest,
    pub creator: Creator,
    pub status: DeploymentStatus,
    pub phases: Vec<Phase>,
    pub phase: usize,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    pub status_reason: Option<String>,
    /// The deployment this one rolls back, for rollbacks.
    pub rollback_of: Option<String>,
    /// The automatic rollback created when this one failed.
    pub rolled_back_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandState {
    /// Ready for the host's next poll.
    Pending,
    /// Handed to the host by a poll, not yet acknowledged.
    Dispatched,
    InProgress,
    Succeeded,
    Failed,
}

/// The `{Format, Payload}` envelope of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub payload: Option<String>,
}

/// One host command: a lifecycle event of one host in one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub id: String,
    pub deployment_id: String,
    pub host_id: String,
    pub name: String,
    pub nonce: i64,
    pub execution_id: String,
    pub state: CommandState,
    pub created_ms: u64,
    pub dispatched_ms: Option<u64>,
    pub acked_ms: Option<u64>,
    pub completed_ms: Option<u64>,
    pub noop: Option<bool>,
    pub diagnostics: Option<Envelope>,
    pub failure_reason: Option<String>,
}

/// An entry of a host's history, as the admin API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: u64,
    pub deployment_id: String,
    pub command: Option<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_groups_load_from_old_and_new_forms() {
        let base =
            r#""host_id":"h","access_key":"a","secret_key":"s","health":"Unknown","revision":null"#;
        let groups = |extra: &str| {
            serde_json::from_str::<Host>(&format!("{{{base}{extra}}}"))
                .unwrap()
                .groups
        };
        assert_eq!(groups(r#","group":"web""#), ["web"]);
        assert_eq!(groups(r#","group":null"#), Vec::<String>::new());
        assert_eq!(groups(""), Vec::<String>::new());
        assert_eq!(groups(r#","groups":["a","b"]"#), ["a", "b"]);
        let h: Host = serde_json::from_str(&format!("{{{base},\"groups\":[\"x\"]}}")).unwrap();
        let back = serde_json::to_value(&h).unwrap();
        assert_eq!(back["groups"], serde_json::json!(["x"]));
        assert!(back.get("group").is_none());
    }
}
