//! Deployments over the state: creation, scheduling of hosts phase by phase, completion of
//! host runs, stop, and automatic rollback. The decisions come from `schedule` (pure); this
//! module applies them to the state and issues the host commands.

use crate::error::EmulatorError;
use crate::model::{
    Command, CommandState, Creator, Deployment, DeploymentConfig, DeploymentRequest,
    DeploymentStatus, Health, HostRun, Phase, Revision, Role, RunStatus,
};
use crate::request::{application_id, validate_request};
use crate::schedule::{self, Decision, Slot};
use crate::state::State;

impl State {
    /// Creates a deployment from an admin request and starts its first hosts.
    pub fn create_deployment(
        &mut self,
        req: DeploymentRequest,
        now_ms: u64,
    ) -> Result<String, EmulatorError> {
        validate_request(&req)?;
        let originals = self.group_hosts(&req.group);
        if let Some(active) = self
            .deployments
            .values()
            .find(|d| d.status == DeploymentStatus::InProgress && d.request.group == req.group)
        {
            return Err(EmulatorError::BadRequest(format!(
                "deployment {} is already in progress for group {}",
                active.deployment_id, req.group
            )));
        }
        let phases = match &req.blue_green {
            None => {
                if originals.is_empty() {
                    return Err(EmulatorError::BadRequest(format!(
                        "group {} has no hosts",
                        req.group
                    )));
                }
                vec![self.phase(&originals, Role::InPlace, &req, req.config, false)]
            }
            Some(bg) => {
                if bg.replacement_hosts.is_empty() {
                    return Err(EmulatorError::BadRequest(
                        "blue_green.replacement_hosts is empty".into(),
                    ));
                }
                for h in &bg.replacement_hosts {
                    if !self.hosts.contains_key(h) {
                        return Err(EmulatorError::BadRequest(format!(
                            "replacement host {h} is not registered"
                        )));
                    }
                    if originals.contains(h) {
                        return Err(EmulatorError::BadRequest(format!(
                            "replacement host {h} is already in group {}",
                            req.group
                        )));
                    }
                }
                // The configuration governs the replacement environment; every original must
                // have its traffic blocked for the deployment to succeed.
                let mut phases = vec![self.phase(
                    &bg.replacement_hosts,
                    Role::Replacement,
                    &req,
                    req.config,
                    false,
                )];
                if !originals.is_empty() {
                    phases.push(self.phase(
                        &originals,
                        Role::Original,
                        &req,
                        DeploymentConfig::AllAtOnce,
                        true,
                    ));
                }
                phases
            }
        };
        Ok(self.insert_deployment(req, Creator::User, None, phases, now_ms))
    }

    fn phase(
        &self,
        hosts: &[String],
        role: Role,
        req: &DeploymentRequest,
        config: DeploymentConfig,
        require_all: bool,
    ) -> Phase {
        let view: Vec<(Health, Option<&Revision>)> = hosts
            .iter()
            .map(|h| {
                self.hosts
                    .get(h)
                    .map_or((Health::Unknown, None), |x| (x.health, x.revision.as_ref()))
            })
            .collect();
        let order = if role == Role::InPlace {
            schedule::deploy_order(&view, &req.revision)
        } else {
            (0..hosts.len()).collect()
        };
        let runs = order
            .into_iter()
            .map(|i| HostRun {
                host_id: hosts[i].clone(),
                role,
                events: schedule::lifecycle_events(role, req.load_balancer)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                next_event: 0,
                status: RunStatus::Pending,
                healthy_at_start: view[i].0 != Health::Unhealthy,
                current_command: None,
                started_ms: None,
                finished_ms: None,
            })
            .collect();
        Phase {
            config,
            require_all,
            runs,
        }
    }

    fn insert_deployment(
        &mut self,
        req: DeploymentRequest,
        creator: Creator,
        rollback_of: Option<String>,
        phases: Vec<Phase>,
        now_ms: u64,
    ) -> String {
        let n = self.next_seq();
        let deployment_id = format!("d-EMU{n:06}");
        let group_id = self.ensure_group(&req.group).group_id.clone();
        let d = Deployment {
            deployment_id: deployment_id.clone(),
            application_id: application_id(&req.application),
            group_id,
            request: req,
            creator,
            status: DeploymentStatus::InProgress,
            phases,
            phase: 0,
            created_ms: now_ms,
            finished_ms: None,
            status_reason: None,
            rollback_of,
            rolled_back_by: None,
        };
        self.deployments.insert(deployment_id.clone(), d);
        self.dirty = true;
        self.advance(&deployment_id, now_ms);
        deployment_id
    }

    /// Starts whatever hosts the rules allow, moves through phases, finishes the deployment.
    pub fn advance(&mut self, deployment_id: &str, now_ms: u64) {
        loop {
            let Some(d) = self.deployments.get(deployment_id) else {
                return;
            };
            if d.status != DeploymentStatus::InProgress {
                return;
            }
            let phase = &d.phases[d.phase];
            let slots: Vec<Slot> = phase
                .runs
                .iter()
                .map(|r| Slot {
                    healthy_at_start: r.healthy_at_start,
                    status: r.status,
                })
                .collect();
            let min = schedule::min_healthy(phase.config, slots.len());
            match schedule::decide(&slots, min, phase.require_all) {
                Decision::Wait => return,
                Decision::Start(idx) => {
                    for i in idx {
                        self.start_run(deployment_id, i, now_ms);
                    }
                }
                Decision::Finished { succeeded, reason } => {
                    let Some(d) = self.deployments.get_mut(deployment_id) else {
                        return;
                    };
                    let p = d.phase;
                    for run in d.phases[p]
                        .runs
                        .iter_mut()
                        .filter(|r| r.status == RunStatus::Pending)
                    {
                        run.status = RunStatus::Skipped;
                    }
                    if succeeded && p + 1 < d.phases.len() {
                        d.phase += 1;
                        continue;
                    }
                    self.finish(deployment_id, succeeded, reason, now_ms);
                    return;
                }
            }
        }
    }

    fn start_run(&mut self, deployment_id: &str, run_idx: usize, now_ms: u64) {
        let Some(d) = self.deployments.get_mut(deployment_id) else {
            return;
        };
        let p = d.phase;
        let run = &mut d.phases[p].runs[run_idx];
        run.status = RunStatus::InProgress;
        run.started_ms = Some(now_ms);
        let host = run.host_id.clone();
        self.record(
            &host,
            now_ms,
            deployment_id,
            None,
            "HostStarted",
            Some(format!("phase {p}")),
        );
        self.issue_next(deployment_id, p, run_idx, now_ms);
    }

    /// Issues the run's command at `next_event` and queues it for the host's next poll.
    fn issue_next(&mut self, deployment_id: &str, phase: usize, run_idx: usize, now_ms: u64) {
        let seq = self.next_seq();
        let region = self.region.clone();
        let Some(d) = self.deployments.get_mut(deployment_id) else {
            return;
        };
        let app_id = d.application_id.clone();
        let run = &mut d.phases[phase].runs[run_idx];
        let Some(name) = run.events.get(run.next_event).cloned() else {
            return;
        };
        let id = openssl::base64::encode_block(
            format!("EmulatorHostCommand:{deployment_id}:{seq}").as_bytes(),
        );
        run.current_command = Some(id.clone());
        let host = run.host_id.clone();
        let cmd = Command {
            id: id.clone(),
            deployment_id: deployment_id.to_string(),
            host_id: host.clone(),
            name: name.clone(),
            nonce: seq as i64,
            execution_id: format!("{region}/{app_id}/{deployment_id}/{seq}"),
            state: CommandState::Pending,
            created_ms: now_ms,
            dispatched_ms: None,
            acked_ms: None,
            completed_ms: None,
            noop: None,
            diagnostics: None,
            failure_reason: None,
        };
        self.commands.insert(id.clone(), cmd);
        self.open.insert(id.clone());
        self.queues
            .entry(host.clone())
            .or_default()
            .push_back(id.clone());
        self.record(
            &host,
            now_ms,
            deployment_id,
            Some(&id),
            "CommandReady",
            Some(name),
        );
        self.wake.push(host);
    }

    /// Applies the end of a command to its host run and advances the deployment.
    pub(crate) fn command_finished(&mut self, cmd_id: &str, succeeded: bool, now_ms: u64) {
        let Some(cmd) = self.commands.get(cmd_id) else {
            return;
        };
        let (dep_id, host) = (cmd.deployment_id.clone(), cmd.host_id.clone());
        let Some(d) = self.deployments.get_mut(&dep_id) else {
            return;
        };
        if d.status != DeploymentStatus::InProgress {
            return;
        }
        let Some((p, i)) = d.phases.iter().enumerate().find_map(|(p, ph)| {
            ph.runs
                .iter()
                .position(|r| r.current_command.as_deref() == Some(cmd_id))
                .map(|i| (p, i))
        }) else {
            return;
        };
        let revision = d.request.revision.clone();
        let run = &mut d.phases[p].runs[i];
        run.current_command = None;
        if succeeded && run.next_event + 1 < run.events.len() {
            run.next_event += 1;
            self.issue_next(&dep_id, p, i, now_ms);
            return;
        }
        run.status = if succeeded {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        run.finished_ms = Some(now_ms);
        let installs = matches!(run.role, Role::InPlace | Role::Replacement);
        if let Some(h) = self.hosts.get_mut(&host) {
            if succeeded {
                h.health = Health::Healthy;
                if installs {
                    h.revision = Some(revision);
                }
            } else {
                h.health = Health::Unhealthy;
            }
        }
        let kind = if succeeded {
            "HostSucceeded"
        } else {
            "HostFailed"
        };
        self.record(&host, now_ms, &dep_id, None, kind, None);
        self.advance(&dep_id, now_ms);
    }

    fn finish(
        &mut self,
        deployment_id: &str,
        succeeded: bool,
        reason: Option<String>,
        now_ms: u64,
    ) {
        let Some(d) = self.deployments.get_mut(deployment_id) else {
            return;
        };
        d.status = if succeeded {
            DeploymentStatus::Succeeded
        } else {
            DeploymentStatus::Failed
        };
        d.finished_ms = Some(now_ms);
        d.status_reason = reason;
        let d = d.clone();
        self.retire(deployment_id);
        if succeeded {
            let g = self.ensure_group(&d.request.group);
            g.last_successful_revision = Some(d.request.revision.clone());
            g.last_successful_deployment = Some(d.deployment_id.clone());
            if let (Some(bg), Creator::User) = (&d.request.blue_green, d.creator) {
                // The replacement environment becomes the group; the originals retire.
                for h in d
                    .phases
                    .iter()
                    .flat_map(|p| &p.runs)
                    .filter(|r| r.role == Role::Original)
                {
                    if let Some(host) = self.hosts.get_mut(&h.host_id) {
                        host.groups.retain(|g| *g != d.request.group);
                    }
                }
                for h in &bg.replacement_hosts {
                    if let Some(host) = self.hosts.get_mut(h) {
                        if !host.in_group(&d.request.group) {
                            host.groups.push(d.request.group.clone());
                        }
                    }
                }
            }
            return;
        }
        let last = self
            .groups
            .get(&d.request.group)
            .and_then(|g| g.last_successful_revision.clone());
        let is_rollback = d.creator == Creator::CodeDeployRollback;
        if let Some(rev) =
            schedule::rollback_revision(d.request.auto_rollback, true, is_rollback, last.as_ref())
        {
            let id = self.create_rollback(&d, rev, now_ms);
            if let Some(failed) = self.deployments.get_mut(deployment_id) {
                failed.rolled_back_by = id;
            }
        }
    }

    fn create_rollback(
        &mut self,
        failed: &Deployment,
        revision: Revision,
        now_ms: u64,
    ) -> Option<String> {
        let mut req = failed.request.clone();
        req.revision = revision;
        let phases = match &failed.request.blue_green {
            None => {
                let hosts = self.group_hosts(&req.group);
                if hosts.is_empty() {
                    return None;
                }
                vec![self.phase(&hosts, Role::InPlace, &req, req.config, false)]
            }
            Some(bg) => {
                let originals = self.group_hosts(&req.group);
                let mut phases = Vec::new();
                if !originals.is_empty() {
                    phases.push(self.phase(
                        &originals,
                        Role::RollbackOriginal,
                        &req,
                        DeploymentConfig::AllAtOnce,
                        true,
                    ));
                }
                phases.push(self.phase(
                    &bg.replacement_hosts,
                    Role::RollbackReplacement,
                    &req,
                    DeploymentConfig::AllAtOnce,
                    false,
                ));
                phases
            }
        };
        let id = self.insert_deployment(
            req,
            Creator::CodeDeployRollback,
            Some(failed.deployment_id.clone()),
            phases,
            now_ms,
        );
        Some(id)
    }

    /// Stops a deployment: queued commands are withdrawn, running ones are failed, hosts not
    /// yet started are skipped.
    pub fn stop_deployment(
        &mut self,
        deployment_id: &str,
        now_ms: u64,
    ) -> Result<(), EmulatorError> {
        let d = self
            .deployments
            .get_mut(deployment_id)
            .ok_or_else(|| EmulatorError::NotFound(format!("deployment {deployment_id}")))?;
        if d.status != DeploymentStatus::InProgress {
            return Err(EmulatorError::BadRequest(format!(
                "deployment {deployment_id} is already {:?}",
                d.status
            )));
        }
        d.status = DeploymentStatus::Stopped;
        d.finished_ms = Some(now_ms);
        d.status_reason = Some("stopped by admin".into());
        let mut interrupted = Vec::new();
        for run in d.phases.iter_mut().flat_map(|p| p.runs.iter_mut()) {
            match run.status {
                RunStatus::Pending => run.status = RunStatus::Skipped,
                RunStatus::InProgress => {
                    run.status = RunStatus::Failed;
                    run.finished_ms = Some(now_ms);
                    interrupted
                        .extend(run.current_command.take().map(|c| (run.host_id.clone(), c)));
                }
                _ => {}
            }
        }
        for (host, cmd) in interrupted {
            if let Some(q) = self.queues.get_mut(&host) {
                q.retain(|c| *c != cmd);
            }
            self.fail_command(&cmd, "deployment stopped", now_ms);
            if let Some(h) = self.hosts.get_mut(&host) {
                h.health = Health::Unhealthy;
            }
            self.record(
                &host,
                now_ms,
                deployment_id,
                Some(&cmd),
                "DeploymentStopped",
                None,
            );
        }
        self.retire(deployment_id);
        self.dirty = true;
        Ok(())
    }

    /// Marks a command Failed without going through the host run (the caller handles that).
    pub(crate) fn fail_command(&mut self, cmd_id: &str, reason: &str, now_ms: u64) {
        if let Some(c) = self.commands.get_mut(cmd_id) {
            c.state = CommandState::Failed;
            c.completed_ms = Some(now_ms);
            c.failure_reason = Some(reason.to_string());
        }
        self.open.remove(cmd_id);
    }
}
