//! Error backoff shared by every worker that talks to the service, and the retry loop that
//! delivers PutHostCommandComplete.
//!
//! Invariant: the failure count is shared (cloning a `Backoff` shares it), capped at 10, and
//! reset by any success; a delay is never above 90 s (times `unit`). Retry loops are bounded
//! in time and count.

use super::{CommandClient, CommandStatus, ControlError, Envelope};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The failure count at which the delay stops growing.
pub const MAX_FAILURES: u32 = 10;
/// How far a delay may stray from the curve, as a fraction of it.
pub const JITTER: f64 = 0.2;
/// Upper bound of attempts in [`complete_until_accepted`], whatever `max_wait` says.
const MAX_COMPLETE_ATTEMPTS: u32 = 1000;

/// Consecutive-failure counter and its delay curve.
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: Arc<AtomicU32>,
    unit: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// The official curve in seconds.
    pub fn new() -> Self {
        Self::with_unit(Duration::from_secs(1))
    }

    /// The same curve with `unit` standing for one second (tests use milliseconds).
    pub fn with_unit(unit: Duration) -> Self {
        Self {
            failures: Arc::new(AtomicU32::new(0)),
            unit,
        }
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

    /// The wait after the current run of failures: the curve value moved by
    /// `jitter_fraction` (clamped to ±[`JITTER`]) of itself, never above 90 units; zero when
    /// nothing failed.
    pub fn delay(&self, jitter_fraction: f64) -> Duration {
        let base = base_delay_secs(self.failures());
        if base == 0 {
            return Duration::ZERO;
        }
        let j = if jitter_fraction.is_finite() {
            jitter_fraction.clamp(-JITTER, JITTER)
        } else {
            0.0
        };
        let secs = (base as f64 * (1.0 + j)).min(90.0);
        self.unit.mul_f64(secs)
    }

    /// [`Self::delay`] with a random jitter.
    pub fn delay_with_random_jitter(&self) -> Duration {
        self.delay(random_jitter())
    }
}

/// A uniformly drawn jitter fraction in [-JITTER, JITTER].
pub fn random_jitter() -> f64 {
    (fastrand::f64() * 2.0 - 1.0) * JITTER
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
                let wait = backoff.delay_with_random_jitter();
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
    fn shared_counter_and_jitter() {
        let a = Backoff::new();
        let b = a.clone();
        assert_eq!(a.delay(0.1), Duration::ZERO);
        b.record_failure();
        assert_eq!(a.delay(0.0), Duration::from_secs(10));
        assert_eq!(a.delay(0.1), Duration::from_secs(11));
        assert_eq!(a.delay(-5.0), Duration::from_secs(8));
        assert_eq!(a.delay(f64::NAN), Duration::from_secs(10));
        for _ in 0..20 {
            a.record_failure();
        }
        assert_eq!(b.failures(), MAX_FAILURES);
        assert_eq!(b.delay(0.2), Duration::from_secs(90));
        assert_eq!(b.delay(-0.2), Duration::from_secs(72));
        a.record_success();
        assert_eq!(b.delay(0.2), Duration::ZERO);
        for _ in 0..100 {
            let j = random_jitter();
            assert!((-JITTER..=JITTER).contains(&j));
        }
    }

    #[test]
    fn unit_scales() {
        let a = Backoff::with_unit(Duration::from_millis(1));
        a.record_failure();
        assert_eq!(a.delay(0.0), Duration::from_millis(10));
    }
}
