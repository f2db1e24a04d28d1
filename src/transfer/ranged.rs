//! Parallel ranged GETs of one S3 object (docs/adr/0006-bundle-transfer.md, "Parallel
//! ranges"): `connections` part tasks fetch `part_size` ranges of the pinned object while the
//! orchestrator passes the parts on to the unpacker strictly in order.
//!
//! Pinning: the first response (the first part, or for a zip its last bytes) fixes the ETag and
//! the length; every later request carries the deployment's `VersionId` when it named one and
//! `If-Match: <ETag>`, and every response must carry the same ETag and a `Content-Range` of
//! exactly the bytes asked for, of an object of the same length. A 412 or a differing answer
//! means the object changed: the download stops with [`TransferError::Changed`].
//!
//! Invariants: bytes reach the unpacker once, in order. Memory: the part being unpacked streams
//! through; the bytes of parts ahead of it that wait are bounded by the window
//! ([`parts::window_bytes`]) — a part task takes window permits for each chunk before reading
//! the next, so a full window stops its socket reads (TCP flow control), except for the part
//! being unpacked, which never waits for the window (no deadlock) but for a small head room
//! that the unpacker's progress frees. Each chunk is a copy that keeps its permit until the
//! unpacker has read it, so everything buffered is counted. A failed part is retried alone,
//! from the byte where it stopped, a bounded number of times with spread delays. The body is
//! checked against its ETag as S3 defines it (MD5 of a single-part object without SSE-KMS/C;
//! the part count of a multipart one) before the end of input is reported.

use std::collections::VecDeque;
use std::sync::Arc;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::mpsc::{self, Sender, UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::parts::{self, EtagKind};
use super::s3::{Object, S3};
use super::stream::{Piece, Progress};
use super::{rules, TransferError, Tuning};
use crate::deployspec::BundleType;

/// How a ranged download ended.
pub enum Outcome {
    /// Every byte was passed on and checked.
    Done,
    /// The reader went away (the unpacker stopped); nothing more to do.
    ReaderGone,
    /// S3 would not serve a range (an empty object answers 416): use one plain GET.
    Plain,
}

/// The object as the first response showed it.
#[derive(Debug, Clone)]
struct Pin {
    etag: String,
    total: u64,
}

enum PartMsg {
    /// A chunk, with the window or head-room permits it holds until it is passed on.
    Data(Bytes, OwnedSemaphorePermit),
    Done {
        retries: u32,
    },
    Failed(TransferError),
}

/// What every part task shares.
struct Shared {
    s3: S3,
    obj: Object,
    tuning: Tuning,
    pin: Pin,
    window: Arc<Semaphore>,
    window_bytes: u64,
    head_room: Arc<Semaphore>,
    head: watch::Receiver<u64>,
}

impl S3 {
    /// Downloads `obj` in parts into `tx`; see the module docs.
    pub(super) async fn ranged(
        &self,
        obj: &Object,
        tuning: &Tuning,
        kind: BundleType,
        tx: &Sender<Piece>,
    ) -> Result<Outcome, TransferError> {
        let part_size = tuning.s3_part_size.max(1);
        let connections = tuning.s3_connections.max(1);
        let mut progress = Progress::new(format!("s3://{}/{}", obj.bucket, obj.key));
        // The first response pins the object. For a zip it is the object's last bytes, whose
        // end record is checked before any part is fetched; else it is the first part.
        let first_range = match kind {
            BundleType::Zip => parts::zip_tail_header(),
            _ => parts::header(0, part_size - 1),
        };
        let out = match self.get_range(obj, first_range, None).await {
            Ok(out) => out,
            Err(e) if e.status == Some(416) => return Ok(Outcome::Plain),
            Err(e) => return Err(e.error),
        };
        let etag = out.e_tag().unwrap_or("").to_string();
        if let Some(expected) = &obj.etag {
            if !rules::etag_matches(expected, &etag) {
                return Err(TransferError::EtagMismatch {
                    expected: expected.clone(),
                    actual: etag,
                });
            }
        }
        let Some((first, _, total)) = parts::content_range(out.content_range()) else {
            // A server that ignored the range sent the whole object: one GET it is.
            return Ok(Outcome::Plain);
        };
        let kind_of_etag = parts::etag_kind(
            &etag,
            parts::etag_is_not_md5(
                out.server_side_encryption().map(|s| s.as_str()),
                out.sse_customer_algorithm().is_some(),
            ),
        );
        if let EtagKind::Multipart(n) = kind_of_etag {
            if let Some(why) = parts::multipart_fits(n, total) {
                return Err(self.integrity(obj, format!("its ETag {etag} is not S3's: {why}")));
            }
        }
        let pin = Pin { etag, total };
        progress.set_total(Some(total));
        if tx.send(Piece::Size(total)).await.is_err() {
            return Ok(Outcome::ReaderGone);
        }
        let mut initial = Some(out);
        if kind == BundleType::Zip {
            let Some(tail) = initial.take() else {
                return Err(TransferError::Internal("no first response".into()));
            };
            let bytes = tail
                .body
                .collect()
                .await
                .map_err(|e| self.failure(obj, DisplayErrorContext(&e).to_string()))?
                .into_bytes();
            let index = parts::zip_index(&bytes, first, total)
                .map_err(|why| self.failure(obj, format!("not a zip bundle: {why}")))?;
            tracing::debug!(
                "zip index of s3://{}/{}: {:?} members, end record at {}",
                obj.bucket,
                obj.key,
                index.entries,
                index.end_record
            );
        }

        let n = parts::count(total, part_size);
        let window_bytes = parts::window_bytes(connections, part_size);
        let window = Arc::new(Semaphore::new(
            usize::try_from(window_bytes).unwrap_or(Semaphore::MAX_PERMITS),
        ));
        let (head_tx, head_rx) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            s3: self.clone(),
            obj: obj.clone(),
            tuning: tuning.clone(),
            pin: pin.clone(),
            window,
            window_bytes,
            head_room: Arc::new(Semaphore::new(HEAD_ROOM as usize)),
            head: head_rx,
        });
        let conns = Arc::new(Semaphore::new(connections));
        let ahead = parts::parts_ahead(connections);
        // Dropping the set (on any return) aborts the part tasks still running.
        let mut tasks = JoinSet::new();
        let mut queue: VecDeque<UnboundedReceiver<PartMsg>> = VecDeque::new();
        let mut head: u64 = 0;
        let mut next: u64 = 0;
        let mut hasher = matches!(kind_of_etag, EtagKind::Md5(_)).then(Md5::new);
        let mut passed: u64 = 0;
        let mut retries: u32 = 0;

        while head < n {
            // Reap finished part tasks, so the set stays as small as the parts in flight.
            while tasks.try_join_next().is_some() {}
            while next < n && next < head + ahead {
                let Ok(permit) = conns.clone().try_acquire_owned() else {
                    break;
                };
                start(
                    &mut tasks,
                    &mut queue,
                    &shared,
                    next,
                    permit,
                    initial.take(),
                );
                next += 1;
            }
            let can_start = next < n && next < head + ahead;
            let Some(front) = queue.front_mut() else {
                return Err(TransferError::Internal("no part in flight".into()));
            };
            let event = tokio::select! {
                msg = front.recv() => Event::Msg(msg),
                permit = conns.clone().acquire_owned(), if can_start => Event::Free(permit),
            };
            let msg = match event {
                Event::Msg(msg) => msg,
                Event::Free(permit) => {
                    let permit = permit.map_err(|e| TransferError::Internal(e.to_string()))?;
                    start(
                        &mut tasks,
                        &mut queue,
                        &shared,
                        next,
                        permit,
                        initial.take(),
                    );
                    next += 1;
                    continue;
                }
            };
            match msg {
                Some(PartMsg::Data(bytes, permit)) => {
                    if let Some(h) = &mut hasher {
                        h.update(&bytes);
                    }
                    passed += bytes.len() as u64;
                    progress.tick(passed);
                    if tx.send(Piece::Data(bytes, Some(permit))).await.is_err() {
                        return Ok(Outcome::ReaderGone);
                    }
                }
                Some(PartMsg::Done { retries: r }) => {
                    retries += r;
                    queue.pop_front();
                    head += 1;
                    let _ = head_tx.send(head);
                }
                Some(PartMsg::Failed(e)) => return Err(e),
                None => {
                    return Err(TransferError::Internal(format!(
                        "part {head} of s3://{}/{} ended without a result",
                        obj.bucket, obj.key
                    )))
                }
            }
        }
        if passed != total {
            return Err(TransferError::Internal(format!(
                "passed {passed} of {total} bytes on"
            )));
        }
        if let (Some(h), EtagKind::Md5(want)) = (hasher, &kind_of_etag) {
            let got: [u8; 16] = h.finalize().into();
            if &got != want {
                return Err(self.integrity(
                    obj,
                    format!(
                        "the body's MD5 is {} but its ETag {} says {}",
                        parts::hex(&got),
                        pin.etag,
                        parts::hex(want)
                    ),
                ));
            }
        }
        tracing::info!(
            "Download complete from bucket {} and key {} ({total} bytes in {n} parts over {connections} connections, {:.1} MiB/s{})",
            obj.bucket,
            obj.key,
            rules::mib_per_s(total, progress.elapsed()),
            if retries > 0 { format!(", {retries} part retries") } else { String::new() }
        );
        Ok(Outcome::Done)
    }

    async fn get_range(
        &self,
        obj: &Object,
        range: String,
        if_match: Option<&str>,
    ) -> Result<GetObjectOutput, RangeError> {
        let get = self
            .client
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .set_version_id(obj.version.clone())
            .range(range)
            .set_if_match(if_match.map(str::to_string));
        get.send().await.map_err(|e| {
            let status = match &e {
                SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
                _ => None,
            };
            let code = e
                .as_service_error()
                .and_then(|s| s.code())
                .map(str::to_string);
            RangeError {
                status,
                code,
                error: self.request_error(obj, e),
            }
        })
    }

    fn integrity(&self, obj: &Object, detail: String) -> TransferError {
        TransferError::Integrity {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            version: obj.version.clone(),
            detail,
        }
    }

    fn changed(&self, obj: &Object, pin: &Pin, detail: String) -> TransferError {
        TransferError::Changed {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            etag: pin.etag.clone(),
            detail,
        }
    }
}

enum Event {
    Msg(Option<PartMsg>),
    Free(Result<OwnedSemaphorePermit, tokio::sync::AcquireError>),
}

/// Starts the task of part `index` on a connection, its channel queued behind the earlier ones.
fn start(
    tasks: &mut JoinSet<()>,
    queue: &mut VecDeque<UnboundedReceiver<PartMsg>>,
    shared: &Arc<Shared>,
    index: u64,
    connection: OwnedSemaphorePermit,
    initial: Option<GetObjectOutput>,
) {
    let (ptx, prx) = mpsc::unbounded_channel();
    let shared = shared.clone();
    tasks.spawn(async move {
        let _connection = connection;
        part(&shared, index, initial, &ptx).await;
    });
    queue.push_back(prx);
}

struct RangeError {
    status: Option<u16>,
    code: Option<String>,
    error: TransferError,
}

/// One part task: fetches part `index` (starting from `initial`, the first response, when it
/// is that part), retrying and resuming alone; reports through `out`.
async fn part(
    shared: &Shared,
    index: u64,
    initial: Option<GetObjectOutput>,
    out: &UnboundedSender<PartMsg>,
) {
    let msg = match fetch_part(shared, index, initial, out).await {
        Ok(Some(retries)) => PartMsg::Done { retries },
        Ok(None) => return,
        Err(e) => PartMsg::Failed(e),
    };
    let _ = out.send(msg);
}

/// Ok(None): the orchestrator went away.
async fn fetch_part(
    shared: &Shared,
    index: u64,
    mut initial: Option<GetObjectOutput>,
    out: &UnboundedSender<PartMsg>,
) -> Result<Option<u32>, TransferError> {
    let (s3, obj, tuning, pin) = (&shared.s3, &shared.obj, &shared.tuning, &shared.pin);
    let part_size = tuning.s3_part_size.max(1);
    let Some((first, last)) = parts::range(index, part_size, pin.total) else {
        return Err(TransferError::Internal(format!(
            "part {index} is past the end"
        )));
    };
    let mut head = shared.head.clone();
    let mut got: u64 = 0;
    let mut retries: u32 = 0;
    loop {
        let start = first + got;
        let response = match initial.take() {
            Some(out) => Ok(out),
            None => {
                s3.get_range(obj, parts::header(start, last), Some(&pin.etag))
                    .await
            }
        };
        let cut = match response {
            Err(e) if e.status == Some(412) || e.code.as_deref() == Some("PreconditionFailed") => {
                return Err(s3.changed(
                    obj,
                    pin,
                    format!("the request for bytes {start}-{last} got 412 Precondition Failed"),
                ));
            }
            Err(e) => e.error.to_string(),
            Ok(resp) => {
                let etag = resp.e_tag().unwrap_or("");
                let range = parts::content_range(resp.content_range());
                if !rules::etag_matches(&pin.etag, etag) || range != Some((start, last, pin.total))
                {
                    return Err(s3.changed(
                        obj,
                        pin,
                        format!(
                            "bytes {start}-{last} came back as {:?} with ETag {etag}",
                            resp.content_range().unwrap_or("the whole object")
                        ),
                    ));
                }
                let mut body = resp.body;
                loop {
                    match tokio::time::timeout(tuning.idle_timeout, body.next()).await {
                        Ok(Some(Ok(bytes))) => {
                            let len = bytes.len() as u64;
                            if got + len > last - first + 1 {
                                return Err(s3.changed(
                                    obj,
                                    pin,
                                    format!("bytes {start}-{last} came back longer"),
                                ));
                            }
                            // Every chunk is copied out before it waits: it is a slice of the
                            // connection's read buffer, which it would otherwise keep whole
                            // (the permits count the chunk, not that buffer; heaptrack showed
                            // 9 MiB of pinned read buffers at 8 connections). A memcpy costs
                            // little against the network.
                            let bytes = Bytes::copy_from_slice(&bytes);
                            let permit = room(shared, &mut head, index, len).await?;
                            got += len;
                            if out.send(PartMsg::Data(bytes, permit)).is_err() {
                                return Ok(None);
                            }
                        }
                        Ok(None) if got == last - first + 1 => return Ok(Some(retries)),
                        Ok(None) => break "the response ended early".to_string(),
                        Ok(Some(Err(e))) => break DisplayErrorContext(&e).to_string(),
                        Err(_) => break format!("no data for {:?}", tuning.idle_timeout),
                    }
                }
            }
        };
        if retries >= tuning.resume_attempts {
            return Err(s3.failure(
                obj,
                format!(
                    "part {index} (bytes {first}-{last}): {cut} after {got} of its bytes and {retries} retries"
                ),
            ));
        }
        retries += 1;
        tracing::warn!(
            "part {index} of s3://{}/{} (bytes {first}-{last}) interrupted after {got} of its bytes ({cut}); resuming (attempt {retries} of {})",
            obj.bucket,
            obj.key,
            tuning.resume_attempts
        );
        tokio::time::sleep(crate::random::spread(
            rules::resume_delay(tuning.resume_base_delay, retries),
            crate::control::JITTER,
        ))
        .await;
    }
}

/// Room for a chunk of `len` bytes of part `index`.
/// A part ahead takes window permits, waiting while the window is full; the part being
/// unpacked (or one that becomes it while waiting) takes head room instead, which only the
/// unpacker's progress frees, so its backlog stays small without ever waiting on the window.
/// Either permit travels with the chunk to the unpacker, which drops it once it has read the
/// chunk: bytes waiting anywhere on the way are counted.
async fn room(
    shared: &Shared,
    head: &mut watch::Receiver<u64>,
    index: u64,
    len: u64,
) -> Result<OwnedSemaphorePermit, TransferError> {
    let internal = |e: tokio::sync::AcquireError| TransferError::Internal(e.to_string());
    if *head.borrow() < index {
        // A chunk larger than the whole window (never with real chunk sizes) takes all of it.
        let want = u32::try_from(len.min(shared.window_bytes)).unwrap_or(u32::MAX);
        tokio::select! {
            permit = shared.window.clone().acquire_many_owned(want) => {
                return permit.map_err(internal);
            }
            _ = head.wait_for(|h| *h >= index) => {}
        }
    }
    let want = u32::try_from(len.min(HEAD_ROOM)).unwrap_or(u32::MAX);
    let permit = shared.head_room.clone().acquire_many_owned(want).await;
    permit.map_err(internal)
}

/// Bytes of the part being unpacked that may wait for the unpacker.
const HEAD_ROOM: u64 = 2 << 20;
