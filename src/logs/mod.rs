//! The `logs` command: hook output from every deployment's `logs/scripts.log` under
//! root_dir, in time order, optionally following new output (including deployments that
//! start later) until interrupted.
//!
//! Invariants: reads only; rotated files (`scripts.log.N`, oldest first) come before the live
//! one; while following, a file that is rotated away is read to its end through the open
//! handle before the new file is opened, so no line is lost or printed twice; only complete
//! lines are printed, except that a last line left without a newline is printed once it has
//! stopped growing for a while.

pub mod cli;
pub mod parse;

use crate::cli::LogsArgs;
use crate::config::Config;
use crate::state;
use parse::{Filter, Record, Source, Tracker};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often `--follow` looks for new output and new deployments.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// Rounds a line without newline must stay unchanged before it is printed anyway.
const PARTIAL_ROUNDS: u32 = 4;

/// Runs `logs`, writing to `out`. Returns when done (or, with `--follow`, when `out` is
/// closed); a write error on a closed pipe ends the command quietly.
pub fn run(cfg: &Config, args: &LogsArgs, out: &mut dyn Write) -> io::Result<()> {
    let filter = Filter {
        deployment: args.deployment.clone(),
        group: args.group.clone(),
        event: args.event.clone(),
    };
    let result = if args.follow {
        follow(cfg, &filter, out, None)
    } else {
        print_history(cfg, &filter, out)
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

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn print_records(records: Vec<Record>, filter: &Filter, out: &mut dyn Write) -> io::Result<()> {
    for r in parse::merge(records) {
        if filter.wants(&r) {
            writeln!(out, "{}", parse::render(&r))?;
        }
    }
    out.flush()
}

fn print_history(cfg: &Config, filter: &Filter, out: &mut dyn Write) -> io::Result<()> {
    let mut records = Vec::new();
    for (source, dir) in deployments(&cfg.root_dir, filter) {
        let mut tracker = Tracker::new(source);
        for path in rotated(&dir).into_iter().chain([state::scripts_log(&dir)]) {
            records.extend(parse::parse_all(&mut tracker, &read_lossy(&path)));
        }
    }
    print_records(records, filter, out)
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

    fn drain(&mut self, bytes: &mut Vec<u8>) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.read_to_end(bytes);
        }
    }

    /// New complete lines since the last call.
    fn poll(&mut self) -> Vec<Record> {
        let mut bytes = std::mem::take(&mut self.partial);
        let before = bytes.len();
        if self.file.is_none() {
            self.open();
        }
        self.drain(&mut bytes);
        // Rotation renames the file; finish the old one, then start on the new.
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if self.file.is_some() && current.is_some_and(|ino| ino != self.inode) {
            self.open();
            if let Some(f) = self.file.as_mut() {
                let _ = f.seek(SeekFrom::Start(0));
            }
            self.drain(&mut bytes);
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
        parse::parse_all(&mut self.tracker, &text)
    }
}

/// `logs --follow`: prints the history, then new lines as they are written, until `out`
/// fails or `rounds` (tests) polls have passed.
pub fn follow(
    cfg: &Config,
    filter: &Filter,
    out: &mut dyn Write,
    rounds: Option<u64>,
) -> io::Result<()> {
    let mut tails: BTreeMap<PathBuf, Tail> = BTreeMap::new();
    let mut first = true;
    let mut done = 0u64;
    loop {
        let mut records = Vec::new();
        for (source, dir) in deployments(&cfg.root_dir, filter) {
            let live = state::scripts_log(&dir);
            if !tails.contains_key(&live) {
                let mut tracker = Tracker::new(source);
                if first {
                    for path in rotated(&dir) {
                        records.extend(parse::parse_all(&mut tracker, &read_lossy(&path)));
                    }
                }
                tails.insert(live.clone(), Tail::new(live, tracker));
            }
        }
        for tail in tails.values_mut() {
            records.extend(tail.poll());
        }
        // Deployments pruned by max_revisions are forgotten; a live file that is missing only
        // for a moment (rotation) keeps its tail, whose old handle may still hold lines.
        tails.retain(|path, _| {
            path.parent()
                .and_then(Path::parent)
                .is_some_and(Path::exists)
        });
        print_records(records, filter, out)?;
        first = false;
        done += 1;
        if rounds.is_some_and(|r| done >= r) {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_INTERVAL);
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
        print_history(&cfg(root), &filter, &mut out).unwrap();
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
        let got: Vec<String> = tail.poll().into_iter().map(|r| r.entry).collect();
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
        let got: Vec<String> = tail.poll().into_iter().map(|r| r.entry).collect();
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
            seen.extend(tail.poll().into_iter().map(|r| r.entry));
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
        follow(&cfg(r), &Filter::default(), &mut out, Some(1)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "2024-01-01 00:00:00 [g/d-1] [stdout]first\n"
        );
    }
}
