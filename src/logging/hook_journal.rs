//! Hook output into the agent's log, within a budget, so a hook that floods never costs the
//! agent its own journal records (issue 12 item 5).
//!
//! journald rate-limits per unit and per priority pool, and `notice` and `info` share a pool:
//! hook lines (info) and the agent's own INFO records (notice) are counted together. So the
//! daemon forwards at most `hook_output_journal_lines` lines of each script, and at most
//! [`WINDOW_LINES`] hook lines of all scripts together in any [`WINDOW`] (a token bucket),
//! which keeps hook output under the unit's `LogRateLimitBurst` with room to spare for the
//! agent. Every line still goes to scripts.log. When a script's lines were left out, one
//! record (target [`super::HOOK_OUTPUT_SUMMARY_TARGET`], priority notice) says how many and
//! where they are, with the same DEPLOYMENT_ID, LIFECYCLE_EVENT and SCRIPT fields as the
//! lines, plus HOOK_LINES_LEFT_OUT and SCRIPTS_LOG.
//!
//! Invariants: per script, lines forwarded + lines left out = lines the script printed; the
//! summary comes after the script's last forwarded line and before its "finished" record.

use super::HOOK_OUTPUT_TARGET;
use crate::hooks::{HookProgress, Stream};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window of the shared budget: journald's default `RateLimitIntervalSec`, and the
/// unit's `LogRateLimitIntervalSec`.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Hook lines of all scripts that may reach the journal in any [`WINDOW`]: 15,000 (a bucket
/// of half that, refilled at that half per window), three quarters of the unit's
/// `LogRateLimitBurst=20000`, leaving at least 5,000 for the agent's own records.
pub const WINDOW_LINES: u64 = 15_000;

/// PURE (time passed in): a token bucket of `capacity` lines refilled at `capacity` per
/// `period`; at most 2 × capacity lines pass in any `period`.
#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    pub fn new(capacity: u64, period: Duration) -> Self {
        Self {
            capacity: capacity as f64,
            per_sec: capacity as f64 / period.as_secs_f64().max(f64::MIN_POSITIVE),
            tokens: capacity as f64,
            last: None,
        }
    }

    /// Takes one line's token at `now`; false when none is left.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + refill).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn shared_bucket() -> &'static Mutex<Bucket> {
    static BUCKET: std::sync::OnceLock<Mutex<Bucket>> = std::sync::OnceLock::new();
    BUCKET.get_or_init(|| Mutex::new(Bucket::new(WINDOW_LINES / 2, WINDOW)))
}

/// One command's hook output on its way to the agent's log. Create it per command, call
/// [`Self::log`] from the executor's observer inside the command's span.
#[derive(Debug)]
pub struct HookJournal {
    per_script: u64,
    scripts_log: String,
    forwarded: u64,
    left_out: u64,
}

impl HookJournal {
    /// `per_script`: `hook_output_journal_lines`; `scripts_log`: the deployment's
    /// scripts.log, named in the summary.
    pub fn new(per_script: u64, scripts_log: &Path) -> Self {
        Self {
            per_script,
            scripts_log: scripts_log.display().to_string(),
            forwarded: 0,
            left_out: 0,
        }
    }

    /// PURE (the shared window's answer passed in as a closure, asked only within the
    /// script's budget): whether the next line goes to the journal; counts it either way.
    pub fn admit(&mut self, window: impl FnOnce() -> bool) -> bool {
        if self.forwarded < self.per_script && window() {
            self.forwarded += 1;
            true
        } else {
            self.left_out += 1;
            false
        }
    }

    /// Lines of the current script left out so far.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }

    /// Logs one hook progress report: script start and end at INFO, output lines under
    /// [`HOOK_OUTPUT_TARGET`] within the budget, the summary before the end; all with the
    /// `script` field.
    pub fn log(&mut self, p: &HookProgress) {
        match p {
            HookProgress::ScriptStarted { location, .. } => {
                self.forwarded = 0;
                self.left_out = 0;
                tracing::info!(script = %location, "Script - {location}");
            }
            HookProgress::Output {
                location,
                stream,
                line,
            } => {
                let window = || {
                    shared_bucket()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take(Instant::now())
                };
                if !self.admit(window) {
                    return;
                }
                let tag = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                let line = line.strip_suffix('\n').unwrap_or(line);
                tracing::info!(target: HOOK_OUTPUT_TARGET, script = %location, "[{tag}]{line}");
            }
            HookProgress::ScriptFinished {
                location,
                duration,
                exit,
                code,
            } => {
                if self.left_out > 0 {
                    tracing::info!(
                        target: super::HOOK_OUTPUT_SUMMARY_TARGET,
                        script = %location,
                        hook_lines_left_out = self.left_out,
                        scripts_log = %self.scripts_log,
                        "{} lines of {location} output were left out of the journal (at most {} per script); all output is in {}",
                        self.left_out,
                        self.per_script,
                        self.scripts_log
                    );
                }
                self.forwarded = 0;
                self.left_out = 0;
                let exit = exit.map_or_else(|| "no exit status".to_string(), |e| e.to_string());
                tracing::info!(
                    script = %location,
                    "Script {location} finished after {:.1} s: {exit} (code {})",
                    duration.as_secs_f64(),
                    code.code()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_gets_its_budget_and_the_rest_is_counted() {
        let mut j = HookJournal::new(3, Path::new("/r/g/d/logs/scripts.log"));
        let passed = (0..10).filter(|_| j.admit(|| true)).count();
        assert_eq!((passed, j.left_out()), (3, 7));
        // A shared window that is spent leaves lines out too, and they are counted.
        let mut k = HookJournal::new(100, Path::new("x"));
        let passed = (0..10).filter(|i| k.admit(|| *i < 4)).count();
        assert_eq!((passed, k.left_out()), (4, 6));
        // Zero forwards nothing.
        let mut z = HookJournal::new(0, Path::new("x"));
        assert!(!z.admit(|| true));
        assert_eq!(z.left_out(), 1);
    }

    #[test]
    fn the_bucket_passes_at_most_twice_its_capacity_per_period() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100, Duration::from_secs(10));
        let burst = (0..500).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 100);
        // A line every 10 ms for the rest of the period: refilled at 10 per second.
        let mut more = 0;
        for i in 1..=1000u64 {
            if b.take(t0 + Duration::from_millis(10 * i)) {
                more += 1;
            }
        }
        assert!((99..=101).contains(&more), "{more}");
        assert!(burst + more <= 2 * 100 + 1);
        // After a quiet period the bucket is full again, no fuller.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..500).filter(|_| b.take(later)).count(), 100);
    }
}
