//! deploy-local's view of long downloads and installs: a progress bar (indicatif) on stderr
//! when stderr is a terminal, else plain lines on stderr, every few seconds
//! (`crate::meter` decides when; `crate::progress` writes the text).
//!
//! Invariant: stdout keeps its one line per event. On a terminal the bar shares the line the
//! event's name was printed on, so once it is cleared the name is printed again (only when
//! stdout is that terminal too).

use crate::meter::{Job, ProgressSink};
use crate::progress::{self, Snapshot};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// The sink for this process's stderr: a bar on a terminal, plain lines elsewhere.
pub fn for_stderr() -> Box<dyn ProgressSink> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar {
            bar: Mutex::new(None),
            stdout_shared: std::io::stdout().is_terminal(),
        })
    } else {
        Box::new(Lines)
    }
}

/// `  DownloadBundle: downloading s3://b/k: 412.0 MiB of 2.0 GiB (20 %), 85.3 MiB/s, about 19 s left`
pub struct Lines;

impl ProgressSink for Lines {
    fn report(&self, job: &Job, s: &Snapshot, finished: bool) {
        let end = if finished { " (done)" } else { "" };
        eprintln!("  {}: {}: {}{end}", job.event, job.what, progress::line(s));
    }
}

struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    stdout_shared: bool,
}

impl ProgressSink for Bar {
    fn report(&self, job: &Job, s: &Snapshot, finished: bool) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if finished {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
                if self.stdout_shared {
                    // The cleared line held the event's name: print it again for the result.
                    print!("  {:<20}", job.event);
                    let _ = std::io::stdout().flush();
                }
            }
            return;
        }
        let bar = slot.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The text is ours (crate::progress); indicatif draws, sizes and clears the bar.
            if let Ok(style) = ProgressStyle::with_template("  {prefix} [{bar:30}] {msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(job.event.clone());
            bar
        });
        match (s.total_bytes, s.total_files) {
            (Some(total), _) => {
                bar.set_length(total);
                bar.set_position(s.bytes);
            }
            (None, Some(files)) => {
                bar.set_length(files);
                bar.set_position(s.files);
            }
            (None, None) => {}
        }
        bar.set_message(format!("{}: {}", job.what, progress::line(s)));
    }
}
