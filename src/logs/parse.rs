//! PURE: scripts.log lines (docs/behaviour/hooks.md#scripts-log) -> records that know their
//! deployment, event and script, the filters of `logs`, and the printed form.
//!
//! Invariants: each file's own order is kept (files are merged by their second-resolution
//! time, never sorted within); a line without a time stamp (the continuation of an output
//! line that had no newline) takes the time and context of the line before it; merging holds
//! one record per file, whatever the files' length.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub group: String,
    pub deployment: String,
}

/// One line of a scripts.log with its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `YYYY-MM-DD HH:MM:SS` (sorts as text); empty before the first stamped line.
    pub time: String,
    pub group: String,
    pub deployment: String,
    pub event: Option<String>,
    pub script: Option<String>,
    /// The entry after the time stamp: `LifecycleEvent - X`, `Script - s`, `[stdout]...`.
    pub entry: String,
}

/// Which records `logs` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub deployment: Option<String>,
    pub group: Option<String>,
    pub event: Option<String>,
}

impl Filter {
    pub fn wants_source(&self, group: &str, deployment: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
            && self.deployment.as_deref().is_none_or(|d| d == deployment)
    }
    /// Event names are compared without regard to case: operators type `afterinstall`.
    pub fn wants(&self, r: &Record) -> bool {
        self.wants_source(&r.group, &r.deployment)
            && self.event.as_deref().is_none_or(|e| {
                r.event
                    .as_deref()
                    .is_some_and(|have| have.eq_ignore_ascii_case(e))
            })
    }
}

/// Splits `YYYY-MM-DD HH:MM:SS rest` into its time and rest.
pub fn split_time(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let shape_ok = b[..19].iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b' ',
        13 | 16 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let rest = &line[19..];
    Some((&line[..19], rest.strip_prefix(' ').unwrap_or(rest)))
}

/// Reads one file's lines in order and remembers the current event and script.
#[derive(Debug, Clone)]
pub struct Tracker {
    source: Source,
    time: String,
    event: Option<String>,
    script: Option<String>,
}

impl Tracker {
    pub fn new(source: Source) -> Self {
        Self {
            source,
            time: String::new(),
            event: None,
            script: None,
        }
    }

    /// One line without its newline.
    pub fn feed(&mut self, line: &str) -> Record {
        let entry = match split_time(line) {
            Some((time, rest)) => {
                self.time = time.to_string();
                rest
            }
            None => line,
        };
        if let Some(event) = entry.strip_prefix("LifecycleEvent - ") {
            self.event = Some(event.trim_end().to_string());
            self.script = None;
        } else if let Some(script) = entry.strip_prefix("Script - ") {
            self.script = Some(script.trim_end().to_string());
        }
        Record {
            time: self.time.clone(),
            group: self.source.group.clone(),
            deployment: self.source.deployment.clone(),
            event: self.event.clone(),
            script: self.script.clone(),
            entry: entry.to_string(),
        }
    }
}

/// Every line of `text` (the last may lack its newline).
pub fn parse_all(tracker: &mut Tracker, text: &str) -> Vec<Record> {
    text.lines().map(|l| tracker.feed(l)).collect()
}

/// `2024-05-01 10:11:12 [group/d-ABC123] [stdout]hello`
pub fn render(r: &Record) -> String {
    format!("{} [{}/{}] {}", r.time, r.group, r.deployment, r.entry)
}

/// Merges record streams (one per deployment) by time, keeping each stream's own order;
/// on equal times the earlier stream goes first. Holds one record per stream.
pub struct Merge<I: Iterator<Item = Record>> {
    streams: Vec<I>,
    heads: Vec<Option<Record>>,
    /// (time of the stream's head, stream index), smallest first.
    order: BinaryHeap<Reverse<(String, usize)>>,
}

impl<I: Iterator<Item = Record>> Merge<I> {
    pub fn new(mut streams: Vec<I>) -> Self {
        let mut heads = Vec::with_capacity(streams.len());
        let mut order = BinaryHeap::new();
        for (i, s) in streams.iter_mut().enumerate() {
            let head = s.next();
            if let Some(r) = &head {
                order.push(Reverse((r.time.clone(), i)));
            }
            heads.push(head);
        }
        Self {
            streams,
            heads,
            order,
        }
    }

    /// The streams back (all exhausted once the merge returned `None`).
    pub fn into_streams(self) -> Vec<I> {
        self.streams
    }
}

impl<I: Iterator<Item = Record>> Iterator for Merge<I> {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        let Reverse((_, i)) = self.order.pop()?;
        let record = self.heads[i].take()?;
        if let Some(next) = self.streams[i].next() {
            self.order.push(Reverse((next.time.clone(), i)));
            self.heads[i] = Some(next);
        }
        Some(record)
    }
}

/// The last `n` items of a sequence, holding at most `n` (as `tail -n`). The sequence is
/// always consumed to its end, also for `n == 0` (`--follow` goes on from there).
pub fn last_n<T>(items: impl Iterator<Item = T>, n: usize) -> VecDeque<T> {
    let mut kept = VecDeque::with_capacity(n.min(4096));
    for item in items {
        if n == 0 {
            continue;
        }
        if kept.len() == n {
            kept.pop_front();
        }
        kept.push_back(item);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(g: &str, d: &str) -> Source {
        Source {
            group: g.into(),
            deployment: d.into(),
        }
    }

    const LOG: &str = "2024-05-01 10:00:00 LifecycleEvent - BeforeInstall\n\
2024-05-01 10:00:00 Script - a.sh\n\
2024-05-01 10:00:01 [stdout]one\n\
2024-05-01 10:00:02 LifecycleEvent - AfterInstall\n\
2024-05-01 10:00:02 Script - b.sh\n\
2024-05-01 10:00:03 [stderr]two\n\
continued\n";

    #[test]
    fn tracks_event_and_script() {
        let recs = parse_all(&mut Tracker::new(src("g", "d-1")), LOG);
        assert_eq!(recs.len(), 7);
        assert_eq!(recs[2].event.as_deref(), Some("BeforeInstall"));
        assert_eq!(recs[2].script.as_deref(), Some("a.sh"));
        assert_eq!(recs[2].entry, "[stdout]one");
        assert_eq!(recs[3].script, None);
        assert_eq!(recs[5].script.as_deref(), Some("b.sh"));
        assert_eq!(recs[6].time, "2024-05-01 10:00:03");
        assert_eq!(recs[6].entry, "continued");
        assert_eq!(render(&recs[5]), "2024-05-01 10:00:03 [g/d-1] [stderr]two");
    }

    #[test]
    fn filters() {
        let recs = parse_all(&mut Tracker::new(src("g", "d-1")), LOG);
        let f = Filter {
            event: Some("afterinstall".into()),
            ..Filter::default()
        };
        let kept: Vec<&str> = recs
            .iter()
            .filter(|r| f.wants(r))
            .map(|r| r.entry.as_str())
            .collect();
        assert_eq!(
            kept,
            [
                "LifecycleEvent - AfterInstall",
                "Script - b.sh",
                "[stderr]two",
                "continued"
            ]
        );
        let f = Filter {
            group: Some("other".into()),
            ..Filter::default()
        };
        assert!(!recs.iter().any(|r| f.wants(r)));
        let f = Filter {
            deployment: Some("d-1".into()),
            group: Some("g".into()),
            event: None,
        };
        assert!(recs.iter().all(|r| f.wants(r)));
    }

    fn merged(files: &[(&str, &str)]) -> Vec<String> {
        let streams: Vec<_> = files
            .iter()
            .map(|(dep, text)| parse_all(&mut Tracker::new(src("g", dep)), text).into_iter())
            .collect();
        Merge::new(streams).map(|r| r.entry).collect()
    }

    #[test]
    fn merge_interleaves_by_time_and_keeps_file_order() {
        let order = merged(&[
            (
                "d-1",
                "2024-05-01 10:00:00 [stdout]a1\n2024-05-01 10:00:05 [stdout]a2\n",
            ),
            (
                "d-2",
                "2024-05-01 10:00:03 [stdout]b1\n2024-05-01 10:00:05 [stdout]b2\n",
            ),
        ]);
        assert_eq!(
            order,
            ["[stdout]a1", "[stdout]b1", "[stdout]a2", "[stdout]b2"]
        );
    }

    #[test]
    fn merge_never_reorders_within_a_file() {
        // A clock set back inside one file: its lines stay in the file's order.
        let order = merged(&[
            (
                "d-1",
                "2024-05-01 10:00:09 [stdout]late\n2024-05-01 10:00:01 [stdout]after\n",
            ),
            ("d-2", "2024-05-01 10:00:05 [stdout]middle\n"),
            ("d-3", ""),
        ]);
        assert_eq!(order, ["[stdout]middle", "[stdout]late", "[stdout]after"]);
        assert!(merged(&[]).is_empty());
    }

    #[test]
    fn last_n_keeps_the_end() {
        assert_eq!(last_n(1..=10, 3), [8, 9, 10]);
        assert_eq!(last_n(1..=2, 3), [1, 2]);
        let mut seen = 0;
        assert!(last_n((1..=10).inspect(|_| seen += 1), 0).is_empty());
        assert_eq!(seen, 10, "consumed to the end");
    }

    #[test]
    fn time_shape() {
        assert_eq!(
            split_time("2024-05-01 10:00:00 x"),
            Some(("2024-05-01 10:00:00", "x"))
        );
        assert_eq!(split_time("2024-05-01T10:00:00 x"), None);
        assert_eq!(split_time("short"), None);
        assert_eq!(split_time("2024-05-01 10:00:0é"), None);
    }
}
