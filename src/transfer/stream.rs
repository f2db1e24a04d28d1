//! The bridge between an async download and the synchronous unpacker: the download task sends
//! [`Piece`]s through a bounded channel; [`PieceReader`] is a blocking `Read` over them that
//! can also append every byte to `bundle.tar` (a [`Tee`]: when `keep_bundle_archive` keeps it,
//! or for a zip, which is unpacked from the file), so one pass over the network feeds both the
//! file and the unpacker.
//!
//! Invariants: end of input (`Ok(0)`) is reported only after the task said [`Piece::Done`],
//! i.e. the whole object arrived; a failed download surfaces as a read error while the
//! [`TransferError`] itself is kept for the caller. Memory is bounded by [`DEPTH`] pieces.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::rules;
use super::TransferError;

/// Pieces in flight between the task and the reader. Network reads are at most a few hundred
/// KiB, so this keeps the buffered bytes to a few MiB.
pub const DEPTH: usize = 16;

pub enum Piece {
    /// The object's length as the server announced it, before its first byte.
    Size(u64),
    /// Bytes, and the permit that counts them against a download's memory budget (a ranged
    /// download's window or head room); the reader holds it until it has read them, so bytes
    /// waiting in this channel stay counted.
    Data(Bytes, Option<OwnedSemaphorePermit>),
    Done,
    Failed(TransferError),
}

pub fn channel() -> (mpsc::Sender<Piece>, mpsc::Receiver<Piece>) {
    mpsc::channel(DEPTH)
}

/// Where a copy of the downloaded bytes goes.
pub struct Tee {
    pub file: File,
    pub path: PathBuf,
}

pub struct PieceReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    /// The permit that came with `current`, dropped once `current` is read.
    hold: Option<OwnedSemaphorePermit>,
    tee: Option<Tee>,
    done: bool,
    failed: Option<TransferError>,
    /// The announced length, once the first piece arrived.
    announced: Option<u64>,
    started: bool,
    /// Checks the free space `bundle.tar` takes, as it grows.
    space: Option<crate::space::Guard>,
}

impl PieceReader {
    /// `tee`: where every byte is also written (None: the unpacker gets them only).
    pub fn new(rx: mpsc::Receiver<Piece>, tee: Option<Tee>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
            hold: None,
            tee,
            done: false,
            failed: None,
            announced: None,
            started: false,
            space: None,
        }
    }

    /// Refuses to grow `bundle.tar` into the reserve `guard` keeps.
    pub fn with_space(mut self, guard: crate::space::Guard) -> Self {
        self.space = Some(guard);
        self
    }

    /// The object's length as announced, waiting for the first piece (None: not announced,
    /// or the download failed; the failure then surfaces on the first read).
    pub fn announced_len(&mut self) -> Option<u64> {
        if !self.started {
            self.started = true;
            match self.rx.blocking_recv() {
                Some(Piece::Size(n)) => self.announced = Some(n),
                Some(Piece::Data(b, hold)) => {
                    if let Err(e) = self.tee_write(&b) {
                        self.failed = Some(e);
                    }
                    self.current = b;
                    self.hold = hold;
                }
                Some(Piece::Done) => self.done = true,
                Some(Piece::Failed(e)) => self.failed = Some(e),
                None => {
                    self.failed = Some(TransferError::Internal(
                        "the download task ended without a result".into(),
                    ))
                }
            }
        }
        self.announced
    }

    fn tee_write(&mut self, b: &[u8]) -> Result<(), TransferError> {
        let Some(tee) = &mut self.tee else {
            return Ok(());
        };
        if let Some(g) = &self.space {
            g.wrote(b.len() as u64).map_err(|space| {
                TransferError::Bundle(crate::bundle::BundleError::NoSpace {
                    bundle: tee.path.clone(),
                    entry: String::new(),
                    space: Box::new(space),
                })
            })?;
        }
        tee.file
            .write_all(b)
            .map_err(|source| TransferError::Write {
                path: tee.path.clone(),
                source,
            })
    }

    /// Reads what the unpacker left (tar padding after the end blocks, say) so `bundle.tar` is
    /// whole and the download is known to have completed.
    pub fn finish(mut self) -> Result<(), TransferError> {
        let drained = io::copy(&mut self, &mut io::sink());
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        drained.map_err(|e| TransferError::Internal(format!("draining the download: {e}")))?;
        match &mut self.tee {
            Some(tee) => tee.file.flush().map_err(|source| TransferError::Write {
                path: tee.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// The download's own error, if it failed: the root cause of any unpack read error.
    pub fn take_failure(&mut self) -> Option<TransferError> {
        self.failed.take()
    }

    fn fail(&mut self, e: TransferError) -> io::Error {
        let err = io::Error::other(format!("download failed: {e}"));
        self.failed = Some(e);
        err
    }
}

impl Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.started = true;
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            if self.failed.is_some() {
                return Err(io::Error::other("download failed"));
            }
            match self.rx.blocking_recv() {
                Some(Piece::Size(n)) => self.announced = Some(n),
                Some(Piece::Data(b, hold)) => {
                    if let Err(e) = self.tee_write(&b) {
                        return Err(self.fail(e));
                    }
                    self.current = b;
                    self.hold = hold;
                    crate::failpoint::hit("download");
                }
                Some(Piece::Done) => self.done = true,
                Some(Piece::Failed(e)) => return Err(self.fail(e)),
                None => {
                    let e =
                        TransferError::Internal("the download task ended without a result".into());
                    return Err(self.fail(e));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        if self.current.is_empty() {
            self.hold = None;
        }
        Ok(n)
    }
}

/// One connection's bytes and rate, at debug level: the progress people read (info, STATUS=,
/// deploy-local's bar) is `crate::meter`, counted where the bytes enter the unpacker, so it
/// sums every connection of a ranged download.
pub struct Progress {
    what: String,
    total: Option<u64>,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(what: String) -> Self {
        let now = Instant::now();
        Self {
            what,
            total: None,
            started: now,
            last: now,
        }
    }

    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    pub fn tick(&mut self, received: u64) {
        let now = Instant::now();
        if rules::progress_due(self.total, received, now - self.last) {
            self.last = now;
            let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
            tracing::debug!(
                "downloading {}: {received}{of} bytes, {:.1} MiB/s",
                self.what,
                rules::mib_per_s(received, now - self.started)
            );
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pieces: Vec<Piece>) -> (PieceReader, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.tar");
        let (tx, rx) = channel();
        for p in pieces {
            tx.try_send(p).ok().unwrap();
        }
        let file = File::create(&path).unwrap();
        (PieceReader::new(rx, Some(Tee { file, path })), dir)
    }

    #[test]
    fn reads_in_order_tees_and_ends_only_on_done() {
        let (mut r, dir) = reader(vec![
            Piece::Data(Bytes::from_static(b"hello "), None),
            Piece::Data(Bytes::from_static(b"world"), None),
            Piece::Done,
        ]);
        let mut head = [0u8; 3];
        r.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"hel");
        // The rest is drained by finish(), so bundle.tar is whole.
        r.finish().unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("bundle.tar")).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn a_failed_download_is_a_read_error_and_keeps_its_cause() {
        let (mut r, _dir) = reader(vec![
            Piece::Data(Bytes::from_static(b"part"), None),
            Piece::Failed(TransferError::Internal("cut".into())),
        ]);
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err());
        assert_eq!(all, b"part");
        assert!(matches!(r.take_failure(), Some(TransferError::Internal(m)) if m == "cut"));
    }

    #[test]
    fn a_piece_keeps_its_permit_until_it_is_read() {
        let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
        let permit = |n| budget.clone().try_acquire_many_owned(n).ok();
        let (mut r, _dir) = reader(vec![
            Piece::Data(Bytes::from_static(b"abcd"), permit(4)),
            Piece::Data(Bytes::from_static(b"efgh"), permit(4)),
            Piece::Done,
        ]);
        assert_eq!(budget.available_permits(), 0);
        let mut two = [0u8; 2];
        r.read_exact(&mut two).unwrap();
        assert_eq!(
            budget.available_permits(),
            0,
            "half of the first piece is unread"
        );
        r.read_exact(&mut two).unwrap();
        assert_eq!(budget.available_permits(), 4, "the first piece is read");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"efgh");
        assert_eq!(budget.available_permits(), 8);
    }

    #[test]
    fn a_vanished_task_is_not_an_end_of_input() {
        let (mut r, _dir) = reader(vec![Piece::Data(Bytes::from_static(b"x"), None)]);
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err());
        assert!(r.finish().is_err());
    }
}
