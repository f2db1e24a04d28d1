//! The two logs a hook writes: the deployment's `logs/scripts.log`
//! (docs/behaviour/hooks.md#scripts-log) and the host-wide deployments log
//! (docs/behaviour/layout.md#deployments-log), plus the in-memory tail kept for diagnostics
//! (docs/behaviour/hooks.md#log-tail).
//!
//! Invariants: every entry reaches all three in the same order, already stripped of terminal
//! escape sequences; a log that cannot be written never stops a running hook (the failure is
//! logged once per file and the hook goes on); rotation renames, it never truncates in place,
//! so a reader following the file loses nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::diagnostics::LogTail;

/// Rotated scripts.log files kept (`scripts.log.1` newest ... `.N` oldest).
pub const SCRIPTS_LOG_KEEP: u32 = 5;
/// The deployments log is rotated at this size, like the official agent's Ruby Logger.
pub const DEPLOYMENTS_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Rotated deployments logs kept: `.0` (newest) ... `.6`.
pub const DEPLOYMENTS_LOG_KEEP: u32 = 7;

/// Removes terminal escape sequences: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL|ESC \`),
/// other string sequences (DCS, SOS, PM, APC) and two-byte escapes. Colour codes and
/// cursor moves make logs unreadable in files and in the service console.
pub fn strip_ansi(input: &[u8]) -> Vec<u8> {
    const ESC: u8 = 0x1b;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != ESC {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let Some(&kind) = input.get(i + 1) else {
            break; // a lone trailing ESC carries nothing printable
        };
        i += 2;
        match kind {
            b'[' => {
                // Parameters and intermediates, then one final byte in 0x40..=0x7e.
                while i < input.len() && !(0x40..=0x7e).contains(&input[i]) {
                    i += 1;
                }
                i += 1;
            }
            b']' | b'P' | b'X' | b'^' | b'_' => {
                while i < input.len() {
                    if input[i] == 0x07 {
                        i += 1;
                        break;
                    }
                    if input[i] == ESC && input.get(i + 1) == Some(&b'\\') {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            // Character-set designations take one more byte (`ESC ( B`).
            b'(' | b')' | b'*' | b'+' => i += 1,
            _ => {}
        }
    }
    out
}

/// Broken-down local time with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub date: crate::sys::LocalFields,
    pub millis: u32,
}

impl LocalTime {
    pub fn at(t: SystemTime) -> Self {
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        match crate::sys::localtime(secs) {
            Some(date) => Self {
                date,
                millis: since.subsec_millis(),
            },
            None => Self {
                date: crate::sys::LocalFields::EPOCH,
                millis: 0,
            },
        }
    }
    /// `YYYY-MM-DD HH:MM:SS`, the scripts.log prefix.
    pub fn seconds(&self) -> String {
        self.date_time(' ')
    }
    /// `YYYY-MM-DDTHH:MM:SS`, the agent's own log file prefix.
    pub fn iso(&self) -> String {
        self.date_time('T')
    }
    fn date_time(&self, sep: char) -> String {
        let d = &self.date;
        format!(
            "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
            d.year, d.month, d.day, d.hour, d.minute, d.second
        )
    }
    /// `YYYY-MM-DD HH:MM:SS.mmm`, the deployments-log prefix.
    pub fn millis(&self) -> String {
        format!("{}.{:03}", self.seconds(), self.millis)
    }
}

/// One scripts.log line: `<time> <entry>` with the entry's own newline (or none).
pub fn scripts_log_line(time: &LocalTime, entry: &[u8]) -> Vec<u8> {
    let mut line = time.seconds().into_bytes();
    line.push(b' ');
    line.extend_from_slice(entry);
    line
}

/// One deployments-log line: the entry with surrounding whitespace removed, as Ruby's
/// `strip` does, always newline-terminated.
pub fn deployments_log_line(time: &LocalTime, deployment_id: &str, entry: &[u8]) -> Vec<u8> {
    let is_space = |b: &u8| b" \t\n\x0b\x0c\r\0".contains(b);
    let start = entry
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(entry.len());
    let end = entry
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |p| p + 1);
    let mut line = format!("[{}] [{}]", time.millis(), deployment_id).into_bytes();
    line.extend_from_slice(&entry[start..end.max(start)]);
    line.push(b'\n');
    line
}

/// Shifts `path.<first>` .. into `path.<first+1>` .., dropping the oldest, then moves `path`
/// to `path.<first>`.
fn rotate(path: &Path, first: u32, keep: u32) -> io::Result<()> {
    let numbered = |n: u32| {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    };
    let last = first + keep.saturating_sub(1);
    let _ = fs::remove_file(numbered(last));
    for n in (first..last).rev() {
        match fs::rename(numbered(n), numbered(n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    fs::rename(path, numbered(first))
}

/// An append-only file opened lazily, rotated by size.
struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
    first: u32,
    keep: u32,
    failed: bool,
}

impl RotatingFile {
    fn new(path: PathBuf, max: u64, first: u32, keep: u32) -> Self {
        Self {
            path,
            file: None,
            size: 0,
            max,
            first,
            keep,
            failed: false,
        }
    }

    fn open(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("log file not open"))
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.open()?;
        if self.max > 0 && self.size > 0 && self.size + bytes.len() as u64 > self.max {
            self.file = None;
            rotate(&self.path, self.first, self.keep)?;
            self.open()?;
        }
        let f = self.open()?;
        f.write_all(bytes)?;
        f.flush()?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Writes, reporting the first failure only so a full disk does not flood the agent log.
    fn write_logged(&mut self, bytes: &[u8]) {
        if let Err(e) = self.write(bytes) {
            if !self.failed {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write hook log");
            }
            self.failed = true;
        }
    }
}

/// Everything one event writes, in one place so ordering is kept.
pub struct HookLog {
    scripts: RotatingFile,
    deployments: Option<RotatingFile>,
    deployment_id: String,
    tail: LogTail,
}

impl HookLog {
    /// Opens (creating directories) the scripts.log now, so that an unwritable deployment
    /// directory fails the event before any script runs.
    pub fn open(
        scripts_log: &Path,
        max_bytes: u64,
        deployments_log: Option<&Path>,
        deployment_id: &str,
    ) -> io::Result<Self> {
        let mut scripts =
            RotatingFile::new(scripts_log.to_path_buf(), max_bytes, 1, SCRIPTS_LOG_KEEP);
        scripts.open()?;
        Ok(Self {
            scripts,
            deployments: deployments_log.map(|p| {
                RotatingFile::new(
                    p.to_path_buf(),
                    DEPLOYMENTS_LOG_MAX_BYTES,
                    0,
                    DEPLOYMENTS_LOG_KEEP,
                )
            }),
            deployment_id: deployment_id.to_string(),
            tail: LogTail::default(),
        })
    }

    /// Records one entry (escape sequences already removed or not: this strips them).
    pub fn entry(&mut self, raw: &[u8]) {
        let entry = strip_ansi(raw);
        let now = LocalTime::at(SystemTime::now());
        self.scripts.write_logged(&scripts_log_line(&now, &entry));
        if let Some(d) = self.deployments.as_mut() {
            d.write_logged(&deployments_log_line(&now, &self.deployment_id, &entry));
        }
        self.tail.push(String::from_utf8_lossy(&entry).into_owned());
    }

    pub fn tail(&self) -> String {
        self.tail.text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_cursor_and_title_sequences() {
        let s =
            b"\x1b[1;31mred\x1b[0m \x1b]0;title\x07ok\x1b]8;;http://x\x1b\\link\x1b(B\x1b[2K.\x1b";
        assert_eq!(strip_ansi(s), b"red oklink.");
        assert_eq!(strip_ansi(b"plain\n"), b"plain\n");
        assert_eq!(strip_ansi(b"\x1b[31"), b"");
    }

    fn t() -> LocalTime {
        LocalTime {
            date: crate::sys::LocalFields {
                year: 2024,
                month: 5,
                day: 1,
                hour: 10,
                minute: 11,
                second: 2,
            },
            millis: 45,
        }
    }

    #[test]
    fn line_formats_match_the_spec() {
        assert_eq!(
            scripts_log_line(&t(), b"[stdout]starting\n"),
            b"2024-05-01 10:11:02 [stdout]starting\n"
        );
        assert_eq!(
            scripts_log_line(&t(), b"[stdout]no newline"),
            b"2024-05-01 10:11:02 [stdout]no newline"
        );
        assert_eq!(
            deployments_log_line(&t(), "d-ABC", b"LifecycleEvent - ApplicationStart\n"),
            b"[2024-05-01 10:11:02.045] [d-ABC]LifecycleEvent - ApplicationStart\n"
        );
        assert_eq!(
            deployments_log_line(&t(), "d", b" \n"),
            b"[2024-05-01 10:11:02.045] [d]\n"
        );
    }

    #[test]
    fn rotation_keeps_numbered_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs/scripts.log");
        let mut f = RotatingFile::new(p.clone(), 10, 1, 2);
        for i in 0..4 {
            f.write(format!("entry {i}\n").as_bytes()).unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "entry 3\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("logs/scripts.log.1")).unwrap(),
            "entry 2\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("logs/scripts.log.2")).unwrap(),
            "entry 1\n"
        );
        assert!(!dir.path().join("logs/scripts.log.3").exists());
    }
}
