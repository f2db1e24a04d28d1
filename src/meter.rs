//! Progress of a long download or install as it runs: a [`Meter`] counts bytes and files
//! (atomics, shared by the copying threads) and, when the pure rule `crate::progress::due`
//! says so, hands a snapshot to its sinks: the log (tracing at info), the daemon's status file
//! (and so systemd's STATUS= line), deploy-local's terminal bar or plain lines.
//!
//! Invariants: counting never blocks on a sink (a sink runs on the counting thread, but only
//! when a report is due, every few seconds); a job that never became large reports nothing,
//! not even its end; sinks see snapshots, never the meter.

use crate::progress::{self, Rule, Snapshot};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What is being measured, for the people reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub deployment_id: String,
    pub event: String,
    /// `downloading s3://bucket/key`, `installing`.
    pub what: String,
}

/// Receives due reports; `finished` is the last one of a job that reported before.
pub trait ProgressSink: Send + Sync {
    fn report(&self, job: &Job, snapshot: &Snapshot, finished: bool);
}

/// Logs `downloading s3://b/k: 412.0 MiB of 2.0 GiB (20 %), 85.3 MiB/s, about 19 s left`.
pub struct LogSink;

impl ProgressSink for LogSink {
    fn report(&self, job: &Job, s: &Snapshot, finished: bool) {
        let end = if finished { " (done)" } else { "" };
        tracing::info!(
            deployment = %job.deployment_id,
            event = %job.event,
            "{}: {}{end}",
            job.what,
            progress::line(s)
        );
    }
}

const UNKNOWN: u64 = u64::MAX;

struct Inner {
    job: Job,
    rule: Rule,
    started: Instant,
    bytes: AtomicU64,
    files: AtomicU64,
    total_bytes: AtomicU64,
    total_files: AtomicU64,
    /// Milliseconds after `started` of the last report (or 0).
    last_ms: AtomicU64,
    reported: AtomicBool,
    sinks: Vec<Arc<dyn ProgressSink>>,
}

/// Counts one job's progress; clones share the counts.
#[derive(Clone)]
pub struct Meter(Arc<Inner>);

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("job", &self.0.job)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// The rule in force: the default, or `CODEDEPLOY_PROGRESS=<every ms>,<min bytes>` (tests and
/// benchmarks use it to see reports from small, fast jobs).
pub fn rule_from_env() -> Rule {
    let mut rule = Rule::default();
    if let Ok(v) = std::env::var("CODEDEPLOY_PROGRESS") {
        let mut parts = v.split(',').map(|p| p.trim().parse::<u64>().ok());
        if let Some(Some(ms)) = parts.next() {
            rule.every = Duration::from_millis(ms);
        }
        if let Some(Some(min)) = parts.next() {
            rule.min_bytes = min;
            rule.min_files = min;
        }
    }
    rule
}

impl Meter {
    pub fn new(job: Job, rule: Rule, sinks: Vec<Arc<dyn ProgressSink>>) -> Self {
        Self(Arc::new(Inner {
            job,
            rule,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            total_bytes: AtomicU64::new(UNKNOWN),
            total_files: AtomicU64::new(UNKNOWN),
            last_ms: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            sinks,
        }))
    }

    pub fn set_totals(&self, bytes: Option<u64>, files: Option<u64>) {
        self.0
            .total_bytes
            .store(bytes.unwrap_or(UNKNOWN), Ordering::Relaxed);
        self.0
            .total_files
            .store(files.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let known = |v: u64| (v != UNKNOWN).then_some(v);
        Snapshot {
            bytes: self.0.bytes.load(Ordering::Relaxed),
            total_bytes: known(self.0.total_bytes.load(Ordering::Relaxed)),
            files: self.0.files.load(Ordering::Relaxed),
            total_files: known(self.0.total_files.load(Ordering::Relaxed)),
            elapsed: self.0.started.elapsed(),
        }
    }

    /// Counts `bytes` and `files` more; reports when due.
    pub fn add(&self, bytes: u64, files: u64) {
        if bytes > 0 {
            self.0.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if files > 0 {
            self.0.files.fetch_add(files, Ordering::Relaxed);
        }
        let s = self.snapshot();
        let now_ms = s.elapsed.as_millis() as u64;
        let last = self.0.last_ms.load(Ordering::Relaxed);
        let since = Duration::from_millis(now_ms.saturating_sub(last));
        // One thread wins the report; the others go on counting.
        if progress::due(&self.0.rule, &s, since)
            && self
                .0
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.0.reported.store(true, Ordering::Relaxed);
            for sink in &self.0.sinks {
                sink.report(&self.0.job, &s, false);
            }
        }
    }

    /// The job ended (successfully or not): a last report, if it reported before.
    pub fn finish(&self) {
        if self.0.reported.swap(false, Ordering::Relaxed) {
            let s = self.snapshot();
            for sink in &self.0.sinks {
                sink.report(&self.0.job, &s, true);
            }
        }
    }
}

/// A reader that counts what passes through it: wrapped around the stream entering the
/// unpacker, it measures single and ranged downloads alike (compressed bytes, as the object's
/// length counts them).
/// Without a meter it only passes the bytes on.
pub struct Counting<R> {
    inner: R,
    meter: Option<Meter>,
}

impl<R> Counting<R> {
    pub fn new(inner: R, meter: Option<Meter>) -> Self {
        Self { inner, meter }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(m) = &self.meter {
            m.add(n as u64, 0);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(Snapshot, bool)>>);
    impl ProgressSink for Seen {
        fn report(&self, _job: &Job, s: &Snapshot, finished: bool) {
            self.0.lock().unwrap().push((*s, finished));
        }
    }

    fn job() -> Job {
        Job {
            deployment_id: "d-1".into(),
            event: "DownloadBundle".into(),
            what: "downloading x".into(),
        }
    }

    #[test]
    fn counts_through_a_reader_and_reports_large_jobs() {
        let seen = Arc::new(Seen::default());
        let rule = Rule {
            every: Duration::ZERO,
            min_bytes: 10,
            min_files: 10,
        };
        let meter = Meter::new(job(), rule, vec![seen.clone()]);
        meter.set_totals(Some(20), None);
        let mut r = Counting::new(&b"0123456789abcdefghij"[..], Some(meter.clone()));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        meter.finish();
        let seen = seen.0.lock().unwrap();
        assert!(!seen.is_empty());
        let (last, finished) = seen[seen.len() - 1];
        assert!(finished);
        assert_eq!(last.bytes, 20);
        assert_eq!(last.total_bytes, Some(20));
    }

    #[test]
    fn small_jobs_say_nothing_not_even_their_end() {
        let seen = Arc::new(Seen::default());
        let meter = Meter::new(job(), Rule::default(), vec![seen.clone()]);
        meter.set_totals(Some(1000), Some(3));
        meter.add(1000, 3);
        meter.finish();
        assert!(seen.0.lock().unwrap().is_empty());
    }
}
