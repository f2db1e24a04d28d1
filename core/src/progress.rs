//! PURE: progress of a long download or install — when a line is due, the rate, the estimated
//! time left and the text people read (logs, systemd's STATUS=, deploy-local's plain lines).
//!
//! Invariants: the clock comes in as durations; small jobs stay quiet (nothing is due until the
//! job is known to be large); an estimate is given only when the total is known and something
//! has moved; no division by zero, whatever the input.

use std::time::Duration;

/// When progress is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Time between two reports.
    pub every: Duration,
    /// Jobs smaller than this (bytes, by the total or by what is already done) stay quiet.
    pub min_bytes: u64,
    /// ... unless they have at least this many files.
    pub min_files: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            min_bytes: 64 * 1024 * 1024,
            min_files: 10_000,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub bytes: u64,
    pub total_bytes: Option<u64>,
    pub files: u64,
    pub total_files: Option<u64>,
    pub elapsed: Duration,
}

impl Snapshot {
    /// Whether the job is large enough to be reported.
    pub fn is_large(&self, rule: &Rule) -> bool {
        self.total_bytes.unwrap_or(self.bytes).max(self.bytes) >= rule.min_bytes
            || self.total_files.unwrap_or(self.files).max(self.files) >= rule.min_files
    }
}

/// Whether a report is due, `since_last` after the previous one (or the start).
pub fn due(rule: &Rule, s: &Snapshot, since_last: Duration) -> bool {
    since_last >= rule.every && s.is_large(rule)
}

/// Bytes per second (0 when no time has passed).
pub fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        bytes as f64 / secs
    }
}

/// Time left at the average rate so far; None without a total or before anything moved.
pub fn eta(done: u64, total: Option<u64>, elapsed: Duration) -> Option<Duration> {
    let total = total?;
    let r = rate(done, elapsed);
    if r <= 0.0 {
        return None;
    }
    let left = total.saturating_sub(done) as f64 / r;
    // Clamp: a rate that has barely started may promise years.
    Some(Duration::from_secs_f64(left.min(100.0 * 86_400.0)))
}

/// `512 bytes`, `12.3 KiB`, `412.0 MiB`, `2.0 GiB`.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `45 s`, `3 min 05 s`, `2 h 07 min`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// `412.0 MiB of 2.0 GiB (20 %), 85.3 MiB/s, about 19 s left` (files added when counted:
/// `, 1200 of 10000 files`).
pub fn line(s: &Snapshot) -> String {
    let mut out = size(s.bytes);
    if let Some(t) = s.total_bytes {
        out.push_str(&format!(" of {}", size(t)));
        if t > 0 {
            let pct = (s.bytes.min(t) as u128 * 100 / t as u128) as u64;
            out.push_str(&format!(" ({pct} %)"));
        }
    }
    if s.files > 0 || s.total_files.is_some() {
        match s.total_files {
            Some(t) => out.push_str(&format!(", {} of {t} files", s.files)),
            None => out.push_str(&format!(", {} files", s.files)),
        }
    }
    out.push_str(&format!(", {}/s", size(rate(s.bytes, s.elapsed) as u64)));
    // Files are the better measure of an install's remaining work when bytes are unknown.
    let left =
        eta(s.bytes, s.total_bytes, s.elapsed).or_else(|| eta(s.files, s.total_files, s.elapsed));
    if let Some(left) = left {
        out.push_str(&format!(", about {} left", duration(left)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn snap(bytes: u64, total: Option<u64>, secs: u64) -> Snapshot {
        Snapshot {
            bytes,
            total_bytes: total,
            elapsed: Duration::from_secs(secs),
            ..Snapshot::default()
        }
    }

    #[test]
    fn small_jobs_stay_quiet_large_ones_report_every_period() {
        let rule = Rule::default();
        let five = Duration::from_secs(5);
        assert!(!due(&rule, &snap(MIB, Some(2 * MIB), 60), five));
        assert!(due(&rule, &snap(1, Some(64 * MIB), 5), five));
        assert!(!due(
            &rule,
            &snap(1, Some(64 * MIB), 5),
            Duration::from_secs(4)
        ));
        // Unknown size: reported once what arrived is large.
        assert!(!due(&rule, &snap(MIB, None, 5), five));
        assert!(due(&rule, &snap(64 * MIB, None, 5), five));
        // Many small files make an install large too.
        let files = Snapshot {
            files: 10,
            total_files: Some(20_000),
            ..Snapshot::default()
        };
        assert!(due(&rule, &files, five));
    }

    #[test]
    fn rate_and_eta() {
        assert_eq!(rate(100, Duration::ZERO), 0.0);
        assert_eq!(rate(100, Duration::from_secs(4)), 25.0);
        assert_eq!(eta(0, Some(100), Duration::from_secs(3)), None);
        assert_eq!(eta(10, None, Duration::from_secs(3)), None);
        assert_eq!(
            eta(25, Some(100), Duration::from_secs(5)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            eta(200, Some(100), Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        let slow = eta(1, Some(u64::MAX), Duration::from_secs(1_000_000)).unwrap();
        assert_eq!(slow, Duration::from_secs(100 * 86_400));
    }

    #[test]
    fn text() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(412 * MIB), "412.0 MiB");
        assert_eq!(size(2048 * MIB), "2.0 GiB");
        assert_eq!(duration(Duration::from_secs(45)), "45 s");
        assert_eq!(duration(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(duration(Duration::from_secs(7620)), "2 h 07 min");
        assert_eq!(
            line(&snap(400 * MIB, Some(2000 * MIB), 5)),
            "400.0 MiB of 2.0 GiB (20 %), 80.0 MiB/s, about 20 s left"
        );
        assert_eq!(line(&snap(100 * MIB, None, 2)), "100.0 MiB, 50.0 MiB/s");
        let install = Snapshot {
            bytes: 10 * MIB,
            files: 2_500,
            total_files: Some(10_000),
            elapsed: Duration::from_secs(5),
            ..Snapshot::default()
        };
        assert_eq!(
            line(&install),
            "10.0 MiB, 2500 of 10000 files, 2.0 MiB/s, about 15 s left"
        );
        assert_eq!(line(&snap(0, Some(0), 0)), "0 bytes of 0 bytes, 0 bytes/s");
    }
}
