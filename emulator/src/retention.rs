//! Bounded history: the emulator forgets the oldest finished deployments.
//!
//! A long soak or a fleet benchmark issues tens of thousands of commands; kept forever they
//! grow the emulator by about 2.5 KiB each. Once more than `keep_finished` deployments have
//! finished (succeeded, failed or stopped), the oldest finished one is removed with its
//! commands and its hosts' history events, as the service ages out old deployments.
//!
//! Invariants: a deployment in progress is never removed; a command still open (not yet
//! `Succeeded`/`Failed`) is never removed; groups, hosts, health and last revisions stay.

use crate::state::State;
use std::collections::HashSet;

/// Finished deployments kept by default: more than any test reads back.
pub const DEFAULT_KEEP_FINISHED: usize = 1000;

impl State {
    /// Notes that `deployment_id` finished and forgets the oldest finished deployments beyond
    /// the limit. Called once per deployment when it leaves `InProgress`.
    pub(crate) fn retire(&mut self, deployment_id: &str) {
        self.finished.push_back(deployment_id.to_string());
        let Some(keep) = self.keep_finished else {
            return;
        };
        while self.finished.len() > keep {
            if let Some(old) = self.finished.pop_front() {
                self.forget_deployment(&old);
            }
        }
    }

    fn forget_deployment(&mut self, deployment_id: &str) {
        let Some(d) = self.deployments.remove(deployment_id) else {
            return;
        };
        let hosts: HashSet<&str> = d
            .phases
            .iter()
            .flat_map(|p| &p.runs)
            .map(|r| r.host_id.as_str())
            .collect();
        let mut commands = HashSet::new();
        for h in hosts {
            if let Some(events) = self.history.get_mut(h) {
                events.retain(|e| {
                    if e.deployment_id != deployment_id {
                        return true;
                    }
                    commands.extend(e.command.clone());
                    false
                });
            }
        }
        for c in commands {
            if !self.open.contains(&c) {
                self.commands.remove(&c);
            }
        }
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{CommandState, DeploymentRequest, DeploymentStatus};
    use crate::state::{HostRegistration, State};

    fn state(keep: Option<usize>) -> State {
        let mut st = State::new("us-east-1");
        st.keep_finished = keep;
        st.register_host(HostRegistration {
            host_id: "h1".into(),
            access_key: "AK1".into(),
            secret_key: "s".into(),
            session_token: None,
            group: "default".into(),
        })
        .unwrap();
        st
    }

    /// Runs one deployment to success through poll, acknowledgement and completion.
    fn deploy_ok(st: &mut State, now: u64) -> String {
        let id = st
            .create_deployment(DeploymentRequest::s3("default", "b", "k", "zip"), now)
            .unwrap();
        while let Some(cmd) = st.poll("h1", now) {
            let c = cmd["HostCommandIdentifier"].as_str().unwrap().to_string();
            st.acknowledge(&c, "h1", None, now).unwrap();
            st.complete(&c, "h1", "Succeeded", None, now).unwrap();
        }
        assert_eq!(st.deployments[&id].status, DeploymentStatus::Succeeded);
        id
    }

    #[test]
    fn only_the_newest_finished_deployments_are_kept() {
        let mut st = state(Some(2));
        let ids: Vec<String> = (0..5).map(|i| deploy_ok(&mut st, i)).collect();
        let kept: Vec<&String> = st.deployments.keys().collect();
        assert_eq!(kept, vec![&ids[3], &ids[4]]);
        assert!(st.commands.values().all(|c| c.deployment_id != ids[0]));
        assert_eq!(
            st.commands.len(),
            2 * 7,
            "seven commands per kept deployment"
        );
        let events = &st.history["h1"];
        assert!(events
            .iter()
            .all(|e| e.deployment_id == ids[3] || e.deployment_id == ids[4]));
        // The host's facts outlive the deployments that set them.
        assert!(st.hosts["h1"].revision.is_some());
        assert_eq!(
            st.groups["default"].last_successful_deployment.as_deref(),
            Some(ids[4].as_str())
        );
    }

    #[test]
    fn running_deployments_and_open_commands_stay() {
        let mut st = state(Some(1));
        let running = st
            .create_deployment(DeploymentRequest::s3("default", "b", "k", "zip"), 0)
            .unwrap();
        let cmd = st.poll("h1", 0).unwrap();
        let open = cmd["HostCommandIdentifier"].as_str().unwrap().to_string();
        st.register_host(HostRegistration {
            host_id: "h1".into(),
            access_key: "AK1".into(),
            secret_key: "s".into(),
            session_token: None,
            group: "other".into(),
        })
        .unwrap();
        for _ in 0..3 {
            let id = st
                .create_deployment(DeploymentRequest::s3("other", "b", "k", "zip"), 1)
                .unwrap();
            st.stop_deployment(&id, 2).unwrap();
        }
        assert!(st.deployments.contains_key(&running));
        assert_eq!(st.commands[&open].state, CommandState::Dispatched);
        assert_eq!(st.finished.len(), 1);
        assert_eq!(
            st.deployments.len(),
            2,
            "the running one and the newest stopped one"
        );
    }

    #[test]
    fn unbounded_when_no_limit() {
        let mut st = state(None);
        for i in 0..3 {
            deploy_ok(&mut st, i);
        }
        assert_eq!(st.deployments.len(), 3);
    }
}
