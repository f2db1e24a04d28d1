//! The agent's one source of randomness: every retry spread, the first-poll spread after a
//! command and the local deployment ids draw from here, and nowhere else.
//!
//! Job: uniform draws that differ from host to host. A fleet retries in step when each
//! agent's "random" comes from the clock (every agent woken by the same answer reads nearly
//! the same nanoseconds) or is a fraction that the caller clamps (issue 12: a [0, 1) draw
//! clamped to ±20 % made four retries in five wait exactly +20 %). So the draws come from one
//! PRNG (fastrand's wyrand) seeded once per process from the kernel (`/dev/urandom`, else
//! std's OS-seeded `RandomState`), and callers receive a draw in [0, 1) which pure functions
//! map onto their own ranges.
//!
//! Invariants: [`unit`] is uniform on [0, 1); [`spread`] of `d` lies in
//! [d × (1 − f), d × (1 + f)] and is uniform on it; [`below`] lies in [0, max). Tests seed a
//! [`Source`] to get a known sequence; the process-wide source is never seeded by a caller.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A seeded generator. The process uses one (behind a mutex); tests make their own.
#[derive(Debug, Clone)]
pub struct Source {
    rng: fastrand::Rng,
}

impl Source {
    /// A generator with a known sequence (tests).
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// A generator seeded from the kernel.
    pub fn from_os() -> Self {
        Self::seeded(os_seed())
    }

    /// Uniform on [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.rng.f64()
    }

    /// Uniform on 0..n (0 when n is 0).
    pub fn index(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.usize(..n)
        }
    }
}

/// 8 bytes from `/dev/urandom`; without it, a hash keyed by std's per-process OS randomness
/// over the time and pid (still different on every host).
fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_ok() {
        return u64::from_ne_bytes(bytes);
    }
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish()
}

fn global() -> &'static Mutex<Source> {
    static SOURCE: OnceLock<Mutex<Source>> = OnceLock::new();
    SOURCE.get_or_init(|| Mutex::new(Source::from_os()))
}

/// A draw uniform on [0, 1) from the process's source.
pub fn unit() -> f64 {
    global().lock().unwrap_or_else(|p| p.into_inner()).unit()
}

/// A draw uniform on 0..n from the process's source.
pub fn index(n: usize) -> usize {
    global().lock().unwrap_or_else(|p| p.into_inner()).index(n)
}

/// PURE: `d` moved by up to ±`fraction` of itself, `u` (a draw on [0, 1)) saying where:
/// u = 0 gives d × (1 − fraction), u → 1 gives d × (1 + fraction). A `u` outside [0, 1) or
/// not finite is taken as 0.5 (no move); `fraction` is limited to [0, 1].
pub fn spread_with(d: Duration, fraction: f64, u: f64) -> Duration {
    let u = if u.is_finite() && (0.0..1.0).contains(&u) {
        u
    } else {
        0.5
    };
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    d.mul_f64(1.0 + (2.0 * u - 1.0) * f)
}

/// PURE: a time in [0, max), `u` (a draw on [0, 1)) saying where.
pub fn below_with(max: Duration, u: f64) -> Duration {
    let u = if u.is_finite() && (0.0..1.0).contains(&u) {
        u
    } else {
        0.0
    };
    max.mul_f64(u)
}

/// `d` spread uniformly over ±`fraction` of itself, from the process's source.
pub fn spread(d: Duration, fraction: f64) -> Duration {
    spread_with(d, fraction, unit())
}

/// A time uniform on [0, max), from the process's source.
pub fn below(max: Duration) -> Duration {
    below_with(max, unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pearson's chi-square statistic of `counts` against equal expected counts.
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn unit_draws_are_uniform() {
        // 20 buckets, 200,000 draws: the statistic has 19 degrees of freedom, whose 0.999
        // quantile is 43.82; a fixed seed makes the outcome the same on every run.
        let mut s = Source::seeded(0x5eed_cafe);
        let mut counts = [0u64; 20];
        for _ in 0..200_000 {
            let u = s.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
            counts[(u * 20.0) as usize] += 1;
        }
        let chi = chi_square(&counts);
        assert!(chi < 43.82, "chi-square {chi} over {counts:?}");
    }

    #[test]
    fn spread_covers_the_whole_band_evenly() {
        // A 10 s wait spread by ±20 %: every draw within [8 s, 12 s], both ends reached, each
        // tenth of the band holding about a tenth of the draws, and no single millisecond
        // value holding more than a sliver (the old clamp put 80 % on one value).
        let mut s = Source::seeded(7);
        let base = Duration::from_secs(10);
        let n = 100_000;
        let mut counts = [0u64; 10];
        let mut per_ms = std::collections::HashMap::new();
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..n {
            let d = spread_with(base, 0.2, s.unit());
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
            lo = lo.min(d);
            hi = hi.max(d);
            let pos = (d.as_secs_f64() - 8.0) / 4.0;
            counts[((pos * 10.0) as usize).min(9)] += 1;
            *per_ms.entry(d.as_millis()).or_insert(0u32) += 1;
        }
        assert!(lo < Duration::from_millis(8_010) && hi > Duration::from_millis(11_990));
        // 9 degrees of freedom: 0.999 quantile 27.88.
        let chi = chi_square(&counts);
        assert!(chi < 27.88, "chi-square {chi} over {counts:?}");
        let top = per_ms.values().max().copied().unwrap_or(0);
        assert!(
            top < n / 500,
            "one millisecond value took {top} of {n} draws"
        );
    }

    #[test]
    fn mapping_rules() {
        let d = Duration::from_secs(10);
        assert_eq!(spread_with(d, 0.2, 0.0), Duration::from_secs(8));
        assert_eq!(spread_with(d, 0.2, 0.5), d);
        assert_eq!(spread_with(d, 0.2, 0.75), Duration::from_secs(11));
        assert_eq!(spread_with(d, 0.2, 1.0), d, "outside [0, 1): no move");
        assert_eq!(spread_with(d, 0.2, f64::NAN), d);
        assert_eq!(
            spread_with(d, 5.0, 0.0),
            Duration::ZERO,
            "fraction capped at 1"
        );
        assert_eq!(below_with(d, 0.25), Duration::from_millis(2_500));
        assert_eq!(below_with(d, -1.0), Duration::ZERO);
        let mut s = Source::seeded(1);
        assert_eq!(s.index(0), 0);
        assert!((0..36).contains(&s.index(36)));
    }

    #[test]
    fn the_process_source_varies() {
        let draws: std::collections::HashSet<u64> =
            (0..100).map(|_| (unit() * 1e12) as u64).collect();
        assert!(draws.len() > 95, "{} distinct of 100", draws.len());
        assert!((0..1000).all(|_| below(Duration::from_secs(1)) < Duration::from_secs(1)));
    }
}
