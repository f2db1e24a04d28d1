//! The host-command operations over the state: poll, deployment spec lookup, acknowledge,
//! complete, update, and command time-outs.
//!
//! A host's ready commands wait in one queue in the order they were issued, whichever of the
//! host's deployments (one per group) issued them, and each poll hands out the oldest. A
//! command is handed out by exactly one poll and never redelivered on its own (an agent
//! re-polls as soon as it has queued a command, so redelivery would run it twice); only the
//! `Redeliver` fault hands one out again. A host that never finishes a command is failed by
//! the time-out instead.

use crate::error::ApiError;
use crate::model::{Command, CommandState, Deployment, Envelope};
use crate::state::State;
use serde_json::{json, Value};

/// The `HostCommand` member of a poll answer.
fn host_command(cmd: &Command) -> Value {
    json!({
        "HostCommandIdentifier": cmd.id,
        "HostIdentifier": cmd.host_id,
        "DeploymentExecutionId": cmd.execution_id,
        "CommandName": cmd.name,
        "Nonce": cmd.nonce,
    })
}

impl State {
    /// Takes the host's next ready command, as the `HostCommand` member of a poll answer.
    pub fn poll(&mut self, host_id: &str, now_ms: u64) -> Option<Value> {
        let id = self.queues.get_mut(host_id)?.pop_front()?;
        let cmd = self.commands.get_mut(&id)?;
        cmd.state = CommandState::Dispatched;
        cmd.dispatched_ms = Some(now_ms);
        let out = host_command(cmd);
        let dep = cmd.deployment_id.clone();
        let name = cmd.name.clone();
        self.record(host_id, now_ms, &dep, Some(&id), "Dispatched", Some(name));
        Some(out)
    }

    /// The command most recently handed to the host that it has not completed yet
    /// (`Dispatched` or `InProgress`), if any.
    pub fn redeliverable(&self, host_id: &str) -> Option<String> {
        self.open
            .iter()
            .filter_map(|id| self.commands.get(id))
            .filter(|c| {
                c.host_id == host_id
                    && matches!(c.state, CommandState::Dispatched | CommandState::InProgress)
            })
            // Issue order (the nonce) breaks ties within one millisecond; a host's queue is
            // first in, first out, so it is also the dispatch order.
            .max_by_key(|c| (c.dispatched_ms, c.nonce))
            .map(|c| c.id.clone())
    }

    /// Hands an unfinished command to its host again, unchanged, as the service may while
    /// the agent still runs it. Its state and times stay as they are.
    pub fn redeliver(&mut self, cmd_id: &str, now_ms: u64) -> Option<Value> {
        let cmd = self.commands.get(cmd_id)?;
        if !matches!(
            cmd.state,
            CommandState::Dispatched | CommandState::InProgress
        ) {
            return None;
        }
        let out = host_command(cmd);
        let (host, dep, name) = (
            cmd.host_id.clone(),
            cmd.deployment_id.clone(),
            cmd.name.clone(),
        );
        self.record(&host, now_ms, &dep, Some(cmd_id), "Redelivered", Some(name));
        Some(out)
    }

    /// The deployment an execution id refers to, if the host takes part in it.
    pub fn deployment_for(
        &self,
        execution_id: &str,
        host_id: &str,
    ) -> Result<&Deployment, ApiError> {
        let parts: Vec<&str> = execution_id.splitn(4, '/').collect();
        if parts.len() != 4 || parts.iter().any(|p| p.is_empty()) {
            return Err(ApiError::client(format!(
                "Invalid DeploymentExecutionId: {execution_id}"
            )));
        }
        let d = self.deployments.get(parts[2]).ok_or_else(|| {
            ApiError::client(format!(
                "No deployment found for execution id {execution_id}"
            ))
        })?;
        if !d
            .phases
            .iter()
            .flat_map(|p| &p.runs)
            .any(|r| r.host_id == host_id)
        {
            return Err(ApiError::client(format!(
                "Host {host_id} is not part of deployment {}",
                d.deployment_id
            )));
        }
        Ok(d)
    }

    fn owned_command(&self, cmd_id: &str, caller: &str) -> Result<(), ApiError> {
        match self.commands.get(cmd_id) {
            None => Err(ApiError::client(format!(
                "Unknown HostCommandIdentifier: {cmd_id}"
            ))),
            Some(c) if c.host_id != caller => Err(ApiError::client(format!(
                "Host command {cmd_id} does not belong to the calling host"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Acknowledges a command; answers the status the host should act on.
    pub fn acknowledge(
        &mut self,
        cmd_id: &str,
        caller: &str,
        diag: Option<Envelope>,
        now_ms: u64,
    ) -> Result<&'static str, ApiError> {
        self.owned_command(cmd_id, caller)?;
        let noop = diag
            .as_ref()
            .and_then(|e| e.payload.as_deref())
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|v| v.get("IsCommandNoop").and_then(Value::as_bool));
        let Some(c) = self.commands.get_mut(cmd_id) else {
            return Err(ApiError::client("vanished command"));
        };
        let status = match c.state {
            CommandState::Pending | CommandState::Dispatched | CommandState::InProgress => {
                c.state = CommandState::InProgress;
                c.acked_ms.get_or_insert(now_ms);
                c.noop = noop.or(c.noop);
                "InProgress"
            }
            CommandState::Succeeded => "Succeeded",
            CommandState::Failed => "Failed",
        };
        let dep = c.deployment_id.clone();
        let detail = format!(
            "answered {status}; IsCommandNoop={}",
            noop.map_or("absent".into(), |b| b.to_string())
        );
        self.record(
            caller,
            now_ms,
            &dep,
            Some(cmd_id),
            "Acknowledged",
            Some(detail),
        );
        Ok(status)
    }

    /// Records a command's outcome. Repeated completions (the agent sends two `Failed` for one
    /// script failure) are recorded but change nothing.
    pub fn complete(
        &mut self,
        cmd_id: &str,
        caller: &str,
        status: &str,
        diag: Option<Envelope>,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.owned_command(cmd_id, caller)?;
        let succeeded = match status {
            "Succeeded" => true,
            "Failed" => false,
            other => {
                return Err(ApiError::client(format!(
                    "Invalid CommandStatus for completion: {other}"
                )))
            }
        };
        let Some(c) = self.commands.get_mut(cmd_id) else {
            return Err(ApiError::client("vanished command"));
        };
        let dep = c.deployment_id.clone();
        let detail = diag.as_ref().and_then(|d| d.payload.clone());
        if matches!(c.state, CommandState::Succeeded | CommandState::Failed) {
            self.record(
                caller,
                now_ms,
                &dep,
                Some(cmd_id),
                &format!("DuplicateComplete{status}"),
                detail,
            );
            return Ok(());
        }
        c.state = if succeeded {
            CommandState::Succeeded
        } else {
            CommandState::Failed
        };
        c.completed_ms = Some(now_ms);
        c.diagnostics = diag;
        self.open.remove(cmd_id);
        self.record(
            caller,
            now_ms,
            &dep,
            Some(cmd_id),
            &format!("Completed{status}"),
            detail,
        );
        self.command_finished(cmd_id, succeeded, now_ms);
        Ok(())
    }

    /// `PostHostCommandUpdate`: recorded, answers the command's status.
    pub fn update(
        &mut self,
        cmd_id: &str,
        caller: &str,
        diag: Option<Envelope>,
        now_ms: u64,
    ) -> Result<&'static str, ApiError> {
        self.owned_command(cmd_id, caller)?;
        let Some(c) = self.commands.get(cmd_id) else {
            return Err(ApiError::client("vanished command"));
        };
        let status = match c.state {
            CommandState::Pending => "Pending",
            CommandState::Dispatched | CommandState::InProgress => "InProgress",
            CommandState::Succeeded => "Succeeded",
            CommandState::Failed => "Failed",
        };
        let dep = c.deployment_id.clone();
        self.record(
            caller,
            now_ms,
            &dep,
            Some(cmd_id),
            "Update",
            diag.and_then(|d| d.payload),
        );
        Ok(status)
    }

    /// Fails every open command older than `timeout_ms` (counted from when it became ready).
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|id| {
                self.commands
                    .get(*id)
                    .is_some_and(|c| c.created_ms + timeout_ms <= now_ms)
            })
            .cloned()
            .collect();
        for id in expired {
            let Some(c) = self.commands.get(&id) else {
                continue;
            };
            let (host, dep) = (c.host_id.clone(), c.deployment_id.clone());
            if let Some(q) = self.queues.get_mut(&host) {
                q.retain(|x| *x != id);
            }
            self.fail_command(&id, "command timed out", now_ms);
            self.record(&host, now_ms, &dep, Some(&id), "TimedOut", None);
            self.command_finished(&id, false, now_ms);
        }
    }
}
