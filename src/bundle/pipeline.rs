//! Two threads per unpack: the producer (the calling thread) reads and decompresses the
//! bundle and describes members; the writer thread applies them with [`Writer`]. They are
//! joined by a bounded channel of message batches, so decompression overlaps with the
//! file-system work and memory stays at a few chunks whatever the bundle size. A batch
//! closes at [`CHUNK`] bytes of data or [`BATCH_MSGS`] messages, so a bundle of small files
//! costs one thread wake-up per batch rather than three per file. On one CPU (or when
//! asked) the writer runs inline on the producer's thread instead; the protocol is the same.
//!
//! Invariant: the writer's deferred work (directory modes, times) runs only when the producer
//! reached the end of the bundle without error; a failed or truncated bundle is never reported
//! as unpacked.

use std::cell::RefCell;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

use super::entry::EntryHead;
use super::error::BundleError;
use super::writer::Writer;
use super::UnpackReport;

/// Size of one data chunk. Large enough for few syscalls on big files, small enough that the
/// chunks in flight stay far below the memory target.
pub const CHUNK: usize = 256 * 1024;
/// Batches queued between the threads.
const DEPTH: usize = 4;
/// Messages in one batch at most.
const BATCH_MSGS: usize = 256;

pub enum Msg {
    Begin(EntryHead),
    Data(Vec<u8>),
    End,
}

/// Why the producer stopped early.
pub enum Stop {
    /// The writer hung up; its own error says why.
    WriterGone,
    Failed(BundleError),
}

impl From<BundleError> for Stop {
    fn from(e: BundleError) -> Self {
        Stop::Failed(e)
    }
}

/// The producer's end: a channel to the writer thread, or the writer itself when running on
/// one thread.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Channel {
        tx: SyncSender<Vec<Msg>>,
        pool: Receiver<Vec<u8>>,
        batch: RefCell<Batch>,
    },
    Direct(Box<RefCell<Direct>>),
}

#[derive(Default)]
struct Batch {
    msgs: Vec<Msg>,
    bytes: usize,
}

struct Direct {
    writer: Option<Writer>,
    failed: Option<BundleError>,
    spare: Option<Vec<u8>>,
}

impl Tx {
    /// An empty buffer with room for `n` (at most [`CHUNK`]) bytes. Chunk-sized buffers are
    /// reused when one came back; small pieces get a buffer of their own size, so a batch of
    /// small files does not hold a chunk per file.
    pub fn buffer(&self, n: usize) -> Vec<u8> {
        if n < CHUNK / 4 {
            return Vec::with_capacity(n);
        }
        let reused = match &self.inner {
            TxInner::Channel { pool, .. } => pool.try_recv().ok(),
            TxInner::Direct(d) => d.borrow_mut().spare.take(),
        };
        match reused {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(CHUNK),
        }
    }

    /// Sends everything `r` yields as data chunks of up to [`CHUNK`] bytes (no `End`);
    /// read errors go through `read_err`, which names the bundle and the entry.
    pub fn pump(
        &self,
        r: &mut impl std::io::Read,
        read_err: impl Fn(std::io::Error) -> Stop,
    ) -> Result<(), Stop> {
        loop {
            let mut buf = self.buffer(CHUNK);
            buf.resize(CHUNK, 0);
            let mut got = 0;
            while got < CHUNK {
                match r.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(read_err(e)),
                }
            }
            buf.truncate(got);
            if got > 0 {
                self.send(Msg::Data(buf))?;
            }
            if got < CHUNK {
                return Ok(());
            }
        }
    }

    pub fn send(&self, msg: Msg) -> Result<(), Stop> {
        match &self.inner {
            TxInner::Channel { tx, batch, .. } => {
                let full = {
                    let mut b = batch.borrow_mut();
                    if let Msg::Data(d) = &msg {
                        b.bytes += d.len();
                    }
                    b.msgs.push(msg);
                    b.bytes >= CHUNK || b.msgs.len() >= BATCH_MSGS
                };
                if full {
                    Self::flush_batch(tx, batch)?;
                }
                Ok(())
            }
            TxInner::Direct(d) => {
                let mut d = d.borrow_mut();
                let Some(w) = d.writer.as_mut() else {
                    return Err(Stop::WriterGone);
                };
                let res = match msg {
                    Msg::Begin(head) => w.begin(head),
                    Msg::Data(buf) => {
                        let r = w.data(&buf);
                        d.spare = Some(buf);
                        r
                    }
                    Msg::End => w.end(),
                };
                res.map_err(|e| {
                    d.writer = None;
                    d.failed = Some(e);
                    Stop::WriterGone
                })
            }
        }
    }
}

impl Tx {
    fn flush_batch(tx: &SyncSender<Vec<Msg>>, batch: &RefCell<Batch>) -> Result<(), Stop> {
        let msgs = std::mem::take(&mut *batch.borrow_mut()).msgs;
        if msgs.is_empty() {
            return Ok(());
        }
        tx.send(msgs).map_err(|_| Stop::WriterGone)
    }

    /// Hands the last, partly filled batch to the writer.
    fn flush(&self) -> Result<(), Stop> {
        match &self.inner {
            TxInner::Channel { tx, batch, .. } => Self::flush_batch(tx, batch),
            TxInner::Direct(_) => Ok(()),
        }
    }
}

fn consume(
    mut w: Writer,
    rx: Receiver<Vec<Msg>>,
    pool: SyncSender<Vec<u8>>,
) -> Result<Writer, BundleError> {
    for msg in rx.into_iter().flatten() {
        match msg {
            Msg::Begin(head) => w.begin(head)?,
            Msg::Data(buf) => {
                w.data(&buf)?;
                // Only chunk-sized buffers are worth reusing; a full pool just means the
                // producer has enough.
                if buf.capacity() >= CHUNK {
                    let _ = pool.try_send(buf);
                }
            }
            Msg::End => w.end()?,
        }
    }
    Ok(w)
}

/// Whether a second thread runs the writer; on one CPU the hand-off only costs.
/// `CODEDEPLOY_BUNDLE_INLINE=1` forces one thread (a benchmarking knob; see ADR 0003 for the
/// measurements, which showed no clear winner on a shared 2-CPU host).
fn threaded() -> bool {
    if let Ok(v) = std::env::var("CODEDEPLOY_BUNDLE_INLINE") {
        return v != "1";
    }
    thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// Runs `produce` on this thread and the writer on a scoped thread (or inline on one CPU),
/// then finishes the writer.
pub fn run<F>(bundle: &Path, writer: Writer, produce: F) -> Result<UnpackReport, BundleError>
where
    F: FnOnce(&Tx) -> Result<(), Stop>,
{
    let internal = |what: &str| BundleError::Unsupported {
        bundle: bundle.to_path_buf(),
        what: format!("internal error: {what}"),
    };
    if !threaded() {
        let tx = Tx {
            inner: TxInner::Direct(Box::new(RefCell::new(Direct {
                writer: Some(writer),
                failed: None,
                spare: None,
            }))),
        };
        let produced = produce(&tx);
        let TxInner::Direct(d) = tx.inner else {
            return Err(internal("inline writer missing"));
        };
        let d = d.into_inner();
        return match (produced, d.failed, d.writer) {
            (_, Some(e), _) => Err(e),
            (Err(Stop::Failed(e)), None, _) => Err(e),
            (Ok(()), None, Some(w)) => w.finish(),
            _ => Err(internal("the writer stopped without an error")),
        };
    }
    let (tx, rx) = sync_channel(DEPTH);
    let (pool_tx, pool_rx) = sync_channel(DEPTH + 2);
    let (produced, written) = thread::scope(|s| {
        let handle = s.spawn(move || consume(writer, rx, pool_tx));
        let tx = Tx {
            inner: TxInner::Channel {
                tx,
                pool: pool_rx,
                batch: RefCell::default(),
            },
        };
        let produced = produce(&tx).and_then(|()| tx.flush());
        drop(tx);
        (produced, handle.join())
    });
    // A refusal by the writer is the root cause even if the producer failed afterwards.
    match (produced, written) {
        (_, Err(_)) => Err(internal("the writer thread panicked")),
        (_, Ok(Err(e))) => Err(e),
        (Err(Stop::Failed(e)), Ok(Ok(_))) => Err(e),
        (Err(Stop::WriterGone), Ok(Ok(_))) => Err(internal("the writer stopped without an error")),
        (Ok(()), Ok(Ok(w))) => w.finish(),
    }
}
