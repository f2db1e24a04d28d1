//! PURE: the small string grammars inside a permission entry — file modes, ACL entries
//! (setfacl style) and SELinux MLS ranges. Each parser takes the text as written and returns
//! the typed value or a [`GrammarError`] naming the text and saying what was expected.

use std::collections::BTreeSet;
use std::num::ParseIntError;

use super::model::{Ace, AceKind, Mode, SeRange};

/// Why a mode, ACL entry or SELinux range was refused; each variant carries the text (or the
/// part of it) that was wrong. The caller adds the appspec position and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    #[error("expected a file mode of octal digits 0-7 such as 644 or 0755, found {text:?} (invalid character {bad:?})")]
    ModeCharacter { text: String, bad: char },
    #[error("expected a file mode of 1 to 4 octal digits such as 644 or 0755, found {text:?}")]
    ModeLength { text: String },
    #[error("invalid mode {text:?}: {source}")]
    ModeValue {
        text: String,
        #[source]
        source: ParseIntError,
    },
    #[error("invalid character {bad:?} in the permissions of ACL entry {ace:?}: use one octal digit or r, w, x and -")]
    AcePermissions { ace: String, bad: char },
    #[error("invalid ACL entry {ace:?}: {ACE_HELP}")]
    AceShape { ace: String },
    #[error("invalid ACL entry {ace:?}: mask and other entries take no name")]
    AceNamedMaskOrOther { ace: String },
    #[error("ACL entry {ace:?} sets a base entry (owner, group or other); use mode to set it")]
    AceBaseEntry { ace: String },
    #[error("invalid sensitivity {part} (expected s followed by a number)")]
    Sensitivity { part: String },
    #[error("invalid category {part} (expected c0 to c1023)")]
    Category { part: String },
    #[error("invalid range part {part}")]
    RangePart { part: String },
    #[error("invalid SELinux range {range}: the high sensitivity s{high} is below the low s{low}")]
    RangeOrder { range: String, low: u32, high: u32 },
    #[error("invalid category range {item}")]
    CategoryRange { item: String },
    #[error("duplicate categories in {range} (c{category})")]
    DuplicateCategory { range: String, category: u16 },
}

/// A mode as 1–4 octal digits, read from the text the user wrote (so `0644` is octal 644,
/// never YAML 1.1's decimal 420). Four digits carry setuid/setgid/sticky (`4755`).
pub fn parse_mode(text: &str) -> Result<Mode, GrammarError> {
    let t = text.trim();
    if let Some(bad) = t.chars().find(|c| !('0'..='7').contains(c)) {
        return Err(GrammarError::ModeCharacter {
            text: t.to_string(),
            bad,
        });
    }
    if t.is_empty() || t.len() > 4 {
        return Err(GrammarError::ModeLength {
            text: t.to_string(),
        });
    }
    u32::from_str_radix(t, 8)
        .map(Mode)
        .map_err(|source| GrammarError::ModeValue {
            text: t.to_string(),
            source,
        })
}

const ACE_HELP: &str = "expected [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:]name:perms, e.g. u:bob:rwx or d:g:dev:r-x";

fn kind_of(word: &str) -> Option<AceKind> {
    match word {
        "u" | "user" => Some(AceKind::User),
        "g" | "group" => Some(AceKind::Group),
        "m" | "mask" => Some(AceKind::Mask),
        "o" | "other" => Some(AceKind::Other),
        _ => None,
    }
}

fn is_default(word: &str) -> bool {
    matches!(word, "d" | "default")
}

/// Permissions: one octal digit, or any of `r`, `w`, `x`, `-`; empty means none.
fn parse_perms(ace: &str, text: &str) -> Result<u8, GrammarError> {
    let mut chars = text.chars();
    if let (Some(c @ '0'..='7'), None) = (chars.next(), chars.next()) {
        return Ok(c as u8 - b'0');
    }
    let mut bits = 0;
    for c in text.chars() {
        bits |= match c {
            'r' => 4,
            'w' => 2,
            'x' => 1,
            '-' => 0,
            bad => {
                return Err(GrammarError::AcePermissions {
                    ace: ace.to_string(),
                    bad,
                })
            }
        };
    }
    Ok(bits)
}

/// One ACL entry as written in the appspec (see `ACE_HELP` for the grammar).
pub fn parse_ace(text: &str) -> Result<Ace, GrammarError> {
    let ace = text.trim();
    let parts: Vec<&str> = ace.split(':').collect();
    let invalid = || GrammarError::AceShape {
        ace: ace.to_string(),
    };
    let (default, kind, name, perms) = match parts.as_slice() {
        [d, k, name, perms] => {
            if !is_default(d) {
                return Err(invalid());
            }
            (true, kind_of(k).ok_or_else(invalid)?, *name, *perms)
        }
        [first, name, perms] => {
            if is_default(first) {
                (true, AceKind::User, *name, *perms)
            } else {
                (false, kind_of(first).ok_or_else(invalid)?, *name, *perms)
            }
        }
        [name, perms] => match kind_of(name) {
            Some(k @ (AceKind::Mask | AceKind::Other)) => (false, k, "", *perms),
            _ => (false, AceKind::User, *name, *perms),
        },
        _ => return Err(invalid()),
    };
    if matches!(kind, AceKind::Mask | AceKind::Other) && !name.is_empty() {
        return Err(GrammarError::AceNamedMaskOrOther {
            ace: ace.to_string(),
        });
    }
    let base = !default && name.is_empty() && kind != AceKind::Mask;
    if base {
        return Err(GrammarError::AceBaseEntry {
            ace: ace.to_string(),
        });
    }
    Ok(Ace {
        default,
        kind,
        name: name.to_string(),
        perms: parse_perms(ace, perms)?,
    })
}

fn sensitivity(part: &str) -> Result<u32, GrammarError> {
    part.strip_prefix('s')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| GrammarError::Sensitivity {
            part: part.to_string(),
        })
}

fn category(part: &str) -> Result<u16, GrammarError> {
    part.strip_prefix('c')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u16>().ok())
        .filter(|n| *n <= 1023)
        .ok_or_else(|| GrammarError::Category {
            part: part.to_string(),
        })
}

/// An SELinux MLS range `s<low>[-s<high>][:c<a>[.c<b>][,...]]`.
pub fn parse_range(text: &str) -> Result<SeRange, GrammarError> {
    let r = text.trim();
    let part_err = |p: &str| GrammarError::RangePart {
        part: p.to_string(),
    };
    let (levels, cats) = match r.split_once(':') {
        Some((levels, cats)) => {
            if levels.is_empty() || cats.is_empty() || cats.contains(':') {
                return Err(part_err(r));
            }
            (levels, Some(cats))
        }
        None => (r, None),
    };
    let (low, high) = match levels.split_once('-') {
        Some((lo, hi)) if lo.is_empty() || hi.is_empty() => return Err(part_err(levels)),
        Some((lo, hi)) => (sensitivity(lo)?, sensitivity(hi)?),
        None => {
            let s = sensitivity(levels)?;
            (s, s)
        }
    };
    if high < low {
        return Err(GrammarError::RangeOrder {
            range: r.to_string(),
            low,
            high,
        });
    }
    let mut categories = BTreeSet::new();
    for item in cats.into_iter().flat_map(|c| c.split(',')) {
        let (a, b) = match item.split_once('.') {
            Some((a, b)) if a.is_empty() || b.is_empty() => return Err(part_err(item)),
            Some((a, b)) => {
                let (a, b) = (category(a)?, category(b)?);
                if b <= a {
                    return Err(GrammarError::CategoryRange {
                        item: item.to_string(),
                    });
                }
                (a, b)
            }
            None => {
                let a = category(item)?;
                (a, a)
            }
        };
        for c in a..=b {
            if !categories.insert(c) {
                return Err(GrammarError::DuplicateCategory {
                    range: r.to_string(),
                    category: c,
                });
            }
        }
    }
    Ok(SeRange {
        low,
        high,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let ok: &[(&str, u32)] = &[
            ("644", 0o644),
            ("0644", 0o644),
            ("0755", 0o755),
            ("12", 0o12),
            ("7", 0o7),
            ("0000", 0),
            ("7777", 0o7777),
            ("4755", 0o4755),
            ("6763", 0o6763),
        ];
        for (t, m) in ok {
            assert_eq!(parse_mode(t), Ok(Mode(*m)), "{t}");
        }
        let m = parse_mode("6763").unwrap();
        assert!(m.setuid() && m.setgid() && !m.sticky());
        for bad in ["12345", "12a", "", "0o644", "-644", "9", "08"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_mode("12a").unwrap_err().to_string(),
            "expected a file mode of octal digits 0-7 such as 644 or 0755, found \"12a\" (invalid character 'a')"
        );
        assert_eq!(
            parse_mode("12345").unwrap_err().to_string(),
            "expected a file mode of 1 to 4 octal digits such as 644 or 0755, found \"12345\""
        );
    }

    fn ace(d: bool, kind: AceKind, name: &str, perms: u8) -> Ace {
        Ace {
            default: d,
            kind,
            name: name.into(),
            perms,
        }
    }

    #[test]
    fn ace_table() {
        use AceKind::*;
        let ok: &[(&str, Ace)] = &[
            ("d:u:bob:rwx", ace(true, User, "bob", 7)),
            ("default:g:dev:rw", ace(true, Group, "dev", 6)),
            ("d:bob:rwx", ace(true, User, "bob", 7)),
            ("default::rw", ace(true, User, "", 6)),
            ("m::7", ace(false, Mask, "", 7)),
            ("mask::7", ace(false, Mask, "", 7)),
            ("g:dev:7", ace(false, Group, "dev", 7)),
            ("group:dev:7", ace(false, Group, "dev", 7)),
            ("u:bob:7", ace(false, User, "bob", 7)),
            ("user:bob:7", ace(false, User, "bob", 7)),
            ("u:mask:7", ace(false, User, "mask", 7)),
            ("u:other:7", ace(false, User, "other", 7)),
            ("bob:0", ace(false, User, "bob", 0)),
            ("m:7", ace(false, Mask, "", 7)),
            ("mask:", ace(false, Mask, "", 0)),
            ("u:henry:7", ace(false, User, "henry", 7)),
            ("d:g:manager:rw", ace(true, Group, "manager", 6)),
            ("d:o::r-x", ace(true, Other, "", 5)),
        ];
        for (t, want) in ok {
            assert_eq!(parse_ace(t).as_ref(), Ok(want), "{t}");
        }
        assert_eq!(
            parse_ace("d:u:bob:7").unwrap().to_string(),
            "default:user:bob:rwx"
        );
        assert_eq!(parse_ace("m:0").unwrap().to_string(), "mask::---");
    }

    #[test]
    fn ace_errors() {
        for bad in [
            "7",
            "d:u:bob:7:rwx",
            "invalid:u:bob:7:rwx",
            "d:invalid:bob:7:rwx",
            "d:d:bob:7:rwx",
            "d:d:bob:rwx",
            "mask:name:rwx",
            "d:other:name:rwx",
            "x:bob:rwx",
        ] {
            assert!(
                parse_ace(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("invalid ACL entry"),
                "{bad}"
            );
        }
        assert_eq!(
            parse_ace("user:bob:rwxd").unwrap_err().to_string(),
            "invalid character 'd' in the permissions of ACL entry \"user:bob:rwxd\": use one octal digit or r, w, x and -"
        );
        for base in ["u::7", "g::7", "o::7", "o:7", ":7"] {
            assert!(
                parse_ace(base)
                    .unwrap_err()
                    .to_string()
                    .contains("use mode"),
                "{base}"
            );
        }
    }

    #[test]
    fn range_errors_and_values() {
        let errs: &[(&str, &str)] = &[
            ("s3-s2:c0", "below"),
            ("s3-:c0", "invalid range part s3-"),
            (":c0", "invalid range part :c0"),
            ("s", "invalid sensitivity s"),
            ("s0-s-1", "invalid sensitivity s-1"),
            ("sd3", "invalid sensitivity sd3"),
            ("d3", "invalid sensitivity d3"),
            ("s0:c2.c1", "invalid category range c2.c1"),
            ("s0:c2.", "invalid range part c2."),
            ("s0:", "invalid range part s0:"),
            ("s0:c", "invalid category c"),
            ("s0:c-1", "invalid category c-1"),
            ("s0:c1024", "invalid category c1024"),
            ("s0:cd3", "invalid category cd3"),
            ("s0:d3", "invalid category d3"),
            ("s0:c0.c2,c1", "duplicate categories"),
        ];
        for (t, want) in errs {
            let e = parse_range(t).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
        assert_eq!(
            parse_range("s3-s2:c0").unwrap_err().to_string(),
            "invalid SELinux range s3-s2:c0: the high sensitivity s2 is below the low s3"
        );
        let r = parse_range("s5").unwrap();
        assert_eq!((r.low, r.high, r.categories.len()), (5, 5, 0));
        let r = parse_range("s0:c0.c1,c15,c7.c9").unwrap();
        assert_eq!(r.categories.len(), 6);
        assert_eq!(r.to_string(), "s0:c0.c1,c7.c9,c15");
        let r = parse_range("s3-s5:c0.c7,c13").unwrap();
        assert_eq!((r.low, r.high, r.categories.len()), (3, 5, 9));
        for t in ["s3", "s3-s7:c5,c8.c10,c17"] {
            assert_eq!(parse_range(t).unwrap().to_string(), t);
        }
    }
}
