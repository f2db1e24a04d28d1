//! The daemon's journald writer: a `tracing` layer that sends each event as one datagram of
//! systemd's native journal protocol (`NAME=value` lines; a value with a newline is sent as
//! `NAME`, newline, its length as 64-bit little-endian, the bytes, newline).
//!
//! Our own, not `tracing-journald`, for two reasons: the priority depends on the target as
//! well as the level (hook output is `info`, 6, while the agent's own INFO records are
//! `notice`, 5, see [`priority`]), and the socket can be pointed elsewhere for tests
//! ([`SOCKET_ENV`], a test aid like `CODEDEPLOY_FAILPOINT`).
//!
//! Invariants: every event carries PRIORITY, SYSLOG_IDENTIFIER, MESSAGE, TARGET, CODE_FILE,
//! CODE_LINE, the fields of its spans (root first) and its own fields, names upper-cased
//! (`deployment_id` → `DEPLOYMENT_ID`); a datagram too large for the socket is sent again
//! with its MESSAGE cut to [`MAX_MESSAGE`] bytes; a send that fails is dropped (logging never
//! stops the agent).

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// TEST AID: the journal socket to use instead of [`super::JOURNAL_SOCKET`]. Tests bind a
/// datagram socket and count what the agent sends (tests/bin_ops_journal.rs).
pub const SOCKET_ENV: &str = "CODEDEPLOY_JOURNAL_SOCKET";
/// A MESSAGE longer than this is cut when the whole datagram does not fit the socket (the
/// whole line is in scripts.log).
pub const MAX_MESSAGE: usize = 48 * 1024;

/// The journal socket: [`SOCKET_ENV`] when set, else systemd's.
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(super::JOURNAL_SOCKET))
}

/// PURE: the syslog priority of an event. Hook output is `info` (6); the agent's own INFO
/// records are `notice` (5), so `journalctl -p notice` shows the agent without its hooks'
/// output; warnings 4, errors 3, debug and trace 7.
pub fn priority(level: &Level, target: &str) -> u8 {
    if target == super::HOOK_OUTPUT_TARGET {
        return 6;
    }
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 5,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// PURE: a journal field name from a `tracing` field name: upper case, `[A-Z0-9_]` only, no
/// leading underscore (those are journald's trusted fields).
pub fn field_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches('_');
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) || trimmed.is_empty() {
        format!("F_{trimmed}")
    } else {
        trimmed.to_string()
    }
}

/// PURE: appends one field in the native protocol.
pub fn put_field(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// Fields of a span, already encoded, kept in the span's extensions.
struct SpanFields(Vec<u8>);

/// Collects the fields of an event or span; `message` is kept apart.
#[derive(Default)]
struct Collect {
    buf: Vec<u8>,
    message: Option<String>,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            put_field(&mut self.buf, &field_name(field.name()), value.as_bytes());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

/// The layer. Built by [`JournalLayer::connect`], which fails when nobody listens.
pub struct JournalLayer {
    socket: UnixDatagram,
    path: PathBuf,
    identifier: String,
}

impl JournalLayer {
    /// Opens an unbound datagram socket and checks that `path` takes an (empty) datagram,
    /// which journald discards.
    pub fn connect(path: &Path, identifier: &str) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.send_to(&[], path)?;
        Ok(Self {
            socket,
            path: path.to_path_buf(),
            identifier: identifier.to_string(),
        })
    }

    fn send(&self, head: &[u8], message: &str, tail: &[u8]) {
        let build = |message: &str| {
            let mut buf = head.to_vec();
            put_field(&mut buf, "MESSAGE", message.as_bytes());
            buf.extend_from_slice(tail);
            buf
        };
        if let Err(e) = self.socket.send_to(&build(message), &self.path) {
            if e.raw_os_error() == Some(libc::EMSGSIZE) && message.len() > MAX_MESSAGE {
                let mut cut = MAX_MESSAGE;
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                let short = format!(
                    "{} [cut; the whole line is in scripts.log]",
                    &message[..cut]
                );
                let _ = self.socket.send_to(&build(&short), &self.path);
            }
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut c = Collect::default();
        attrs.record(&mut c);
        span.extensions_mut().insert(SpanFields(c.buf));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut c = Collect::default();
        values.record(&mut c);
        let mut ext = span.extensions_mut();
        if let Some(f) = ext.get_mut::<SpanFields>() {
            f.0.extend_from_slice(&c.buf);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut head = Vec::with_capacity(256);
        put_field(
            &mut head,
            "PRIORITY",
            priority(meta.level(), meta.target()).to_string().as_bytes(),
        );
        put_field(&mut head, "SYSLOG_IDENTIFIER", self.identifier.as_bytes());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    head.extend_from_slice(&f.0);
                }
            }
        }
        let mut c = Collect::default();
        event.record(&mut c);
        head.extend_from_slice(&c.buf);
        let mut tail = Vec::with_capacity(128);
        put_field(&mut tail, "TARGET", meta.target().as_bytes());
        if let Some(file) = meta.file() {
            put_field(&mut tail, "CODE_FILE", file.as_bytes());
        }
        if let Some(line) = meta.line() {
            put_field(&mut tail, "CODE_LINE", line.to_string().as_bytes());
        }
        self.send(&head, c.message.as_deref().unwrap_or(""), &tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        use super::super::HOOK_OUTPUT_TARGET;
        assert_eq!(priority(&Level::INFO, HOOK_OUTPUT_TARGET), 6);
        assert_eq!(priority(&Level::INFO, "codedeploy_agent::agent"), 5);
        assert_eq!(priority(&Level::WARN, "codedeploy_agent::agent"), 4);
        assert_eq!(priority(&Level::ERROR, "codedeploy_agent::agent"), 3);
        assert_eq!(priority(&Level::DEBUG, "x"), 7);
        // The summary of left-out lines is the agent's own record.
        assert_eq!(
            priority(&Level::INFO, super::super::HOOK_OUTPUT_SUMMARY_TARGET),
            5
        );
    }

    #[test]
    fn names_and_encoding() {
        assert_eq!(field_name("deployment_id"), "DEPLOYMENT_ID");
        assert_eq!(field_name("_secret"), "SECRET");
        assert_eq!(field_name("a.b-c"), "A_B_C");
        assert_eq!(field_name("9x"), "F_9X");
        let mut b = Vec::new();
        put_field(&mut b, "A", b"one");
        put_field(&mut b, "B", b"x\ny");
        let mut want = b"A=one\nB\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"x\ny\n");
        assert_eq!(b, want);
    }

    #[test]
    fn sends_fields_of_spans_and_events() {
        use tracing_subscriber::layer::SubscriberExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let layer = JournalLayer::connect(&path, "codedeploy-agent").unwrap();
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("command", deployment_id = "d-1");
            let _e = span.enter();
            tracing::info!(target: super::super::HOOK_OUTPUT_TARGET, script = "a.sh", "[stdout]hi");
        });
        let mut buf = vec![0u8; 65536];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(n, 0, "the connect probe");
        let n = rx.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        for want in [
            "PRIORITY=6\n",
            "SYSLOG_IDENTIFIER=codedeploy-agent\n",
            "DEPLOYMENT_ID=d-1\n",
            "SCRIPT=a.sh\n",
            "MESSAGE=[stdout]hi\n",
            "TARGET=codedeploy_agent::hook_output\n",
        ] {
            assert!(text.contains(want), "{want:?} missing from {text:?}");
        }
    }
}
