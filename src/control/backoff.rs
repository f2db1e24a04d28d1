//! Error backoff shared by every worker that talks to the service, and the retry loop that
//! delivers PutHostCommandComplete.
//!
//! The wait after a failure depends on its kind (docs/behaviour/process.md#worker names the
//! official waits): a throttled call waits `wait_after_throttle_error` (60 s); a connection
//! problem (no answer at all) waits `wait_after_connection_problem` (5 s) the first time and
//! then follows the curve one step behind (10 s, 13 s, ... 71 s); any other failure follows the official curve
//! (docs/behaviour/protocol.md#poll-loop-backoff). Every wait is then spread uniformly over
//! ±[`JITTER`] of itself by a draw from `crate::random`, so a fleet that failed together does
//! not retry together.
//!
//! Invariant: the failure count is shared (cloning a `Backoff` shares it), capped at 10, and
//! reset by any success; the curve is never above 90 s (times `unit`) before the spread.
//! Retry loops are bounded in time and count.

use super::{CommandClient, CommandStatus, ControlError, Envelope};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The failure count at which the delay stops growing.
pub const MAX_FAILURES: u32 = 10;
/// How far a wait is spread around its value, as a fraction of it.
pub const JITTER: f64 = 0.2;
/// Upper bound of attempts in [`complete_until_accepted`], whatever `max_wait` says.
const MAX_COMPLETE_ATTEMPTS: u32 = 1000;

/// What kind of failure a wait follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service asked us to slow down.
    Throttled,
    /// No answer: refused, reset, timed out, DNS, TLS or proxy failure.
    Connection,
    /// Anything else worth retrying (5xx, credentials, ...).
    Other,
}

impl Failure {
    /// PURE: the kind of `e`.
    pub fn of(e: &ControlError) -> Self {
        match e {
            ControlError::Throttled { .. } => Self::Throttled,
            ControlError::Network { .. } => Self::Connection,
            _ => Self::Other,
        }
    }
}

/// Consecutive-failure counter, its delay curve and the per-kind waits.
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: Arc<AtomicU32>,
    unit: Duration,
    throttle_wait: Duration,
    connection_wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// The official curve in seconds and the official waits (60 s throttled, 5 s connection).
    pub fn new() -> Self {
        Self::with_unit(Duration::from_secs(1))
    }

    /// The same curve with `unit` standing for one second (tests use milliseconds); the
    /// per-kind waits are the official ones, in `unit`s too.
    pub fn with_unit(unit: Duration) -> Self {
        Self {
            failures: Arc::new(AtomicU32::new(0)),
            unit,
            throttle_wait: unit * 60,
            connection_wait: unit * 5,
        }
    }

    /// Sets `wait_after_throttle_error` and `wait_after_connection_problem`. A throttle wait
    /// of zero means "follow the curve" (retrying a throttling service at once only makes
    /// the throttling last).
    pub fn with_waits(mut self, throttle: Duration, connection: Duration) -> Self {
        self.throttle_wait = throttle;
        self.connection_wait = connection;
        self
    }

    pub fn record_failure(&self) {
        let _ = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some((n + 1).min(MAX_FAILURES))
            });
    }

    pub fn record_success(&self) {
        self.failures.store(0, Ordering::SeqCst);
    }

    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::SeqCst)
    }

    /// PURE (given the count): the wait after the current run of failures, the last being
    /// of `kind`, before the spread; zero when nothing failed.
    pub fn base_wait(&self, kind: Failure) -> Duration {
        let n = self.failures();
        if n == 0 {
            return Duration::ZERO;
        }
        let curve = |n: u32| self.unit * base_delay_secs(n) as u32;
        match kind {
            Failure::Throttled if !self.throttle_wait.is_zero() => self.throttle_wait,
            Failure::Throttled | Failure::Other => curve(n),
            Failure::Connection => self.connection_wait.max(curve(n - 1)),
        }
    }

    /// [`Self::base_wait`] spread over ±[`JITTER`] of itself; `u`, a draw on [0, 1), says
    /// where (see `crate::random::spread_with`).
    pub fn delay(&self, kind: Failure, u: f64) -> Duration {
        crate::random::spread_with(self.base_wait(kind), JITTER, u)
    }

    /// The spread wait after `e` (call [`Self::record_failure`] first), drawn from the
    /// agent's one random source.
    pub fn delay_after(&self, e: &ControlError) -> Duration {
        self.delay(Failure::of(e), crate::random::unit())
    }
}

/// floor(1.2675^n × 90 / 1.2675^10) for n = 1..=10 (n above 10 counts as 10; 0 gives 0).
pub fn base_delay_secs(failures: u32) -> u64 {
    if failures == 0 {
        return 0;
    }
    let n = failures.min(MAX_FAILURES) as i32;
    (1.2675f64.powi(n) * 90.0 / 1.2675f64.powi(MAX_FAILURES as i32)).floor() as u64
}

/// Sends PutHostCommandComplete until the service takes it: retryable failures wait out the
/// shared backoff and try again; a non-retryable failure, or running out of `max_wait`,
/// returns the last error. Exactly one request is accepted per call.
pub async fn complete_until_accepted(
    client: &CommandClient,
    host_command_identifier: &str,
    status: CommandStatus,
    diagnostics: Option<&Envelope>,
    backoff: &Backoff,
    max_wait: Duration,
) -> Result<(), ControlError> {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match client
            .put_host_command_complete(host_command_identifier, status.clone(), diagnostics)
            .await
        {
            Ok(()) => {
                backoff.record_success();
                return Ok(());
            }
            Err(e) if e.is_retryable() => {
                backoff.record_failure();
                let wait = backoff.delay_after(&e);
                if attempts >= MAX_COMPLETE_ATTEMPTS || started.elapsed() + wait > max_wait {
                    return Err(e);
                }
                tracing::warn!(
                    "PutHostCommandComplete for {host_command_identifier} not taken ({e}); retrying in {:.1} s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_curve() {
        let got: Vec<u64> = (0..=12).map(base_delay_secs).collect();
        assert_eq!(got, [0, 10, 13, 17, 21, 27, 34, 44, 56, 71, 90, 90, 90]);
    }

    #[test]
    fn shared_counter_and_spread() {
        let a = Backoff::new();
        let b = a.clone();
        assert_eq!(a.delay(Failure::Other, 0.9), Duration::ZERO);
        b.record_failure();
        assert_eq!(a.delay(Failure::Other, 0.5), Duration::from_secs(10));
        assert_eq!(a.delay(Failure::Other, 0.75), Duration::from_secs(11));
        assert_eq!(a.delay(Failure::Other, 0.0), Duration::from_secs(8));
        assert_eq!(a.delay(Failure::Other, f64::NAN), Duration::from_secs(10));
        for _ in 0..20 {
            a.record_failure();
        }
        assert_eq!(b.failures(), MAX_FAILURES);
        // No clamp after the spread: at the top of the curve the band is 72..108 s, so a
        // fleet at its tenth failure does not pile up on 90 s.
        assert_eq!(b.delay(Failure::Other, 0.0), Duration::from_secs(72));
        assert_eq!(b.delay(Failure::Other, 0.75), Duration::from_secs(99));
        a.record_success();
        assert_eq!(b.delay(Failure::Other, 0.75), Duration::ZERO);
    }

    #[test]
    fn waits_by_kind() {
        let b = Backoff::new().with_waits(Duration::from_secs(60), Duration::from_secs(5));
        b.record_failure();
        assert_eq!(b.base_wait(Failure::Throttled), Duration::from_secs(60));
        assert_eq!(b.base_wait(Failure::Connection), Duration::from_secs(5));
        assert_eq!(b.base_wait(Failure::Other), Duration::from_secs(10));
        b.record_failure();
        // A second connection problem in a row follows the curve one step behind.
        assert_eq!(b.base_wait(Failure::Connection), Duration::from_secs(10));
        assert_eq!(b.base_wait(Failure::Throttled), Duration::from_secs(60));
        for _ in 0..10 {
            b.record_failure();
        }
        // One step behind the curve: at most 71 s.
        assert_eq!(b.base_wait(Failure::Connection), Duration::from_secs(71));
        assert_eq!(b.base_wait(Failure::Throttled), Duration::from_secs(60));
        // Spread: 60 s throttled waits land anywhere in 48..72 s.
        assert_eq!(b.delay(Failure::Throttled, 0.0), Duration::from_secs(48));
        assert!(b.delay(Failure::Throttled, 0.999_999) > Duration::from_millis(71_999));
        // A zero throttle wait follows the curve instead of hammering the service.
        let z = Backoff::new().with_waits(Duration::ZERO, Duration::ZERO);
        z.record_failure();
        assert_eq!(z.base_wait(Failure::Throttled), Duration::from_secs(10));
        assert_eq!(z.base_wait(Failure::Connection), Duration::ZERO);
    }

    #[test]
    fn kinds_of_errors() {
        let t = ControlError::from_http("P", 400, "ThrottlingException".into(), "x".into());
        assert_eq!(Failure::of(&t), Failure::Throttled);
        let n = ControlError::Network {
            operation: "P".into(),
            message: "reset".into(),
        };
        assert_eq!(Failure::of(&n), Failure::Connection);
        let s = ControlError::from_http("P", 500, "ServerException".into(), "x".into());
        assert_eq!(Failure::of(&s), Failure::Other);
    }

    #[test]
    fn unit_scales() {
        let a = Backoff::with_unit(Duration::from_millis(1));
        a.record_failure();
        assert_eq!(a.delay(Failure::Other, 0.5), Duration::from_millis(10));
        assert_eq!(a.base_wait(Failure::Throttled), Duration::from_millis(60));
    }
}
