//! PURE: file names are bytes. This is the one escaping that turns a name (or a path) into
//! text for `<group>-install.json`, logs, reports and error messages, and back.
//!
//! Encoding, character by character of the name read as UTF-8:
//! * `\` becomes `\\`;
//! * a control character (U+0000 to U+001F, U+007F) becomes `\xHH` (two lowercase hex digits
//!   of its byte);
//! * a byte that is not part of valid UTF-8 becomes `\xHH`;
//! * every other character is kept as it is.
//!
//! Invariants: [`decode`]`(`[`encode`]`(x)) == x` for every byte string, so two different
//! names never share a text; a UTF-8 name without `\` or control characters is its own text
//! (borrowed, not copied), so files the official agent can read stay byte for byte as they
//! were. The cleanup journal does not use this: it holds raw bytes, one path per line, as the
//! official agent writes it (see docs/compatibility-install.md).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn push_byte(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push('x');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// The text of a name: itself when it is UTF-8 without `\` or control characters.
pub fn encode(bytes: &[u8]) -> Cow<'_, str> {
    // A control character or `\` in UTF-8 is always that single byte (every byte of a
    // multi-byte character is >= 0x80), so the plain case is decided on bytes.
    let plain = bytes.iter().all(|&b| b >= 0x20 && b != 0x7f && b != b'\\');
    if plain {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => push_byte(&mut out, c as u8),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_byte(&mut out, b);
        }
    }
    Cow::Owned(out)
}

/// The text of a path (see [`encode`]).
pub fn path(p: &Path) -> Cow<'_, str> {
    encode(p.as_os_str().as_bytes())
}

/// The text of an OS string (see [`encode`]).
pub fn os(s: &OsStr) -> Cow<'_, str> {
    encode(s.as_bytes())
}

/// A path shown in a message through the escaping, for `format!` arguments.
pub struct Shown<'a>(pub &'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&path(self.0))
    }
}

/// Why a text is not the encoding of any name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a backslash at byte {at} starts no escape (`\\\\` or `\\xHH`)")]
    BadEscape { at: usize },
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The name a text stands for: the inverse of [`encode`].
pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let t = text.as_bytes();
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        if t[i] != b'\\' {
            out.push(t[i]);
            i += 1;
            continue;
        }
        match t.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hi = t.get(i + 2).copied().and_then(hex);
                let lo = t.get(i + 3).copied().and_then(hex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(DecodeError::BadEscape { at: i });
                };
                out.push(hi << 4 | lo);
                i += 4;
            }
            _ => return Err(DecodeError::BadEscape { at: i }),
        }
    }
    Ok(out)
}

/// Whether `name` can be used as one directory name under a parent the agent owns (a
/// deployment group or deployment id, the tracking directory): not empty, not `.` or `..`
/// (which name the parent or leave it), no `/` (which would nest or leave it) and no NUL
/// (which no file system name holds). The daemon, `deploy-local` and the configuration apply
/// this one rule.
pub fn usable_as_dir_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dir_names() {
        for ok in ["g1", "d-ABC-local", "a.b", "...", " x", "Fleet name"] {
            assert!(usable_as_dir_name(ok), "{ok:?}");
        }
        for bad in ["", ".", "..", "a/b", "/", "a\0b", "\0"] {
            assert!(!usable_as_dir_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn plain_names_are_their_own_text() {
        for s in [
            "a.txt",
            "/var/www/html/index.html",
            "café",
            "日本/語",
            "with space",
            "",
        ] {
            assert!(
                matches!(encode(s.as_bytes()), Cow::Borrowed(t) if t == s),
                "{s}"
            );
        }
    }

    #[test]
    fn special_bytes_are_escaped() {
        assert_eq!(encode(b"caf\xe9"), "caf\\xe9");
        assert_eq!(encode(b"caf\xe8"), "caf\\xe8");
        assert_eq!(encode(b"a\\b"), "a\\\\b");
        assert_eq!(encode(b"line\nbreak\t\x7f"), "line\\x0abreak\\x09\\x7f");
        // A truncated UTF-8 sequence is bytes, the valid one after it stays a character.
        assert_eq!(encode(b"\xc3\xc3\xa9"), "\\xc3é");
    }

    #[test]
    fn decoding_refuses_stray_backslashes() {
        assert_eq!(decode("a\\"), Err(DecodeError::BadEscape { at: 1 }));
        assert_eq!(decode("a\\q"), Err(DecodeError::BadEscape { at: 1 }));
        assert_eq!(decode("\\x4"), Err(DecodeError::BadEscape { at: 0 }));
        assert_eq!(decode("\\x4G"), Err(DecodeError::BadEscape { at: 0 }));
        assert_eq!(decode("\\x41\\\\").unwrap(), b"A\\");
    }

    #[test]
    fn shown_paths_use_the_escaping() {
        let p = Path::new(OsStr::from_bytes(b"/d/caf\xe9"));
        assert_eq!(Shown(p).to_string(), "/d/caf\\xe9");
    }

    proptest! {
        #[test]
        fn round_trips_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn round_trips_mostly_text(s in "[a-z\\\\é\u{7f}\n/.]{0,24}", junk in any::<u8>()) {
            let mut bytes = s.into_bytes();
            bytes.push(junk);
            prop_assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn different_names_never_share_a_text(
            a in proptest::collection::vec(any::<u8>(), 0..16),
            b in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(encode(&a), encode(&b));
        }

        #[test]
        fn plain_utf8_is_unchanged(s in "[^\\\\\\x00-\\x1f\\x7f]{0,32}") {
            prop_assert_eq!(encode(s.as_bytes()), Cow::Borrowed(s.as_str()));
        }
    }
}
