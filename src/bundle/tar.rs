//! Streaming tar reader (ustar, GNU long names, pax local and global headers, base-256
//! numbers) and the tar producer for the pipeline.
//!
//! Written here rather than taken from the `tar` crate because that crate reads GNU long-name
//! and pax headers into memory without a bound; a hostile bundle could make the agent allocate
//! gigabytes. Here every metadata header is capped, data is streamed in pipeline chunks, and
//! the reader never seeks, so a download can be piped straight in.

use std::io::{self, Read};
use std::path::Path;

use super::detect::{header_checksum_ok, parse_octal};
use super::entry::{EntryHead, Kind, Owner};
use super::error::BundleError;
use super::pipeline::{Msg, Stop, Tx, CHUNK};

const BLOCK: usize = 512;
/// Bound on a pax header's payload; real ones are a few hundred bytes.
const MAX_PAX: u64 = 1024 * 1024;
/// Bound on a GNU long name or long link (PATH_MAX is 4096 on Linux).
const MAX_LONG_NAME: u64 = 64 * 1024;

/// Numeric header field: octal text, or GNU base-256 when the top bit of the first byte is set.
pub fn parse_number(field: &[u8]) -> Option<i64> {
    match field.first() {
        Some(&b) if b & 0x80 != 0 => {
            let negative = b & 0x40 != 0;
            let mut v: i128 = i128::from(b & 0x3f);
            if negative {
                v -= 0x40;
            }
            for &x in &field[1..] {
                v = v.checked_mul(256)?.checked_add(i128::from(x))?;
            }
            i64::try_from(v).ok()
        }
        _ => parse_octal(field).and_then(|v| i64::try_from(v).ok()),
    }
}

/// A pax extended header that is not a list of `<length> key=value\n` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaxError {
    #[error("pax record without a length")]
    NoLength,
    #[error("pax record with a bad length")]
    BadLength,
    #[error("pax record without '='")]
    NoEquals,
}

/// Pax `key=value` records.
pub fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, PaxError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(PaxError::NoLength)?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(PaxError::BadLength)?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(PaxError::BadLength);
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or(PaxError::NoEquals)?;
        let key = String::from_utf8_lossy(&rec[..eq]).into_owned();
        out.push((key, rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// Pax time: seconds with an optional fraction.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    Some((secs, nanos))
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Attributes collected from pax and GNU headers for the next member.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<(i64, u32)>,
    uid: Option<u32>,
    gid: Option<u32>,
    uname: Option<String>,
    gname: Option<String>,
}

impl Pending {
    fn apply_pax(&mut self, records: Vec<(String, Vec<u8>)>, global: bool) {
        for (k, v) in records {
            let num = || {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
            };
            match k.as_str() {
                // A global path, link or size would apply to every member: meaningless.
                "path" if !global => self.path = Some(v),
                "linkpath" if !global => self.link = Some(v),
                "size" if !global => self.size = num(),
                "mtime" => self.mtime = parse_pax_time(&v),
                "uid" => self.uid = num().and_then(|n| u32::try_from(n).ok()),
                "gid" => self.gid = num().and_then(|n| u32::try_from(n).ok()),
                // A name that is not UTF-8 names no account: the number is used instead.
                "uname" => self.uname = String::from_utf8(v).ok(),
                "gname" => self.gname = String::from_utf8(v).ok(),
                _ => {}
            }
        }
    }
}

struct Reader<'a, R> {
    r: R,
    bundle: &'a Path,
    /// Name of the member being read, escaped for messages (names are bytes).
    last: String,
}

impl<R: Read> Reader<'_, R> {
    fn malformed(&self, detail: impl Into<String>) -> Stop {
        Stop::Failed(BundleError::Malformed {
            bundle: self.bundle.to_path_buf(),
            entry: self.last.clone(),
            detail: detail.into(),
        })
    }

    fn read_err(&self, e: io::Error) -> Stop {
        Stop::Failed(BundleError::Read {
            bundle: self.bundle.to_path_buf(),
            entry: self.last.clone(),
            source: e,
        })
    }

    /// Fills `buf`; `Ok(false)` on EOF before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, Stop> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(self.malformed("archive is truncated")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_err(e)),
            }
        }
        Ok(true)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), Stop> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let k = n.min(scratch.len() as u64) as usize;
            if !self.fill(&mut scratch[..k])? {
                return Err(self.malformed("archive is truncated"));
            }
            n -= k as u64;
        }
        Ok(())
    }

    fn padding(size: u64) -> u64 {
        (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
    }

    /// Reads a small metadata payload (pax or long name) and its padding.
    fn read_meta(&mut self, size: u64, cap: u64, what: &str) -> Result<Vec<u8>, Stop> {
        if size > cap {
            return Err(self.malformed(format!("{what} header of {size} bytes exceeds {cap}")));
        }
        let mut v = vec![0u8; size as usize];
        if !self.fill(&mut v)? && size > 0 {
            return Err(self.malformed("archive is truncated"));
        }
        self.skip(Self::padding(size))?;
        Ok(v)
    }
}

/// Reads a tar stream and sends its members. `declared`/`gz` only shape the message when the
/// first block is not tar. The stream is read to its end so a gzip trailer (CRC) is verified.
pub fn produce<R: Read>(
    r: R,
    bundle: &Path,
    declared: super::BundleType,
    gz: bool,
    tx: &Tx,
) -> Result<(), Stop> {
    let mut rd = Reader {
        r,
        bundle,
        last: String::new(),
    };
    let mut global = Pending::default();
    let mut local = Pending::default();
    let mut block = [0u8; BLOCK];
    let mut first = true;
    let not_tar = || {
        Stop::Failed(BundleError::TypeMismatch {
            bundle: bundle.to_path_buf(),
            declared,
            actual: "gzip-compressed data that is not a tar archive",
        })
    };
    loop {
        match rd.fill(&mut block) {
            Ok(true) => {}
            Ok(false) => break,
            // Less than one block inside the gzip stream: not a tar at all.
            Err(Stop::Failed(BundleError::Malformed { .. })) if first && gz => {
                return Err(not_tar())
            }
            Err(e) => return Err(e),
        }
        if block.iter().all(|&b| b == 0) {
            break;
        }
        if !header_checksum_ok(&block) {
            if first && gz {
                return Err(not_tar());
            }
            return Err(rd.malformed("tar header checksum mismatch"));
        }
        first = false;
        let typeflag = block[156];
        let ustar = &block[257..263] == b"ustar\0";
        let gnu = &block[257..265] == b"ustar  \0";
        let header_size = parse_number(&block[124..136])
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| rd.malformed("bad size field"))?;
        match typeflag {
            b'x' | b'g' => {
                let data = rd.read_meta(header_size, MAX_PAX, "pax")?;
                let records = parse_pax(&data).map_err(|e| rd.malformed(e.to_string()))?;
                if typeflag == b'g' {
                    global.apply_pax(records, true);
                } else {
                    local.apply_pax(records, false);
                }
                continue;
            }
            b'L' | b'K' => {
                let data = rd.read_meta(header_size, MAX_LONG_NAME, "GNU long name")?;
                let name = cstr(&data).to_vec();
                if typeflag == b'L' {
                    local.path = Some(name);
                } else {
                    local.link = Some(name);
                }
                continue;
            }
            _ => {}
        }
        let pending = std::mem::take(&mut local);
        let name = match pending.path {
            Some(p) => p,
            None => {
                let mut n = cstr(&block[..100]).to_vec();
                let prefix = cstr(&block[345..500]);
                if ustar && !prefix.is_empty() {
                    let mut full = prefix.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(&n);
                    n = full;
                }
                n
            }
        };
        rd.last = crate::names::encode(&name).into_owned();
        let link = pending
            .link
            .unwrap_or_else(|| cstr(&block[157..257]).to_vec());
        let size = pending.size.unwrap_or(header_size);
        // A pax `size` may be any u64; the member and its padding must still be addressable.
        let padded = size
            .checked_add(Reader::<R>::padding(size))
            .ok_or_else(|| rd.malformed(format!("member size {size} is too large")))?;
        let kind = match typeflag {
            b'0' | b'\0' | b'7' if name.ends_with(b"/") => Kind::Dir,
            b'0' | b'\0' | b'7' => Kind::File,
            b'1' => Kind::HardLink { target: link },
            b'2' => Kind::Symlink { target: link },
            b'3' => Kind::Special("character device"),
            b'4' => Kind::Special("block device"),
            b'5' | b'D' => Kind::Dir,
            b'6' => Kind::Special("fifo"),
            b'V' => {
                rd.skip(padded)?;
                continue;
            }
            b'S' | b'M' | b'N' => {
                return Err(Stop::Failed(BundleError::Unsupported {
                    bundle: bundle.to_path_buf(),
                    what: format!(
                        "entry \"{}\": GNU sparse/multi-volume tar members are not supported",
                        rd.last
                    ),
                }))
            }
            // GNU tar extracts unknown types as regular files.
            _ => Kind::File,
        };
        let field = |r: std::ops::Range<usize>| parse_number(&block[r]);
        let mode = field(100..108).map(|m| (m as u32) & 0o7777);
        let mtime = pending
            .mtime
            .or(global.mtime)
            .or_else(|| field(136..148).map(|s| (s, 0)));
        let text = |r: std::ops::Range<usize>| {
            let t = cstr(&block[r]);
            std::str::from_utf8(t)
                .ok()
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        let owner = Owner {
            uid: pending
                .uid
                .or(global.uid)
                .or_else(|| field(108..116).and_then(|n| u32::try_from(n).ok()))
                .unwrap_or(0),
            gid: pending
                .gid
                .or(global.gid)
                .or_else(|| field(116..124).and_then(|n| u32::try_from(n).ok()))
                .unwrap_or(0),
            uname: pending
                .uname
                .or(global.uname.clone())
                .or_else(|| (ustar || gnu).then(|| text(265..297)).flatten()),
            gname: pending
                .gname
                .or(global.gname.clone())
                .or_else(|| (ustar || gnu).then(|| text(297..329)).flatten()),
        };
        let is_file = kind == Kind::File;
        tx.send(Msg::Begin(EntryHead {
            raw_name: name,
            kind,
            mode,
            mtime,
            owner: Some(owner),
        }))?;
        if is_file {
            let mut left = size;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                let mut buf = tx.buffer(n);
                buf.resize(n, 0);
                if !rd.fill(&mut buf)? {
                    return Err(rd.malformed("archive is truncated"));
                }
                left -= n as u64;
                tx.send(Msg::Data(buf))?;
            }
            tx.send(Msg::End)?;
            rd.skip(Reader::<R>::padding(size))?;
        } else {
            rd.skip(padded)?;
        }
    }
    // Whatever follows the end marker is read (and dropped) so a gzip stream's checksum is
    // checked; plain tar padding is cheap to read.
    let mut scratch = [0u8; 8192];
    loop {
        match rd.r.read(&mut scratch) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(rd.read_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 0x01;
        big[10] = 0x02;
        assert_eq!(parse_number(&big), Some(0x0201));
        let neg = [0xffu8; 12];
        assert_eq!(parse_number(&neg), Some(-1));
    }

    #[test]
    fn pax_records() {
        let data = b"30 mtime=1700000000.123456789\n20 path=a/long/name\n";
        let r = parse_pax(data).unwrap();
        assert_eq!(r[0].0, "mtime");
        assert_eq!(parse_pax_time(&r[0].1), Some((1_700_000_000, 123_456_789)));
        assert_eq!(r[1], ("path".to_string(), b"a/long/name".to_vec()));
        assert_eq!(parse_pax(b"99 path=x\n"), Err(PaxError::BadLength));
        assert_eq!(
            parse_pax(b"abc").unwrap_err().to_string(),
            "pax record without a length"
        );
        assert_eq!(parse_pax(b"7 path\n"), Err(PaxError::NoEquals));
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
    }
}
