//! PURE: the free-space reserve (`free_space_reserve`), how much room a file system has above
//! it, and how much a bundle or an install needs at least.
//!
//! Invariants: arithmetic saturates (a file system larger than `u64` bytes or a reserve larger
//! than the disk never wraps); a reserve of `0` still refuses what does not fit at all.

use std::fmt;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// How much of a file system must stay free: the larger of a share of its size and a fixed
/// amount (either may be absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserve {
    /// Hundredths of a percent of the file system's size (500 = 5 %).
    pub basis_points: u32,
    pub bytes: u64,
}

impl Default for Reserve {
    /// The larger of 5 % and 1 GiB.
    fn default() -> Self {
        Self {
            basis_points: 500,
            bytes: GIB,
        }
    }
}

impl Reserve {
    /// The bytes to keep free on a file system of `total` bytes.
    pub fn bytes_for(&self, total: u64) -> u64 {
        let share = u128::from(total) * u128::from(self.basis_points) / 10_000;
        u64::try_from(share).unwrap_or(u64::MAX).max(self.bytes)
    }
}

impl fmt::Display for Reserve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = format!("{}.{:02}", self.basis_points / 100, self.basis_points % 100);
        let pct = pct.trim_end_matches('0').trim_end_matches('.');
        match (self.basis_points, self.bytes) {
            (0, b) => write!(f, "{}", human(b)),
            (_, 0) => write!(f, "{pct}%"),
            (_, b) => write!(f, "the larger of {pct}% and {}", human(b)),
        }
    }
}

/// Parses a reserve: one amount, or two separated by a comma meaning "the larger of". An
/// amount is a percentage (`5%`, `2.5%`) or a size in bytes with an optional binary unit
/// (`1073741824`, `512MiB`, `1GiB`, `1 TiB`). `0` turns the reserve off.
pub fn parse_reserve(text: &str) -> Result<Reserve, ReserveSyntax> {
    let mut r = Reserve {
        basis_points: 0,
        bytes: 0,
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(ReserveSyntax);
    }
    let (mut have_pct, mut have_bytes) = (false, false);
    for p in parts {
        if let Some(num) = p.strip_suffix('%') {
            if have_pct {
                return Err(ReserveSyntax);
            }
            have_pct = true;
            r.basis_points = parse_percent(num.trim()).ok_or(ReserveSyntax)?;
        } else {
            if have_bytes {
                return Err(ReserveSyntax);
            }
            have_bytes = true;
            r.bytes = parse_size(p).ok_or(ReserveSyntax)?;
        }
    }
    Ok(r)
}

/// A reserve that is not one of the accepted forms; the message says what is expected (the
/// configuration error around it names the key and the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a percentage (5%), a size (1GiB, 512MiB, or bytes), or both separated by a comma (5%, 1GiB: the larger of the two)")]
pub struct ReserveSyntax;

/// `5` -> 500, `2.5` -> 250, at most 100 %.
fn parse_percent(s: &str) -> Option<u32> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 2 || !(whole.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    let bp = whole.checked_mul(100)?.checked_add(frac)?;
    (bp <= 10_000).then_some(bp)
}

/// `1073741824`, `1GiB`, `1 GiB`, `512MiB`, `64KiB`, `2TiB`, `100B`.
pub fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "TiB" => TIB,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `1073741824` -> `1073741824 bytes (1.0 GiB)`; small numbers stay plain.
pub fn human(n: u64) -> String {
    let (v, unit) = if n >= TIB {
        (n as f64 / TIB as f64, "TiB")
    } else if n >= GIB {
        (n as f64 / GIB as f64, "GiB")
    } else if n >= MIB {
        (n as f64 / MIB as f64, "MiB")
    } else if n >= KIB {
        (n as f64 / KIB as f64, "KiB")
    } else {
        return format!("{n} bytes");
    };
    format!("{n} bytes ({v:.1} {unit})")
}

/// A file system's size and the bytes an unprivileged writer may still use (`df`'s Avail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    pub total: u64,
    pub free: u64,
    /// Allocation unit: every file takes a whole number of these.
    pub block: u64,
}

/// How far `needed` bytes overshoot what the reserve allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub needed: u64,
    pub free: u64,
    pub reserve: u64,
}

/// The bytes that may still be written before the reserve is reached.
pub fn room(space: FsSpace, reserve: &Reserve) -> u64 {
    space.free.saturating_sub(reserve.bytes_for(space.total))
}

/// Whether writing `needed` more bytes keeps the reserve free.
pub fn check(needed: u64, space: FsSpace, reserve: &Reserve) -> Result<(), Shortfall> {
    if needed <= room(space, reserve) {
        return Ok(());
    }
    Err(Shortfall {
        needed,
        free: space.free,
        reserve: reserve.bytes_for(space.total),
    })
}

/// Bytes a file of `len` bytes takes on a file system allocating in `block`s.
pub fn on_disk(len: u64, block: u64) -> u64 {
    let block = block.max(1);
    len.div_ceil(block).saturating_mul(block)
}

/// What unpacking an archive of `len` bytes needs at least, before anything of it is read.
/// Only a low estimate is wanted (the check while writing is the exact one, so a low guess
/// costs a late refusal, a high one a wrong refusal): half of a tar, less its end padding,
/// since a member's 512-byte header outweighs its data only when most members are empty;
/// a tgz unpacks to no less than itself (gzip adds at most about 0.1 % and a header), then
/// the same half. A zip's needs come from its central directory instead.
pub fn archive_lower_bound(kind: ArchiveKind, len: u64) -> u64 {
    match kind {
        ArchiveKind::Tar => len.saturating_sub(10 * KIB) / 2,
        ArchiveKind::Tgz => len.saturating_sub(len / 1000 + 64) / 2,
        ArchiveKind::Zip => 0,
    }
}

/// The archive formats [`archive_lower_bound`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    Tgz,
    Zip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reserve_is_the_larger_of_five_percent_and_a_gib() {
        let r = Reserve::default();
        assert_eq!(r.bytes_for(10 * GIB), GIB);
        assert_eq!(r.bytes_for(20 * GIB), GIB);
        assert_eq!(r.bytes_for(100 * GIB), 5 * GIB);
        assert_eq!(r.bytes_for(64 * MIB), GIB, "a small disk keeps a GiB free");
        assert_eq!(r.bytes_for(u64::MAX), u64::MAX / 20);
        assert_eq!(
            r.to_string(),
            "the larger of 5% and 1073741824 bytes (1.0 GiB)"
        );
    }

    #[test]
    fn reserve_text() {
        let p = |s| parse_reserve(s);
        assert_eq!(p("5%, 1GiB"), Ok(Reserve::default()));
        assert_eq!(p("1GiB,5%"), Ok(Reserve::default()));
        assert_eq!(
            p("2.5%"),
            Ok(Reserve {
                basis_points: 250,
                bytes: 0
            })
        );
        assert_eq!(
            p("512 MiB"),
            Ok(Reserve {
                basis_points: 0,
                bytes: 512 * MIB
            })
        );
        assert_eq!(
            p("0"),
            Ok(Reserve {
                basis_points: 0,
                bytes: 0
            })
        );
        assert_eq!(p("4096").map(|r| r.bytes), Ok(4096));
        for bad in [
            "",
            "%",
            "5%,6%",
            "1GiB,2GiB",
            "101%",
            "1.234%",
            "1GB",
            "-1",
            "5%,",
            "1,2,3",
            "x%",
        ] {
            assert_eq!(p(bad), Err(ReserveSyntax), "{bad:?} accepted");
        }
        // The configuration error shows this after "expected".
        assert_eq!(
            ReserveSyntax.to_string(),
            "a percentage (5%), a size (1GiB, 512MiB, or bytes), or both separated by a comma (5%, 1GiB: the larger of the two)"
        );
        assert_eq!(p("100%").map(|r| r.bytes_for(1000)), Ok(1000));
    }

    #[test]
    fn room_and_check() {
        let fs = FsSpace {
            total: 100 * MIB,
            free: 30 * MIB,
            block: 4096,
        };
        let r = Reserve {
            basis_points: 1000,
            bytes: 0,
        };
        assert_eq!(room(fs, &r), 20 * MIB);
        assert_eq!(check(20 * MIB, fs, &r), Ok(()));
        assert_eq!(
            check(20 * MIB + 1, fs, &r),
            Err(Shortfall {
                needed: 20 * MIB + 1,
                free: 30 * MIB,
                reserve: 10 * MIB
            })
        );
        // A reserve larger than what is free leaves no room, not a wrapped-around one.
        let big = Reserve {
            basis_points: 0,
            bytes: 40 * MIB,
        };
        assert_eq!(room(fs, &big), 0);
        assert!(check(1, fs, &big).is_err());
        assert_eq!(check(0, fs, &big), Ok(()));
        // No reserve: what does not fit at all is still refused.
        let none = Reserve {
            basis_points: 0,
            bytes: 0,
        };
        assert!(check(30 * MIB + 1, fs, &none).is_err());
    }

    #[test]
    fn needs() {
        assert_eq!(on_disk(0, 4096), 0);
        assert_eq!(on_disk(1, 4096), 4096);
        assert_eq!(on_disk(4096, 4096), 4096);
        assert_eq!(on_disk(4097, 4096), 8192);
        assert_eq!(on_disk(u64::MAX, 4096), u64::MAX);
        assert_eq!(on_disk(7, 0), 7);
        assert_eq!(archive_lower_bound(ArchiveKind::Tar, 1024), 0);
        assert_eq!(
            archive_lower_bound(ArchiveKind::Tar, 10 * MIB + 10 * KIB),
            5 * MIB
        );
        assert!(archive_lower_bound(ArchiveKind::Tgz, 100 * MIB) > 49 * MIB);
        assert_eq!(archive_lower_bound(ArchiveKind::Zip, 100 * MIB), 0);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 bytes");
        assert_eq!(human(3 * MIB / 2), "1572864 bytes (1.5 MiB)");
    }
}
