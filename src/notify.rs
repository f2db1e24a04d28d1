//! The systemd notification protocol (sd_notify): READY, STATUS, STOPPING and WATCHDOG
//! datagrams sent to `$NOTIFY_SOCKET`.
//!
//! Invariants: every call is a no-op when `$NOTIFY_SOCKET` is unset (a terminal, a container,
//! a test), and a failed send is logged at debug level, never returned: the service manager
//! being away must not stop a deployment. The environment is read, never changed, because
//! hooks get a cleaned environment of their own (`hooks::STRIPPED_VARS`).

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Tells the service manager that start-up (identity, crash recovery) is complete.
pub fn ready() {
    send_env("READY=1");
}

/// One line of free text shown by `systemctl status` (see [`crate::status::status_line`]).
pub fn status(text: &str) {
    send_env(&format!("STATUS={}", one_line(text)));
}

/// Tells the service manager that the agent is shutting down (after SIGTERM).
pub fn stopping() {
    send_env("STOPPING=1");
}

/// Feeds the watchdog; call at least every [`watchdog_interval`].
pub fn watchdog() {
    send_env("WATCHDOG=1");
}

/// How often [`watchdog`] must be called: half of `$WATCHDOG_USEC` (systemd's advice), or
/// `None` when the watchdog is off or meant for another process (`$WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// The pure part of [`watchdog_interval`].
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// STATUS= must be one line; the protocol separates assignments with newlines.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn send_env(message: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&socket, message) {
        tracing::debug!("sd_notify {message:?} to {socket:?} failed: {e}");
    }
}

/// Sends one notification datagram to `socket`: a file-system path, or an abstract-namespace
/// name written with a leading `@`.
pub fn send_to(socket: &OsStr, message: &str) -> io::Result<()> {
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

fn socket_addr(socket: &OsStr) -> io::Result<SocketAddr> {
    let bytes = socket.as_encoded_bytes();
    match bytes.split_first() {
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)
        }
        Some((b'/', _)) => SocketAddr::from_pathname(socket),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is neither an absolute path nor an abstract name (@...)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        assert_eq!(recv(&sock), "READY=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("codedeploy-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(OsStr::new(&format!("@{name}")), "STATUS=idle, polling").unwrap();
        assert_eq!(recv(&sock), "STATUS=idle, polling");
    }

    #[test]
    fn relative_socket_is_refused() {
        assert!(send_to(OsStr::new("notify"), "READY=1").is_err());
        assert!(send_to(OsStr::new(""), "READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_is_half_and_respects_pid() {
        assert_eq!(
            watchdog_interval_from(Some("600000000"), None, 7),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            watchdog_interval_from(Some("600000000"), Some("7"), 7),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            watchdog_interval_from(Some("600000000"), Some("8"), 7),
            None
        );
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, 7), None);
    }

    #[test]
    fn status_text_is_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), "a b  c");
    }
}
