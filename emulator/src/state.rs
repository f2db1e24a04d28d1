//! The emulator's whole in-memory state and its JSON persistence.
//!
//! Invariants: every access key maps to exactly one host; a host may belong to several
//! groups and so run one deployment per group at a time; a command id appears in at most
//! one host queue, and only while the command is `Pending`; `open` holds exactly the ids of
//! commands not yet `Succeeded`/`Failed`; `finished` lists the finished deployments still
//! kept, at most `keep_finished` of them (`retention`). Operations on deployments and commands live in
//! `engine` and `commands`; they all run under one lock held by the server.

use crate::error::EmulatorError;
use crate::model::{Deployment, Event, Health, Host, Revision};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

/// Group-level facts the service remembers between deployments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub group_id: String,
    pub last_successful_revision: Option<Revision>,
    pub last_successful_deployment: Option<String>,
}

/// How an admin registers a host. Registering a known host again with the same keys adds
/// `group` to its groups (an instance whose tags match several groups); with other keys it
/// is re-registered in `group` alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRegistration {
    pub host_id: String,
    pub access_key: String,
    pub secret_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
    #[serde(default = "default_group")]
    pub group: String,
}

fn default_group() -> String {
    "default".into()
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub region: String,
    pub hosts: BTreeMap<String, Host>,
    pub keys: HashMap<String, String>,
    pub groups: BTreeMap<String, GroupRecord>,
    pub deployments: BTreeMap<String, Deployment>,
    pub commands: HashMap<String, crate::model::Command>,
    pub queues: HashMap<String, VecDeque<String>>,
    pub open: BTreeSet<String>,
    pub history: HashMap<String, Vec<Event>>,
    pub seq: u64,
    /// Finished deployments, oldest first; see `retention`.
    #[serde(default)]
    pub finished: VecDeque<String>,
    /// How many finished deployments to keep (`None`: all). Configuration, not state.
    #[serde(skip)]
    pub keep_finished: Option<usize>,
    /// Hosts whose long polls must wake up; drained by the server after each operation.
    #[serde(skip)]
    pub wake: Vec<String>,
    #[serde(skip)]
    pub dirty: bool,
}

impl State {
    pub fn new(region: &str) -> Self {
        State {
            region: region.to_string(),
            ..Default::default()
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn register_host(&mut self, reg: HostRegistration) -> Result<(), EmulatorError> {
        for (field, v) in [
            ("host_id", &reg.host_id),
            ("access_key", &reg.access_key),
            ("secret_key", &reg.secret_key),
            ("group", &reg.group),
        ] {
            if v.trim().is_empty() {
                return Err(EmulatorError::BadRequest(format!(
                    "{field} must not be empty"
                )));
            }
        }
        if let Some(owner) = self.keys.get(&reg.access_key) {
            if *owner != reg.host_id {
                return Err(EmulatorError::BadRequest(format!(
                    "access_key {} already belongs to host {owner}",
                    reg.access_key
                )));
            }
        }
        self.ensure_group(&reg.group);
        if let Some(h) = self.hosts.get_mut(&reg.host_id) {
            if h.access_key == reg.access_key
                && h.secret_key == reg.secret_key
                && h.session_token == reg.session_token
            {
                if !h.in_group(&reg.group) {
                    h.groups.push(reg.group);
                }
                self.dirty = true;
                return Ok(());
            }
            self.keys.remove(&h.access_key);
        }
        self.keys
            .insert(reg.access_key.clone(), reg.host_id.clone());
        let (health, revision) = match self.hosts.get(&reg.host_id) {
            Some(h) => (h.health, h.revision.clone()),
            None => (Health::Unknown, None),
        };
        self.hosts.insert(
            reg.host_id.clone(),
            Host {
                host_id: reg.host_id,
                access_key: reg.access_key,
                secret_key: reg.secret_key,
                session_token: reg.session_token,
                groups: vec![reg.group],
                health,
                revision,
            },
        );
        self.dirty = true;
        Ok(())
    }

    pub fn ensure_group(&mut self, group: &str) -> &mut GroupRecord {
        let n = self.groups.len() + 1;
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| GroupRecord {
                group_id: format!("dg-{n:08}-emu"),
                ..Default::default()
            })
    }

    /// Host ids of a group, in id order.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        self.hosts
            .values()
            .filter(|h| h.in_group(group))
            .map(|h| h.host_id.clone())
            .collect()
    }

    pub fn record(
        &mut self,
        host: &str,
        at_ms: u64,
        deployment: &str,
        command: Option<&str>,
        kind: &str,
        detail: Option<String>,
    ) {
        self.history
            .entry(host.to_string())
            .or_default()
            .push(Event {
                at_ms,
                deployment_id: deployment.to_string(),
                command: command.map(str::to_string),
                kind: kind.to_string(),
                detail,
            });
        self.dirty = true;
    }

    pub fn load(path: &Path) -> Result<State, EmulatorError> {
        let text = std::fs::read(path).map_err(|e| EmulatorError::io(path, e))?;
        serde_json::from_slice(&text).map_err(|source| EmulatorError::StateFile {
            path: path.into(),
            source,
        })
    }

    /// Writes the state as JSON via a temporary file and a rename, so a crash never leaves a
    /// truncated state file behind.
    pub fn save(&self, path: &Path) -> Result<(), EmulatorError> {
        let json = serde_json::to_vec(self).map_err(|source| EmulatorError::StateFile {
            path: path.into(),
            source,
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json).map_err(|e| EmulatorError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| EmulatorError::io(path, e))
    }
}
