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

use super::entry::{normalize, EntryHead, Kind};
use super::error::BundleError;
use super::writer::Writer;
use super::UnpackReport;

/// What members are applied to: the [`Writer`] (deploy), or a listing that only records them
/// (`validate`). Both see the same messages from the same producers, so they judge a bundle
/// alike.
pub(crate) trait Sink {
    fn begin(&mut self, head: EntryHead) -> Result<(), BundleError>;
    fn data(&mut self, buf: &[u8]) -> Result<(), BundleError>;
    fn end(&mut self) -> Result<(), BundleError>;
    /// The open member's content from a file of `len` bytes (directory bundles).
    fn data_from_file(&mut self, src: &mut std::fs::File, len: u64) -> Result<(), BundleError>;
    /// Whether the open member's content is wanted at all; when not, a directory walk need not
    /// open the file (a listing keeps only the appspec candidates' bytes).
    fn wants_data(&self) -> bool {
        true
    }
    /// `n` content bytes of the open member that were not read (when not wanted): counted
    /// as if written.
    fn skipped(&mut self, _n: u64) -> Result<(), BundleError> {
        Ok(())
    }
}

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
    /// Answered once every earlier message of this writer is applied.
    Barrier(SyncSender<()>),
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

/// The producer's end: a channel to the writer thread, or the sink itself when running on
/// one thread.
pub struct Tx<'s> {
    inner: TxInner<'s>,
}

enum TxInner<'s> {
    Channel {
        /// One queue per writer thread.
        txs: Vec<SyncSender<Vec<Msg>>>,
        pool: Receiver<Vec<u8>>,
        batch: RefCell<Batch>,
    },
    Direct(Box<RefCell<Direct<'s>>>),
}

/// The batch being filled, for the writer `route`.
#[derive(Default)]
struct Batch {
    msgs: Vec<Msg>,
    bytes: usize,
    route: usize,
    /// The links being applied: everything else waits until they are.
    links: bool,
}

struct Direct<'s> {
    /// None once it failed: nothing more is applied.
    sink: Option<&'s mut dyn Sink>,
    failed: Option<BundleError>,
    spare: Option<Vec<u8>>,
}

impl Tx<'_> {
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
            TxInner::Channel { txs, batch, .. } => {
                if let Msg::Begin(head) = &msg {
                    self.route(txs, batch, head)?;
                }
                let full = {
                    let mut b = batch.borrow_mut();
                    if let Msg::Data(d) = &msg {
                        b.bytes += d.len();
                    }
                    b.msgs.push(msg);
                    b.bytes >= CHUNK || b.msgs.len() >= BATCH_MSGS
                };
                if full {
                    Self::flush_batch(txs, batch)?;
                }
                Ok(())
            }
            TxInner::Direct(d) => {
                let mut d = d.borrow_mut();
                let Some(w) = d.sink.as_mut() else {
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
                    Msg::Barrier(ack) => {
                        let _ = ack.send(());
                        Ok(())
                    }
                };
                res.map_err(|e| {
                    d.sink = None;
                    d.failed = Some(e);
                    Stop::WriterGone
                })
            }
        }
    }
}

impl Tx<'_> {
    fn flush_batch(txs: &[SyncSender<Vec<Msg>>], batch: &RefCell<Batch>) -> Result<(), Stop> {
        let (msgs, route) = {
            let mut b = batch.borrow_mut();
            b.bytes = 0;
            (std::mem::take(&mut b.msgs), b.route)
        };
        if msgs.is_empty() {
            return Ok(());
        }
        txs[route].send(msgs).map_err(|_| Stop::WriterGone)
    }

    /// Chooses the writer of the member `head` begins. Members go by their directory, so the
    /// same name always meets the same writer, in archive order, and writers work in
    /// different directories. Links are the exception: a symlink can change what a later
    /// path walks through and a hard link needs its target written, so links are applied by
    /// one writer with every other writer idle before and after them.
    fn route(
        &self,
        txs: &[SyncSender<Vec<Msg>>],
        batch: &RefCell<Batch>,
        head: &EntryHead,
    ) -> Result<(), Stop> {
        let is_link = matches!(head.kind, Kind::Symlink { .. } | Kind::HardLink { .. });
        let (route, links) = {
            let b = batch.borrow();
            (b.route, b.links)
        };
        let want = if is_link {
            0
        } else {
            writer_for(&head.raw_name, txs.len())
        };
        if is_link != links {
            Self::flush_batch(txs, batch)?;
            barrier(txs)?;
        } else if want != route {
            Self::flush_batch(txs, batch)?;
        }
        let mut b = batch.borrow_mut();
        b.route = want;
        b.links = is_link;
        Ok(())
    }

    /// Hands the last, partly filled batch to its writer.
    fn flush(&self) -> Result<(), Stop> {
        match &self.inner {
            TxInner::Channel { txs, batch, .. } => Self::flush_batch(txs, batch),
            TxInner::Direct(_) => Ok(()),
        }
    }
}

/// The writer for a member: by a hash of its normalised directory.
fn writer_for(raw_name: &[u8], writers: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let Ok(Some(path)) = normalize(raw_name) else {
        return 0;
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.parent().hash(&mut h);
    (h.finish() % writers as u64) as usize
}

/// Waits until every writer has applied everything sent to it so far.
fn barrier(txs: &[SyncSender<Vec<Msg>>]) -> Result<(), Stop> {
    let mut acks = Vec::with_capacity(txs.len());
    for tx in txs {
        let (ack_tx, ack_rx) = sync_channel(1);
        tx.send(vec![Msg::Barrier(ack_tx)])
            .map_err(|_| Stop::WriterGone)?;
        acks.push(ack_rx);
    }
    for ack in acks {
        ack.recv().map_err(|_| Stop::WriterGone)?;
    }
    Ok(())
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
            Msg::Barrier(ack) => {
                let _ = ack.send(());
            }
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
pub fn run<F>(bundle: &Path, mut writer: Writer, produce: F) -> Result<UnpackReport, BundleError>
where
    F: FnOnce(&Tx<'_>) -> Result<(), Stop>,
{
    let internal = |what: &str| BundleError::Unsupported {
        bundle: bundle.to_path_buf(),
        what: format!("internal error: {what}"),
    };
    if !threaded() {
        run_inline(bundle, &mut writer, produce)?;
        return writer.finish();
    }
    let writers = writer.with_siblings(crate::fscopy::copy_threads())?;
    let (pool_tx, pool_rx) = sync_channel(DEPTH + 2);
    let (produced, written) = thread::scope(|s| {
        let mut txs = Vec::with_capacity(writers.len());
        let mut handles = Vec::with_capacity(writers.len());
        for w in writers {
            let (tx, rx) = sync_channel(DEPTH);
            let pool = pool_tx.clone();
            handles.push(s.spawn(move || consume(w, rx, pool)));
            txs.push(tx);
        }
        drop(pool_tx);
        let tx = Tx {
            inner: TxInner::Channel {
                txs,
                pool: pool_rx,
                batch: RefCell::default(),
            },
        };
        let produced = produce(&tx).and_then(|()| tx.flush());
        drop(tx);
        let written: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (produced, written)
    });
    let done = Writer::joined(written, bundle)?;
    match produced {
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::WriterGone) => Err(internal("the writer stopped without an error")),
        Ok(()) => Writer::finish_all(done),
    }
}

/// Runs `produce` with `sink` applying every message on this thread. `Ok` means the producer
/// reached the end of the bundle and the sink took every member; finishing is the caller's.
pub fn run_inline<F>(bundle: &Path, sink: &mut dyn Sink, produce: F) -> Result<(), BundleError>
where
    F: FnOnce(&Tx<'_>) -> Result<(), Stop>,
{
    let tx = Tx {
        inner: TxInner::Direct(Box::new(RefCell::new(Direct {
            sink: Some(sink),
            failed: None,
            spare: None,
        }))),
    };
    let produced = produce(&tx);
    let TxInner::Direct(d) = tx.inner else {
        return Err(internal_error(bundle, "inline sink missing"));
    };
    let d = d.into_inner();
    match (produced, d.failed) {
        (_, Some(e)) => Err(e),
        (Err(Stop::Failed(e)), None) => Err(e),
        (Ok(()), None) => Ok(()),
        (Err(Stop::WriterGone), None) => Err(internal_error(
            bundle,
            "the writer stopped without an error",
        )),
    }
}

fn internal_error(bundle: &Path, what: &str) -> BundleError {
    BundleError::Unsupported {
        bundle: bundle.to_path_buf(),
        what: format!("internal error: {what}"),
    }
}
