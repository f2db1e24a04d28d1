//! Reboot and resume (docs/reboot.md): the record of a deployment paused for a reboot that
//! a hook asked for, its text form, the `reboot_command` rule, and what to do with a record
//! found after the agent starts again.
//!
//! Invariants: a record names exactly one command (or local event) of one deployment group
//! and the index of the next script of that event to run; [`decide`] is the only place that
//! turns a found record into "resume at script k", "finish the event" or "drop it"; nothing
//! here reads the disk, the clock or the service (the facts come in as arguments).

use serde::{Deserialize, Serialize};

/// The record's format version; a record of another version is dropped, not guessed at.
pub const RECORD_VERSION: u32 = 1;

/// A record older than this is dropped: the service has long timed the command out, and a
/// local deployment a day old is not what its operator expects to continue.
pub const STALE_AFTER_SECS: u64 = 24 * 3600;

/// Where a deployment stands when a hook asked for a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootRecord {
    pub version: u32,
    pub deployment_id: String,
    pub group_id: String,
    /// The command (lifecycle event) whose script asked for the reboot.
    pub event: String,
    /// Index (from 0) of the event's next script; equal to the script count when the last
    /// script asked, which means "finish the event".
    pub next_script: usize,
    /// The appspec location of the script that asked.
    pub requested_by: String,
    /// Seconds since the epoch when the record was written.
    pub requested_at: u64,
    /// What the group's most-recent-install pointer named when the reboot was asked for
    /// (a deployment directory); another value at resume means another deployment took
    /// the group in between.
    pub most_recent_install: Option<String>,
    /// The deployment specification as the service's JSON (`deployspec::encode`).
    pub spec: String,
    /// Set for the daemon: the service's command to complete after the resume.
    pub service: Option<ServiceCommand>,
    /// Set for `deploy-local`: the rest of the run.
    pub local: Option<LocalRun>,
}

/// The host command a daemon's record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCommand {
    pub host_command_identifier: String,
    pub host_identifier: String,
    pub deployment_execution_id: String,
}

/// What a paused `deploy-local` run still has to do after the current event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRun {
    /// The events after the paused one, in order.
    pub events_after: Vec<String>,
    pub rollback_on_failure: bool,
    /// The group's last successful revision before this run (for `--rollback-on-failure`).
    pub previous_revision: Option<String>,
}

/// Why a record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a reboot record: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("reboot record version {found} is not {RECORD_VERSION}")]
    Version { found: u32 },
}

/// PURE: the record's text (one JSON document and a newline).
pub fn render(record: &RebootRecord) -> String {
    let mut s = serde_json::to_string_pretty(record).unwrap_or_default();
    s.push('\n');
    s
}

/// PURE: reads a record's text.
pub fn parse(text: &str) -> Result<RebootRecord, RecordError> {
    let r: RebootRecord = serde_json::from_str(text)?;
    if r.version != RECORD_VERSION {
        return Err(RecordError::Version { found: r.version });
    }
    Ok(r)
}

/// How the service sees the command of a daemon's record at resume time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceView {
    /// Still in progress: it waits for this host.
    InProgress,
    /// Already ended (timed out, the deployment stopped, or completed): the status it gave.
    Ended(String),
    /// The service could not be asked (no answer within the start-up's attempts).
    Unknown,
}

/// What is known about the world when a record is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Seconds since the epoch.
    pub now: u64,
    /// The group's most-recent-install pointer now.
    pub most_recent_install: Option<&'a str>,
    /// The service's view of the command (daemon records only; `None` for local ones).
    pub service: Option<ServiceView>,
    /// How many scripts the event has in the appspec the resume would use; `None` when it
    /// cannot be read (the resumed run then reports why, as any run would).
    pub scripts_in_event: Option<usize>,
}

/// What to do with a found record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Run the event's scripts from this index (from 0), then complete it.
    RunFrom(usize),
    /// The script that asked was the event's last: complete the event as succeeded.
    FinishEvent,
    /// Remove the record and run nothing.
    Drop(DropReason),
}

/// Why a record is dropped; its text is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    #[error("the record is {age_secs} s old (more than {STALE_AFTER_SECS} s): stale")]
    Stale { age_secs: u64 },
    #[error("the service reports the command {0} (timed out, stopped or superseded there)")]
    Ended(String),
    #[error("another deployment took the group since the reboot was asked for (most recent install is now {now:?}, was {was:?})")]
    Superseded {
        was: Option<String>,
        now: Option<String>,
    },
}

/// PURE: what to do with `record` given `facts`. The order matters: an ended command or a
/// superseded group is never resumed, whatever the script count says.
pub fn decide(record: &RebootRecord, facts: &Facts<'_>) -> Resume {
    let age = facts.now.saturating_sub(record.requested_at);
    if age > STALE_AFTER_SECS {
        return Resume::Drop(DropReason::Stale { age_secs: age });
    }
    if let Some(ServiceView::Ended(status)) = &facts.service {
        return Resume::Drop(DropReason::Ended(status.clone()));
    }
    if record.most_recent_install.as_deref() != facts.most_recent_install {
        return Resume::Drop(DropReason::Superseded {
            was: record.most_recent_install.clone(),
            now: facts.most_recent_install.map(str::to_string),
        });
    }
    match facts.scripts_in_event {
        Some(n) if record.next_script >= n => Resume::FinishEvent,
        _ => Resume::RunFrom(record.next_script),
    }
}

/// `reboot_command`'s default.
pub const DEFAULT_REBOOT_COMMAND: &str = "systemctl reboot";

/// PURE: splits `reboot_command` into a program and its arguments (words separated by
/// spaces; no shell, so no quoting). The program is a bare name (found on PATH) or an
/// absolute path; quotes and shell operators are refused, since nothing would interpret
/// them (a script is the way to say more).
pub fn parse_reboot_command(text: &str) -> Result<Vec<String>, &'static str> {
    let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let Some(program) = words.first() else {
        return Err("a command, for example `systemctl reboot`");
    };
    if program.contains('/') && !program.starts_with('/') {
        return Err("a program name or an absolute path (no relative path)");
    }
    if text.chars().any(|c| {
        matches!(
            c,
            '"' | '\'' | '`' | '$' | ';' | '|' | '&' | '<' | '>' | '\\'
        )
    }) {
        return Err("a program and plain words (no quotes or shell operators: it is not run by a shell; put more into a script)");
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(next: usize) -> RebootRecord {
        RebootRecord {
            version: RECORD_VERSION,
            deployment_id: "d-1".into(),
            group_id: "g".into(),
            event: "AfterInstall".into(),
            next_script: next,
            requested_by: "kernel.sh".into(),
            requested_at: 1000,
            most_recent_install: Some("/r/g/d-1".into()),
            spec: "{}".into(),
            service: Some(ServiceCommand {
                host_command_identifier: "hc".into(),
                host_identifier: "h".into(),
                deployment_execution_id: "a/b/c/d".into(),
            }),
            local: None,
        }
    }

    fn facts(service: Option<ServiceView>, scripts: Option<usize>) -> Facts<'static> {
        Facts {
            now: 1100,
            most_recent_install: Some("/r/g/d-1"),
            service,
            scripts_in_event: scripts,
        }
    }

    #[test]
    fn resumes_at_the_next_script_or_finishes_the_event() {
        let f = facts(Some(ServiceView::InProgress), Some(3));
        assert_eq!(decide(&record(1), &f), Resume::RunFrom(1));
        assert_eq!(decide(&record(3), &f), Resume::FinishEvent);
        // An appspec that cannot be read: the run from k reports why.
        let f = facts(Some(ServiceView::InProgress), None);
        assert_eq!(decide(&record(3), &f), Resume::RunFrom(3));
        // The service could not be asked: resume (the completion tells).
        let f = facts(Some(ServiceView::Unknown), Some(2));
        assert_eq!(decide(&record(1), &f), Resume::RunFrom(1));
        // Local records have no service view.
        assert_eq!(
            decide(&record(0), &facts(None, Some(1))),
            Resume::RunFrom(0)
        );
    }

    #[test]
    fn drops_ended_superseded_and_stale_records() {
        let r = record(1);
        let ended = facts(Some(ServiceView::Ended("Failed".into())), Some(3));
        assert_eq!(
            decide(&r, &ended),
            Resume::Drop(DropReason::Ended("Failed".into()))
        );
        let mut other = facts(Some(ServiceView::InProgress), Some(3));
        other.most_recent_install = Some("/r/g/d-2");
        assert!(matches!(
            decide(&r, &other),
            Resume::Drop(DropReason::Superseded { .. })
        ));
        let mut old = facts(Some(ServiceView::InProgress), Some(3));
        old.now = r.requested_at + STALE_AFTER_SECS + 1;
        assert!(matches!(
            decide(&r, &old),
            Resume::Drop(DropReason::Stale { .. })
        ));
        // Even a finished event is not completed for a stopped deployment.
        assert!(matches!(decide(&record(3), &ended), Resume::Drop(_)));
        // ApplicationStop runs before the new revision is downloaded: no pointer yet.
        let mut first = record(0);
        first.most_recent_install = None;
        let mut none = facts(Some(ServiceView::InProgress), Some(1));
        none.most_recent_install = None;
        assert_eq!(decide(&first, &none), Resume::RunFrom(0));
    }

    #[test]
    fn records_round_trip_and_foreign_versions_are_refused() {
        let r = record(2);
        assert_eq!(parse(&render(&r)).unwrap(), r);
        let mut v2 = r.clone();
        v2.version = 2;
        assert!(matches!(
            parse(&render(&v2)),
            Err(RecordError::Version { found: 2 })
        ));
        assert!(parse("{\"version\":1").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn reboot_command_rule() {
        assert_eq!(
            parse_reboot_command(DEFAULT_REBOOT_COMMAND).unwrap(),
            ["systemctl", "reboot"]
        );
        assert_eq!(
            parse_reboot_command(" /sbin/shutdown  -r now ").unwrap(),
            ["/sbin/shutdown", "-r", "now"]
        );
        assert!(parse_reboot_command("").is_err());
        assert!(parse_reboot_command("   ").is_err());
        assert!(parse_reboot_command("./reboot.sh").is_err());
        assert!(parse_reboot_command("sh -c 'reboot'").is_err());
        assert!(parse_reboot_command("reboot; echo").is_err());
    }
}
