//! Two threads per unpack: the producer (the calling thread) reads and decompresses the
//! bundle and describes members; the writer thread applies them with [`Writer`]. They are
//! joined by a bounded channel of buffers, so decompression overlaps with the file-system
//! work and memory stays at a few chunks whatever the bundle size.
//!
//! Invariant: the writer's deferred work (directory modes, times) runs only when the producer
//! reached the end of the bundle without error; a failed or truncated bundle is never reported
//! as unpacked.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread;

use super::entry::EntryHead;
use super::error::BundleError;
use super::writer::Writer;
use super::UnpackReport;

/// Size of one data chunk. Large enough for few syscalls on big files, small enough that the
/// chunks in flight stay far below the memory target.
pub const CHUNK: usize = 256 * 1024;
/// Chunks queued between the threads.
const DEPTH: usize = 4;

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

/// The producer's end of the channel, with a pool of returned buffers.
pub struct Tx {
    tx: SyncSender<Msg>,
    pool: Receiver<Vec<u8>>,
}

impl Tx {
    /// An empty buffer with room for [`CHUNK`] bytes, reused when one came back.
    pub fn buffer(&self) -> Vec<u8> {
        match self.pool.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        }
    }

    pub fn send(&self, msg: Msg) -> Result<(), Stop> {
        self.tx.send(msg).map_err(|_| Stop::WriterGone)
    }
}

fn consume(
    mut w: Writer,
    rx: Receiver<Msg>,
    pool: SyncSender<Vec<u8>>,
) -> Result<Writer, BundleError> {
    for msg in rx {
        match msg {
            Msg::Begin(head) => w.begin(head)?,
            Msg::Data(buf) => {
                w.data(&buf)?;
                // A full pool just means the producer has enough; drop the spare.
                let _ = pool.try_send(buf);
            }
            Msg::End => w.end()?,
        }
    }
    Ok(w)
}

/// Runs `produce` on this thread and the writer on a scoped thread, then finishes the writer.
pub fn run<F>(bundle: &Path, writer: Writer, produce: F) -> Result<UnpackReport, BundleError>
where
    F: FnOnce(&Tx) -> Result<(), Stop>,
{
    let (tx, rx) = sync_channel(DEPTH);
    let (pool_tx, pool_rx) = sync_channel(DEPTH + 2);
    let (produced, written) = thread::scope(|s| {
        let handle = s.spawn(move || consume(writer, rx, pool_tx));
        let tx = Tx { tx, pool: pool_rx };
        let produced = produce(&tx);
        drop(tx);
        (produced, handle.join())
    });
    let internal = |what: &str| BundleError::Unsupported {
        bundle: bundle.to_path_buf(),
        what: format!("internal error: {what}"),
    };
    // A refusal by the writer is the root cause even if the producer failed afterwards.
    match (produced, written) {
        (_, Err(_)) => Err(internal("the writer thread panicked")),
        (_, Ok(Err(e))) => Err(e),
        (Err(Stop::Failed(e)), Ok(Ok(_))) => Err(e),
        (Err(Stop::WriterGone), Ok(Ok(_))) => Err(internal("the writer stopped without an error")),
        (Ok(()), Ok(Ok(w))) => w.finish(),
    }
}
