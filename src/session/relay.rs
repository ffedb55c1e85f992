//! The relay: client → server and server → client, byte for byte.
//!
//! Each direction reads into a reusable buffer, walks the whole frames in it
//! (the tracker looks at the few it needs), and writes those frames on in one
//! write. Nothing is re-encoded and nothing is dropped. A partial frame
//! stays in the buffer until the rest arrives, so a message is never split
//! between writes by pgtrail, and a read never outruns a write: a peer that
//! stops reading stops the other side too, and buffers stay bounded.
//!
//! pgtrail's own answers to the client (statements refused under
//! `fail_closed`, see `refuse`) are queued by the client direction and
//! written by the server direction between whole frames, so the client
//! stream has one writer.

use bytes::{Buf, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::error::SessionError;
use super::login::Established;
use super::refuse::Refuser;
use super::stream::READ_CHUNK;
use super::tracker::{SessionClock, Tracker};
use crate::audit::{AuditEvent, DurableAck};
use crate::config::Durability;
use crate::context::ProxyContext;
use crate::protocol::frame::FrameLimits;

mod end;
mod inject;
mod scan;
use end::{finish, terminate, ClientEnd, End};
use scan::{scan_client, scan_server};

/// A buffer that grew past this for one large message is released once empty.
const KEEP_CAPACITY: usize = 1 << 20;
/// How long pgtrail tries to deliver a last message to a closing peer.
const LAST_WORDS: Duration = Duration::from_secs(1);
/// How long the server's last answers are awaited after the client left.
const DRAIN_AFTER_CLIENT: Duration = Duration::from_secs(5);

/// How the session ended, for the disconnect record.
pub struct Outcome {
    pub reason: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub statements: u64,
}

/// State both directions share.
struct Shared<'a> {
    ctx: &'a ProxyContext,
    tracker: Mutex<Tracker>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Set while a write to the client is in progress, so pgtrail never
    /// appends its own message to half a frame.
    writing_client: AtomicBool,
    /// Capacity of each direction's buffer as last added to `buffered_bytes`.
    client_buffer: AtomicU64,
    server_buffer: AtomicU64,
    /// pgtrail's own messages for the client, and the bell for them.
    replies: Mutex<BytesMut>,
    replies_ready: Notify,
    /// pgtrail's own messages for the server that the server direction
    /// asked for (the end of a wrapped COPY that never started), written
    /// by the client direction between whole frames.
    upstream: Mutex<BytesMut>,
    upstream_ready: Notify,
    /// The client direction may go on after a hold (`scan::Scan::held`).
    client_released: Notify,
}

impl Shared<'_> {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // A panic elsewhere cannot leave the tracker half-updated in a way
        // that matters more than losing the session; keep serving.
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets one direction's share of the process-wide `buffered_bytes` gauge.
    fn account_buffer(&self, slot: &AtomicU64, now: usize) {
        let before = slot.swap(now as u64, Ordering::Relaxed);
        let stats = &self.ctx.stats.buffered_bytes;
        let now = now as u64;
        if now > before {
            stats.fetch_add(now - before, Ordering::Relaxed);
        } else {
            stats.fetch_sub(before - now, Ordering::Relaxed);
        }
    }
}

pub async fn run(est: Established, ctx: &ProxyContext, clock: SessionClock) -> Outcome {
    let Established {
        client,
        upstream,
        info,
        cancel_key,
        markers_allowed,
    } = est;
    let (mut client_r, mut client_w) = client.stream.split();
    let (mut server_r, mut server_w) = upstream.stream.split();
    let (mut client_buf, mut server_buf) = (client.buf, upstream.buf);
    let max = ctx.config.limits.max_message_bytes;
    let shared = Shared {
        ctx,
        tracker: Mutex::new(tracker(ctx, info, clock, markers_allowed)),
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        writing_client: AtomicBool::new(false),
        client_buffer: AtomicU64::new(0),
        server_buffer: AtomicU64::new(0),
        replies: Mutex::new(BytesMut::new()),
        replies_ready: Notify::new(),
        upstream: Mutex::new(BytesMut::new()),
        upstream_ready: Notify::new(),
        client_released: Notify::new(),
    };
    let end = {
        let c2s = client_to_server(
            &mut client_r,
            &mut server_w,
            &mut client_buf,
            &shared,
            FrameLimits::frontend(max),
        );
        let s2c = server_to_client(
            &mut server_r,
            &mut client_w,
            &mut server_buf,
            &shared,
            FrameLimits::backend(max),
        );
        tokio::pin!(c2s, s2c);
        let end = tokio::select! {
            r = &mut c2s => End::Client(r),
            r = &mut s2c => End::Server(r),
            _ = ctx.forced_close() => End::Shutdown,
        };
        if matches!(end, End::Client(_)) {
            // The server still answers what was sent before the client left:
            // read those answers so the statements are audited.
            let _ = tokio::time::timeout(DRAIN_AFTER_CLIENT, &mut s2c).await;
        }
        end
    };
    let reason = finish(end, &shared, &mut client_w, &mut server_w).await;
    let leftover = {
        let mut tracker = shared.tracker();
        tracker.end_session(std::time::Instant::now());
        tracker.take_finished()
    };
    for event in leftover {
        send_event(&shared, event, false).await;
    }
    shared.account_buffer(&shared.client_buffer, 0);
    shared.account_buffer(&shared.server_buffer, 0);
    drop(cancel_key);
    let statements = shared.tracker().statements();
    Outcome {
        reason,
        bytes_in: shared.bytes_in.load(Ordering::Relaxed),
        bytes_out: shared.bytes_out.load(Ordering::Relaxed),
        statements,
    }
}

fn tracker(
    ctx: &ProxyContext,
    info: std::sync::Arc<crate::audit::SessionInfo>,
    clock: SessionClock,
    markers_allowed: bool,
) -> Tracker {
    let claims = ctx
        .identity
        .as_ref()
        .map(|id| crate::identity::SessionClaims::new(id.clone(), &info));
    let t = Tracker::new(info, clock, ctx.live().log_parameters)
        .with_internal_stats(ctx.stats.markers.clone())
        .with_claims(claims)
        .with_markers_allowed(markers_allowed);
    match ctx.config.cdc.attribution {
        crate::config::AttributionLevel::Statement => t,
        crate::config::AttributionLevel::Transaction => t.transaction_markers_only(),
    }
}

/// Relays client messages; however it ends, the server is told (a
/// Terminate of the client's own, or pgtrail's), so it finishes what it has
/// and closes.
async fn client_to_server(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    buf: &mut BytesMut,
    shared: &Shared<'_>,
    limits: FrameLimits,
) -> Result<ClientEnd, SessionError> {
    let end = relay_client(from, to, buf, shared, limits).await;
    if !matches!(end, Ok(ClientEnd::Terminated)) {
        terminate(to).await;
    }
    end
}

async fn relay_client(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    buf: &mut BytesMut,
    shared: &Shared<'_>,
    limits: FrameLimits,
) -> Result<ClientEnd, SessionError> {
    let mut refuser = Refuser::default();
    loop {
        let scan = scan_client(buf, shared, &limits, &mut refuser)?;
        if scan.refused {
            buf.advance(scan.whole);
            shared.replies_ready.notify_one();
        } else if scan.whole > 0 {
            let frames = buf.split_to(scan.whole);
            if scan.injections.is_empty() {
                to.write_all(&frames).await?;
            } else {
                // pgtrail's markers go among the frames, in the same write.
                to.write_all(&inject::apply(&frames, &scan.injections))
                    .await?;
            }
            shared
                .bytes_in
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
            shared
                .ctx
                .stats
                .bytes_in
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
        }
        if scan.terminate {
            return Ok(ClientEnd::Terminated);
        }
        if scan.held {
            // Until the server answered pgtrail's marker; what pgtrail
            // then has for the server (a Sync after a refused marker)
            // goes first.
            tokio::select! {
                () = shared.client_released.notified() => {}
                () = shared.upstream_ready.notified() => {}
            }
            write_upstream(shared, to).await?;
            continue;
        }
        if scan.missing == 0 {
            continue; // more whole frames, judged differently
        }
        tokio::select! {
            more = fill(from, buf, scan.missing, shared, &shared.client_buffer) => {
                if !more? {
                    return Ok(ClientEnd::Eof);
                }
            }
            () = shared.upstream_ready.notified() => write_upstream(shared, to).await?,
        }
    }
}

/// Writes what the server direction asked pgtrail to send upstream.
async fn write_upstream(
    shared: &Shared<'_>,
    to: &mut (impl AsyncWrite + Unpin),
) -> Result<(), SessionError> {
    let bytes = {
        let mut queued = shared.upstream.lock().unwrap_or_else(|p| p.into_inner());
        queued.split()
    };
    if !bytes.is_empty() {
        to.write_all(&bytes).await?;
    }
    Ok(())
}

async fn server_to_client(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    buf: &mut BytesMut,
    shared: &Shared<'_>,
    limits: FrameLimits,
) -> Result<(), SessionError> {
    let mut open = true;
    loop {
        let scan = scan_server(buf, shared, &limits, open)?;
        // Every statement whose result is in these frames is queued (and
        // under before_ack made durable) before any of them is written.
        let (events, upstream, released) = {
            let mut t = shared.tracker();
            (
                t.take_finished(),
                t.take_upstream(),
                t.take_client_release(),
            )
        };
        if let Some(bytes) = upstream {
            let mut queued = shared.upstream.lock().unwrap_or_else(|p| p.into_inner());
            queued.extend_from_slice(&bytes);
            shared.upstream_ready.notify_one();
        }
        if released {
            // After the bytes above are queued: they go first.
            shared.client_released.notify_one();
        }
        send_events(shared, events).await?;
        if scan.whole > 0 {
            let mut frames = buf.split_to(scan.whole);
            if !scan.cuts.is_empty() {
                // Answers to pgtrail's own message: the client never sees them.
                frames = scan::without(&frames, &scan.cuts);
            }
            shared.writing_client.store(true, Ordering::Relaxed);
            to.write_all(&frames).await?;
            shared.writing_client.store(false, Ordering::Relaxed);
            shared
                .bytes_out
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
            shared
                .ctx
                .stats
                .bytes_out
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
        }
        write_replies(shared, to).await?;
        if !open {
            return Ok(());
        }
        tokio::select! {
            more = fill(from, buf, scan.missing, shared, &shared.server_buffer) => {
                // At the end of the stream, one more round passes on what a
                // held error was waiting with.
                open = more?;
            }
            () = shared.replies_ready.notified() => {}
        }
    }
}

/// Writes what pgtrail itself has to say to the client, if anything.
async fn write_replies(
    shared: &Shared<'_>,
    to: &mut (impl AsyncWrite + Unpin),
) -> Result<(), SessionError> {
    let replies = {
        let mut queued = shared.replies.lock().unwrap_or_else(|p| p.into_inner());
        if queued.is_empty() {
            return Ok(());
        }
        queued.split()
    };
    shared.writing_client.store(true, Ordering::Relaxed);
    to.write_all(&replies).await?;
    shared.writing_client.store(false, Ordering::Relaxed);
    Ok(())
}

/// Queues the events of finished statements (and transactions). Under
/// `before_ack` it then waits until their records are durable, so the
/// results written after this reach the client only then.
async fn send_events(shared: &Shared<'_>, events: Vec<AuditEvent>) -> Result<(), SessionError> {
    let ctx = shared.ctx;
    let durable = ctx.config.audit.durability == Durability::BeforeAck;
    let mut acks = Vec::new();
    for event in events {
        acks.extend(send_event(shared, event, durable).await);
    }
    for ack in acks {
        if let Err(why) = ctx.audit.confirm(ack).await {
            return Err(SessionError::Audit(why.into()));
        }
    }
    Ok(())
}

/// Shows a result to the hooks and counters, then queues it; with
/// `durable`, also returns the answer that says when it is fsynced.
async fn send_event(shared: &Shared<'_>, event: AuditEvent, durable: bool) -> Option<DurableAck> {
    let ctx = shared.ctx;
    if let AuditEvent::Statement(statement) = &event {
        ctx.hooks.on_result(statement);
        ctx.stats.statements.fetch_add(1, Ordering::Relaxed);
    }
    if durable {
        return Some(ctx.audit.send_durable(event).await);
    }
    ctx.audit.send(event).await;
    None
}

/// Reads more into `buf`; `false` at end of stream.
async fn fill(
    from: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    missing: usize,
    shared: &Shared<'_>,
    slot: &AtomicU64,
) -> Result<bool, SessionError> {
    if buf.is_empty() && buf.capacity() > KEEP_CAPACITY {
        *buf = BytesMut::new();
    }
    buf.reserve(missing.max(READ_CHUNK));
    shared.account_buffer(slot, buf.capacity());
    Ok(from.read_buf(buf).await? > 0)
}
