//! The `logs` command: hook output from every deployment's `logs/scripts.log` under
//! root_dir, in time order; with `--follow`, the last lines (`-n`, default 10) as `tail -f`
//! prints them, then new output (including deployments that start later) until interrupted.
//!
//! Invariants: reads only; memory does not grow with the history: files are read line by
//! line and merged holding one record per deployment (`parse::Merge`), `-n N` keeps N lines,
//! and a follow round reads at most [`FOLLOW_CHUNK`] bytes of each file; rotated files
//! (`scripts.log.N`, oldest first) come before the live one; the live file read for the
//! history is the handle that is then followed, so no line is lost or printed twice, also
//! when it is rotated away (read to its end before the new file is opened); only complete
//! lines are printed while following, except that a last line left without a newline is
//! printed once it has stopped growing for a while.

pub mod parse;

use crate::cli::LogsArgs;
use crate::config::Config;
use crate::state;
use parse::{Filter, Merge, Record, Source, Tracker};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often `--follow` looks for new output and new deployments.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// Rounds a line without newline must stay unchanged before it is printed anyway.
const PARTIAL_ROUNDS: u32 = 4;
/// Bytes of one file read per follow round; a file with more is read on in the next round
/// at once, so a hook that writes fast costs time, not memory.
pub const FOLLOW_CHUNK: u64 = 1 << 20;
/// Lines `--follow` starts with when `-n` is not given (as `tail -f`).
pub const DEFAULT_FOLLOW_LINES: usize = 10;

/// Runs `logs`, writing to `out`. Returns when done (or, with `--follow`, when `out` is
/// closed); a write error on a closed pipe ends the command quietly.
pub fn run(cfg: &Config, args: &LogsArgs, out: &mut dyn Write) -> io::Result<()> {
    let filter = Filter {
        deployment: args.deployment.clone(),
        group: args.group.clone(),
        event: args.event.clone(),
    };
    let result = if args.follow {
        let lines = args.lines.unwrap_or(DEFAULT_FOLLOW_LINES);
        follow(cfg, &filter, lines, out, None)
    } else {
        print_history(cfg, &filter, args.lines, out)
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Deployment directories under root_dir with a logs/ directory, filtered by group and id.
pub fn deployments(root: &Path, filter: &Filter) -> Vec<(Source, PathBuf)> {
    let mut found = Vec::new();
    let Ok(groups) = std::fs::read_dir(root) else {
        return found;
    };
    for g in groups.flatten() {
        let group = g.file_name().to_string_lossy().into_owned();
        if !g.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(deps) = std::fs::read_dir(g.path()) else {
            continue;
        };
        for d in deps.flatten() {
            let deployment = d.file_name().to_string_lossy().into_owned();
            if filter.wants_source(&group, &deployment) && d.path().join("logs").is_dir() {
                found.push((
                    Source {
                        group: group.clone(),
                        deployment,
                    },
                    d.path(),
                ));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

/// Rotated scripts.log files of a deployment, oldest first.
fn rotated(dir: &Path) -> Vec<PathBuf> {
    let mut numbered: Vec<(u32, PathBuf)> = std::fs::read_dir(dir.join("logs"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix("scripts.log.")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    numbered.sort_by_key(|n| std::cmp::Reverse(n.0));
    numbered.into_iter().map(|(_, p)| p).collect()
}

/// One line without its `\n` (and a `\r` before it), as `str::lines` splits.
fn line_text(bytes: &[u8]) -> String {
    let b = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let b = b.strip_suffix(b"\r").unwrap_or(b);
    String::from_utf8_lossy(b).into_owned()
}

/// One deployment's history, read line by line: its rotated files, then the live one.
struct History {
    tracker: Tracker,
    rotated: VecDeque<PathBuf>,
    /// The live file, opened before anything is read so `--follow` goes on from its end.
    live: Option<File>,
    reader: Option<BufReader<File>>,
    reading_live: bool,
    /// Following: a live last line without its newline is left for the tail.
    hold_partial: bool,
    partial: Vec<u8>,
    /// The live file's handle once read to its end.
    live_done: Option<File>,
    buf: Vec<u8>,
}

impl History {
    fn new(source: Source, dir: &Path, hold_partial: bool) -> Self {
        Self {
            tracker: Tracker::new(source),
            rotated: rotated(dir).into(),
            live: File::open(state::scripts_log(dir)).ok(),
            reader: None,
            reading_live: false,
            hold_partial,
            partial: Vec::new(),
            live_done: None,
            buf: Vec::new(),
        }
    }

    /// The follower that goes on where the history ended.
    fn into_tail(self, path: PathBuf) -> Tail {
        let mut tail = Tail::new(path, self.tracker);
        if let Some(file) = self.live_done {
            tail.inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
            tail.file = Some(file);
            tail.partial = self.partial;
        }
        tail
    }

    fn next_reader(&mut self) -> bool {
        while let Some(path) = self.rotated.pop_front() {
            if let Ok(f) = File::open(path) {
                self.reader = Some(BufReader::new(f));
                return true;
            }
        }
        match self.live.take() {
            Some(f) => {
                self.reader = Some(BufReader::new(f));
                self.reading_live = true;
                true
            }
            None => false,
        }
    }
}

impl Iterator for History {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        loop {
            if self.reader.is_none() && !self.next_reader() {
                return None;
            }
            let reader = self.reader.as_mut()?;
            self.buf.clear();
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(n) if n > 0 => {
                    if self.reading_live && self.hold_partial && !self.buf.ends_with(b"\n") {
                        self.partial = std::mem::take(&mut self.buf);
                        continue;
                    }
                    return Some(self.tracker.feed(&line_text(&self.buf)));
                }
                // End of this file (an unreadable rest counts as its end).
                _ => {
                    let done = self.reader.take();
                    if self.reading_live {
                        // At the end, the reader's buffer is empty: the handle's offset is
                        // exactly where the history stopped.
                        self.live_done = done.map(BufReader::into_inner);
                    }
                }
            }
        }
    }
}

/// Every deployment's history, merged in time order.
fn merged(cfg: &Config, filter: &Filter, hold_partial: bool) -> (Merge<History>, Vec<PathBuf>) {
    let mut streams = Vec::new();
    let mut live = Vec::new();
    for (source, dir) in deployments(&cfg.root_dir, filter) {
        streams.push(History::new(source, &dir, hold_partial));
        live.push(state::scripts_log(&dir));
    }
    (Merge::new(streams), live)
}

/// `logs` without `--follow`: the whole history, or its last `lines`, streamed.
fn print_history(
    cfg: &Config,
    filter: &Filter,
    lines: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (records, _) = merged(cfg, filter, false);
    let wanted = records.filter(|r| filter.wants(r));
    match lines {
        None => {
            for r in wanted {
                writeln!(out, "{}", parse::render(&r))?;
            }
        }
        Some(n) => {
            for line in parse::last_n(wanted.map(|r| parse::render(&r)), n) {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()
}

/// Follows one live scripts.log.
struct Tail {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    partial: Vec<u8>,
    partial_rounds: u32,
    tracker: Tracker,
}

impl Tail {
    fn new(path: PathBuf, tracker: Tracker) -> Self {
        Self {
            path,
            file: None,
            inode: 0,
            partial: Vec::new(),
            partial_rounds: 0,
            tracker,
        }
    }

    fn open(&mut self) {
        if let Ok(f) = File::open(&self.path) {
            self.inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
            self.file = Some(f);
        }
    }

    /// Reads up to `limit` more bytes; true when the file's end was reached.
    fn drain(&mut self, bytes: &mut Vec<u8>, limit: u64) -> bool {
        match self.file.as_mut() {
            Some(f) => match f.take(limit).read_to_end(bytes) {
                Ok(n) => (n as u64) < limit,
                Err(_) => true,
            },
            None => true,
        }
    }

    /// New complete lines since the last call (at most about [`FOLLOW_CHUNK`] bytes), and
    /// whether more is waiting.
    fn poll(&mut self) -> (Vec<Record>, bool) {
        let mut bytes = std::mem::take(&mut self.partial);
        let before = bytes.len();
        if self.file.is_none() {
            self.open();
        }
        let mut at_end = self.drain(&mut bytes, FOLLOW_CHUNK);
        // Rotation renames the file; finish the old one, then start on the new.
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if at_end && self.file.is_some() && current.is_some_and(|ino| ino != self.inode) {
            self.open();
            if let Some(f) = self.file.as_mut() {
                let _ = f.seek(SeekFrom::Start(0));
            }
            at_end = self.drain(&mut bytes, FOLLOW_CHUNK);
        }
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let mut text = String::from_utf8_lossy(&bytes[..complete]).into_owned();
        let rest = bytes[complete..].to_vec();
        let grew = bytes.len() > before;
        if !rest.is_empty() && !grew {
            self.partial_rounds += 1;
        } else {
            self.partial_rounds = 0;
        }
        if !rest.is_empty() && self.partial_rounds >= PARTIAL_ROUNDS {
            text.push_str(&String::from_utf8_lossy(&rest));
            self.partial_rounds = 0;
        } else {
            self.partial = rest;
        }
        (parse::parse_all(&mut self.tracker, &text), !at_end)
    }
}

/// `logs --follow`: prints the last `lines` of the history, then new lines as they are
/// written, until `out` fails or `rounds` (tests) polls have passed.
pub fn follow(
    cfg: &Config,
    filter: &Filter,
    lines: usize,
    out: &mut dyn Write,
    rounds: Option<u64>,
) -> io::Result<()> {
    let mut tails: BTreeMap<PathBuf, Tail> = BTreeMap::new();
    let (mut history, live) = merged(cfg, filter, true);
    let wanted = history
        .by_ref()
        .filter(|r| filter.wants(r))
        .map(|r| parse::render(&r));
    for line in parse::last_n(wanted, lines) {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    for (h, path) in history.into_streams().into_iter().zip(live) {
        tails.insert(path.clone(), h.into_tail(path));
    }
    let mut done = 0u64;
    loop {
        for (source, dir) in deployments(&cfg.root_dir, filter) {
            let live = state::scripts_log(&dir);
            if !tails.contains_key(&live) {
                tails.insert(live.clone(), Tail::new(live, Tracker::new(source)));
            }
        }
        let mut records = Vec::new();
        let mut more = false;
        for tail in tails.values_mut() {
            let (got, waiting) = tail.poll();
            records.push(got.into_iter());
            more |= waiting;
        }
        // Deployments pruned by max_revisions are forgotten; a live file that is missing only
        // for a moment (rotation) keeps its tail, whose old handle may still hold lines.
        tails.retain(|path, _| {
            path.parent()
                .and_then(Path::parent)
                .is_some_and(Path::exists)
        });
        for r in Merge::new(records).filter(|r| filter.wants(r)) {
            writeln!(out, "{}", parse::render(&r))?;
        }
        out.flush()?;
        done += 1;
        if rounds.is_some_and(|r| done >= r) {
            return Ok(());
        }
        if !more {
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(root: &Path) -> Config {
        Config {
            root_dir: root.to_path_buf(),
            ..Config::default()
        }
    }

    fn write_log(root: &Path, group: &str, dep: &str, name: &str, text: &str) {
        let logs = root.join(group).join(dep).join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join(name), text).unwrap();
    }

    fn history(root: &Path, filter: Filter) -> String {
        let mut out = Vec::new();
        print_history(&cfg(root), &filter, None, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn history_merges_rotated_and_deployments() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write_log(r, "g", "d-1", "scripts.log.2", "2024-01-01 00:00:00 LifecycleEvent - BeforeInstall\n2024-01-01 00:00:01 [stdout]oldest\n");
        write_log(
            r,
            "g",
            "d-1",
            "scripts.log.1",
            "2024-01-01 00:00:02 [stdout]older\n",
        );
        write_log(
            r,
            "g",
            "d-1",
            "scripts.log",
            "2024-01-01 00:00:09 [stdout]newest\n",
        );
        write_log(r, "h", "d-2", "scripts.log", "2024-01-01 00:00:05 LifecycleEvent - AfterInstall\n2024-01-01 00:00:05 [stderr]middle\n");
        std::fs::create_dir_all(r.join("deployment-instructions")).unwrap();
        let all = history(r, Filter::default());
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(
            lines,
            [
                "2024-01-01 00:00:00 [g/d-1] LifecycleEvent - BeforeInstall",
                "2024-01-01 00:00:01 [g/d-1] [stdout]oldest",
                "2024-01-01 00:00:02 [g/d-1] [stdout]older",
                "2024-01-01 00:00:05 [h/d-2] LifecycleEvent - AfterInstall",
                "2024-01-01 00:00:05 [h/d-2] [stderr]middle",
                "2024-01-01 00:00:09 [g/d-1] [stdout]newest",
            ]
        );
        let only = history(
            r,
            Filter {
                event: Some("BeforeInstall".into()),
                ..Filter::default()
            },
        );
        assert_eq!(only.lines().count(), 4, "{only}");
        assert!(history(
            r,
            Filter {
                group: Some("h".into()),
                ..Filter::default()
            }
        )
        .contains("middle"));
        assert!(history(
            r,
            Filter {
                deployment: Some("nope".into()),
                ..Filter::default()
            }
        )
        .is_empty());
    }

    #[test]
    fn tail_survives_rotation_and_holds_partial_lines() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("scripts.log");
        std::fs::write(
            &path,
            "2024-01-01 00:00:00 [stdout]a\n2024-01-01 00:00:00 [stdout]par",
        )
        .unwrap();
        let mut tail = Tail::new(
            path.clone(),
            Tracker::new(Source {
                group: "g".into(),
                deployment: "d".into(),
            }),
        );
        let got: Vec<String> = tail.poll().0.into_iter().map(|r| r.entry).collect();
        assert_eq!(got, ["[stdout]a"]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"tial\n2024-01-01 00:00:01 [stdout]b\n")
            .unwrap();
        std::fs::rename(&path, t.path().join("scripts.log.1")).unwrap();
        f.write_all(b"2024-01-01 00:00:01 [stdout]c\n").unwrap();
        std::fs::write(&path, "2024-01-01 00:00:02 [stdout]d\n").unwrap();
        let got: Vec<String> = tail.poll().0.into_iter().map(|r| r.entry).collect();
        assert_eq!(
            got,
            ["[stdout]partial", "[stdout]b", "[stdout]c", "[stdout]d"]
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"2024-01-01 00:00:03 [stdout]no newline")
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..=PARTIAL_ROUNDS + 1 {
            seen.extend(tail.poll().0.into_iter().map(|r| r.entry));
        }
        assert_eq!(seen, ["[stdout]no newline"]);
    }

    #[test]
    fn follow_picks_up_new_deployments() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write_log(
            r,
            "g",
            "d-1",
            "scripts.log",
            "2024-01-01 00:00:00 [stdout]first\n",
        );
        let mut out = Vec::new();
        follow(&cfg(r), &Filter::default(), 10, &mut out, Some(1)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "2024-01-01 00:00:00 [g/d-1] [stdout]first\n"
        );
        // -n 0: nothing of the history, and nothing was written since.
        write_log(
            r,
            "g",
            "d-2",
            "scripts.log",
            "2024-01-01 00:00:01 [stdout]later\n",
        );
        let mut out = Vec::new();
        follow(&cfg(r), &Filter::default(), 0, &mut out, Some(1)).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "");
    }

    #[test]
    fn follow_starts_with_the_last_lines_and_goes_on_from_there() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let mut old = String::new();
        for i in 0..50 {
            old.push_str(&format!("2024-01-01 00:00:{:02} [stdout]old-{i}\n", i % 60));
        }
        write_log(r, "g", "d-1", "scripts.log.1", &old);
        write_log(
            r,
            "g",
            "d-1",
            "scripts.log",
            "2024-01-01 00:01:00 [stdout]live-a\n2024-01-01 00:01:01 [stdout]live-b\n2024-01-01 00:01:02 [stdout]half",
        );
        let mut out = Vec::new();
        follow(&cfg(r), &Filter::default(), 3, &mut out, Some(1)).unwrap();
        let got = String::from_utf8_lossy(&out).into_owned();
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            [
                "2024-01-01 00:00:49 [g/d-1] [stdout]old-49",
                "2024-01-01 00:01:00 [g/d-1] [stdout]live-a",
                "2024-01-01 00:01:01 [g/d-1] [stdout]live-b",
            ],
            "the unfinished last line waits: {got}"
        );
        let mut last = Vec::new();
        print_history(&cfg(r), &Filter::default(), Some(2), &mut last).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&last),
            "2024-01-01 00:01:01 [g/d-1] [stdout]live-b\n2024-01-01 00:01:02 [g/d-1] [stdout]half\n"
        );
    }

    #[test]
    fn a_fast_writer_is_read_in_chunks() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("scripts.log");
        let line = format!("2024-01-01 00:00:00 [stdout]{}\n", "x".repeat(99));
        let lines = (3 * FOLLOW_CHUNK as usize) / line.len();
        std::fs::write(&path, line.repeat(lines)).unwrap();
        let source = Source {
            group: "g".into(),
            deployment: "d".into(),
        };
        let mut tail = Tail::new(path, Tracker::new(source));
        let mut total = 0;
        let mut polls = 0;
        loop {
            let (got, more) = tail.poll();
            assert!(got.len() <= FOLLOW_CHUNK as usize / line.len() + 1);
            total += got.len();
            polls += 1;
            if !more {
                break;
            }
        }
        assert_eq!(total, lines);
        assert!(polls >= 3, "{polls}");
    }
}
