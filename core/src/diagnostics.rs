//! PURE: how a command's outcome is told to the service
//! (docs/behaviour/protocol.md#diagnostics-payload) and the script-log tail kept for it
//! (docs/behaviour/hooks.md#log-tail).
//!
//! Invariant: the payload keys are always `error_code`, `script_name`, `message`, `log`, in
//! that order, as compact JSON; the payload never exceeds the API's 8192-character limit.

use serde::{Deserialize, Serialize};

/// The error codes the service understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum ErrorCode {
    Succeeded = 0,
    ScriptMissing = 1,
    ScriptNotExecutable = 2,
    ScriptTimedOut = 3,
    ScriptFailed = 4,
    UnknownError = 5,
    OutputsLeftOpen = 6,
    FailedAfterRestart = 7,
}

impl ErrorCode {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::ScriptMissing => "ScriptMissing",
            Self::ScriptNotExecutable => "ScriptNotExecutable",
            Self::ScriptTimedOut => "ScriptTimedOut",
            Self::ScriptFailed => "ScriptFailed",
            Self::UnknownError => "UnknownError",
            Self::OutputsLeftOpen => "OutputsLeftOpen",
            Self::FailedAfterRestart => "FailedAfterRestart",
        }
    }
}

/// The API limit on a diagnostics envelope's payload, in characters.
pub const MAX_PAYLOAD_CHARS: usize = 8192;

/// The body of a PutHostCommandComplete diagnostics envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub code: ErrorCode,
    pub script_name: String,
    pub message: String,
    pub log: String,
}

#[derive(Serialize)]
struct Wire<'a> {
    error_code: u8,
    script_name: &'a str,
    message: &'a str,
    log: &'a str,
}

#[derive(Deserialize)]
struct OwnedWire {
    error_code: u8,
    script_name: String,
    message: String,
    log: String,
}

impl Diagnostics {
    /// Reads back a payload [`Diagnostics::to_payload`] wrote (a result kept across a
    /// restart); `None` for anything else.
    pub fn from_payload(payload: &str) -> Option<Self> {
        let w: OwnedWire = serde_json::from_str(payload).ok()?;
        let code = [
            ErrorCode::Succeeded,
            ErrorCode::ScriptMissing,
            ErrorCode::ScriptNotExecutable,
            ErrorCode::ScriptTimedOut,
            ErrorCode::ScriptFailed,
            ErrorCode::UnknownError,
            ErrorCode::OutputsLeftOpen,
            ErrorCode::FailedAfterRestart,
        ]
        .into_iter()
        .find(|c| c.code() == w.error_code)?;
        Some(Self {
            code,
            script_name: w.script_name,
            message: w.message,
            log: w.log,
        })
    }

    pub fn success() -> Self {
        Self {
            code: ErrorCode::Succeeded,
            script_name: String::new(),
            message: "Succeeded: ".into(),
            log: String::new(),
        }
    }
    pub fn noop_after_failed_ack() -> Self {
        Self {
            message: "Succeeded: CompletedNoopCommand".into(),
            ..Self::success()
        }
    }
    pub fn failed_after_restart() -> Self {
        Self {
            code: ErrorCode::FailedAfterRestart,
            script_name: String::new(),
            message: "Failed: Failing in-progress lifecycle event after an agent restart.".into(),
            log: String::new(),
        }
    }
    /// Any failure that is not a script's own (agent-side, appspec, download ...): code 5.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::UnknownError,
            script_name: String::new(),
            message: message.into(),
            log: String::new(),
        }
    }

    /// Compact JSON in the official key order. When the whole would pass the API limit the
    /// log is cut from its start (the end of a log is what explains a failure), then the
    /// message, so the service never refuses the report.
    pub fn to_payload(&self) -> String {
        let render = |message: &str, log: &str| {
            serde_json::to_string(&Wire {
                error_code: self.code.code(),
                script_name: &self.script_name,
                message,
                log,
            })
            .unwrap_or_else(|_| String::from("{}"))
        };
        let full = render(&self.message, &self.log);
        if full.chars().count() <= MAX_PAYLOAD_CHARS {
            return full;
        }
        let mut log: &str = &self.log;
        let mut message: &str = &self.message;
        loop {
            let out = render(message, log);
            let over = out.chars().count().saturating_sub(MAX_PAYLOAD_CHARS);
            if over == 0 {
                return out;
            }
            if !log.is_empty() {
                log = skip_chars(log, over.max(1));
            } else if !message.is_empty() {
                message =
                    truncate_chars(message, message.chars().count().saturating_sub(over.max(1)));
            } else {
                return out;
            }
        }
    }
}

fn skip_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[i..],
        None => "",
    }
}

fn truncate_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The tail of a hook's script log kept for diagnostics: the newest entries whose total
/// length stays under 2 KiB. (The official agent's loop has an off-by-one that charges the
/// candidate twice, docs/behaviour/official-quirks.md#quirk-11; we keep the simpler rule of
/// docs/behaviour/hooks.md#log-tail.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    entries: std::collections::VecDeque<String>,
    total: usize,
}

pub const LOG_TAIL_BUDGET: usize = 2048;

impl LogTail {
    pub fn push(&mut self, entry: impl Into<String>) {
        let entry = entry.into();
        self.total += entry.chars().count();
        self.entries.push_back(entry);
        while self.total >= LOG_TAIL_BUDGET {
            match self.entries.pop_front() {
                Some(old) => self.total -= old.chars().count(),
                None => break,
            }
        }
    }
    /// The retained entries concatenated without separators, as the service expects.
    pub fn text(&self) -> String {
        self.entries.iter().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_payload_is_byte_exact() {
        assert_eq!(
            Diagnostics::success().to_payload(),
            r#"{"error_code":0,"script_name":"","message":"Succeeded: ","log":""}"#
        );
        assert_eq!(
            Diagnostics::failed_after_restart().to_payload(),
            r#"{"error_code":7,"script_name":"","message":"Failed: Failing in-progress lifecycle event after an agent restart.","log":""}"#
        );
    }

    #[test]
    fn payload_round_trip() {
        let d = Diagnostics {
            code: ErrorCode::ScriptFailed,
            script_name: "s.sh".into(),
            message: "failed with exit code 1".into(),
            log: "[stdout]a \"quoted\" line\n".into(),
        };
        assert_eq!(Diagnostics::from_payload(&d.to_payload()), Some(d));
        assert_eq!(Diagnostics::from_payload("{}"), None);
        assert_eq!(
            Diagnostics::from_payload(r#"{"error_code":9,"script_name":"","message":"","log":""}"#),
            None
        );
    }

    #[test]
    fn oversized_log_is_cut_from_the_front() {
        let d = Diagnostics {
            code: ErrorCode::ScriptFailed,
            script_name: "s.sh".into(),
            message: "failed".into(),
            log: format!("{}END", "x".repeat(10_000)),
        };
        let p = d.to_payload();
        assert!(p.chars().count() <= MAX_PAYLOAD_CHARS);
        assert!(p.ends_with(r#"END"}"#), "{}", &p[p.len() - 20..]);
    }

    #[test]
    fn tail_keeps_newest_entries_under_budget() {
        let mut t = LogTail::default();
        for i in 0..30 {
            t.push(format!("{:0>99}\n", i));
        }
        let text = t.text();
        assert!(text.chars().count() < LOG_TAIL_BUDGET);
        assert!(text.ends_with(&format!("{:0>99}\n", 29)));
        assert_eq!(text.lines().count(), 20);
        let mut big = LogTail::default();
        big.push("y".repeat(3000));
        assert_eq!(big.text(), "");
    }
}
