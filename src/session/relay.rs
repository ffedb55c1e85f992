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
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::error::SessionError;
use super::login::Established;
use super::refuse::{Refuser, Verdict, REFUSED_SQLSTATE};
use super::stream::READ_CHUNK;
use super::tracker::{ClientFrame, SessionClock, Tracker};
use crate::audit::{AuditEvent, DurableAck};
use crate::config::{Durability, FailurePolicy};
use crate::context::ProxyContext;
use crate::protocol::build::{self, Severity};
use crate::protocol::frame::{frame_len, FrameLimits};
use crate::protocol::sqlstate;

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

enum ClientEnd {
    Terminated,
    Eof,
}

enum End {
    Client(Result<ClientEnd, SessionError>),
    Server(Result<(), SessionError>),
    Shutdown,
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
    } = est;
    let (mut client_r, mut client_w) = client.stream.split();
    let (mut server_r, mut server_w) = upstream.stream.split();
    let (mut client_buf, mut server_buf) = (client.buf, upstream.buf);
    let max = ctx.config.limits.max_message_bytes;
    let shared = Shared {
        ctx,
        tracker: Mutex::new(Tracker::new(info, clock, ctx.live().log_parameters)),
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        writing_client: AtomicBool::new(false),
        client_buffer: AtomicU64::new(0),
        server_buffer: AtomicU64::new(0),
        replies: Mutex::new(BytesMut::new()),
        replies_ready: Notify::new(),
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
    let leftover = shared.tracker().take_finished();
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

/// Says goodbye to whichever side is still there; returns the reason.
async fn finish(
    end: End,
    shared: &Shared<'_>,
    client_w: &mut (impl AsyncWrite + Unpin),
    server_w: &mut (impl AsyncWrite + Unpin),
) -> String {
    let client_clean = !shared.writing_client.load(Ordering::Relaxed);
    match end {
        End::Client(Ok(ClientEnd::Terminated)) => "client terminated the session".into(),
        End::Client(Ok(ClientEnd::Eof)) => "client closed the connection".into(),
        End::Client(Err(e)) if e.is_protocol_violation() => {
            tracing::warn!(error = %e, "closing session: invalid message from client");
            let message = tell(
                client_w,
                client_clean,
                sqlstate::PROTOCOL_VIOLATION,
                format!("invalid frontend message: {e}"),
            )
            .await;
            format!("protocol violation: {message}")
        }
        End::Client(Err(e)) => format!("client connection lost: {e}"),
        End::Server(Err(SessionError::Audit(why))) => {
            tracing::error!(%why, "closing session: a statement's audit record could not be made durable (before_ack, fail_closed)");
            terminate(server_w).await;
            let message = format!("pgtrail: the audit record of the last statement could not be made durable ({why}); the connection is closed, the statement's outcome is unknown to the audit trail");
            tell(client_w, client_clean, REFUSED_SQLSTATE, message).await
        }
        End::Server(result) => {
            let detail = match result {
                Ok(()) => "server closed the connection".to_string(),
                Err(e) => format!("server connection lost: {e}"),
            };
            if let Some(fatal) = shared.tracker().server_fatal() {
                // The server said why (pg_terminate_backend, shutdown, ...);
                // the client has that message already.
                return format!("server ended the session: {fatal}");
            }
            tracing::warn!(%detail, "upstream connection ended unexpectedly");
            tell(
                client_w,
                client_clean,
                sqlstate::CONNECTION_FAILURE,
                "server closed the connection unexpectedly".into(),
            )
            .await;
            detail
        }
        End::Shutdown => {
            terminate(server_w).await;
            tell(
                client_w,
                client_clean,
                sqlstate::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command".into(),
            )
            .await
        }
    }
}

/// A last FATAL message to the client, unless a frame is half written.
async fn tell(
    client_w: &mut (impl AsyncWrite + Unpin),
    clean: bool,
    code: &str,
    message: String,
) -> String {
    if clean {
        let frame = build::error_response(Severity::Fatal, code, &message);
        let _ = tokio::time::timeout(LAST_WORDS, client_w.write_all(&frame)).await;
    }
    message
}

/// Terminate to the server so it ends the backend without logging an error.
async fn terminate(server_w: &mut (impl AsyncWrite + Unpin)) {
    let _ = tokio::time::timeout(LAST_WORDS, server_w.write_all(&build::terminate())).await;
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
            to.write_all(&frames).await?;
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
        if scan.missing == 0 {
            continue; // more whole frames, judged differently
        }
        if !fill(from, buf, scan.missing, shared, &shared.client_buffer).await? {
            return Ok(ClientEnd::Eof);
        }
    }
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
        let events = shared.tracker().take_finished();
        send_events(shared, events).await?;
        if scan.whole > 0 {
            let frames = buf.split_to(scan.whole);
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

/// Queues the events of finished statements. Under `before_ack` it then
/// waits until their records are durable, so the results written after
/// this reach the client only then.
async fn send_events(
    shared: &Shared<'_>,
    events: Vec<crate::audit::StatementEvent>,
) -> Result<(), SessionError> {
    let ctx = shared.ctx;
    let durable = ctx.config.audit.durability == Durability::BeforeAck;
    let mut acks = Vec::new();
    for event in events {
        acks.extend(send_event(shared, event, durable).await);
    }
    for ack in acks {
        if ack.await != Ok(true) && ctx.audit.policy() == FailurePolicy::FailClosed {
            return Err(SessionError::Audit(
                ctx.audit
                    .refusal()
                    .unwrap_or("the audit writer failed")
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Shows a result to the hooks and counters, then queues it; with
/// `durable`, also returns the answer that says when it is fsynced.
async fn send_event(
    shared: &Shared<'_>,
    event: crate::audit::StatementEvent,
    durable: bool,
) -> Option<DurableAck> {
    let ctx = shared.ctx;
    ctx.hooks.on_result(&event);
    ctx.stats.statements.fetch_add(1, Ordering::Relaxed);
    let event = AuditEvent::Statement(Box::new(event));
    if durable {
        return Some(ctx.audit.send_durable(event).await);
    }
    ctx.audit.send(event).await;
    None
}

/// Whole frames at the front of a buffer, and what is missing after them
/// (0 when the scan stopped early at a frame judged differently).
struct Scan {
    whole: usize,
    missing: usize,
    terminate: bool,
    /// The frames are refused (dropped), not forwarded.
    refused: bool,
}

/// A run of whole frames that are all forwarded, or all refused.
fn scan_client(
    buf: &[u8],
    shared: &Shared<'_>,
    limits: &FrameLimits,
    refuser: &mut Refuser,
) -> Result<Scan, SessionError> {
    let mut off = 0;
    let mut tracker = None;
    let now = Instant::now();
    let why = shared.ctx.audit.refusal();
    let mut refused = None;
    loop {
        match frame_len(&buf[off..], limits)? {
            Ok(len) => {
                let frame = &buf[off..off + len];
                let t = tracker.get_or_insert_with(|| shared.tracker());
                let refuse = if refuser.passes_all(why) {
                    false
                } else {
                    let mut replies = shared.replies.lock().unwrap_or_else(|p| p.into_inner());
                    let (mark, before) = (replies.len(), refuser.clone());
                    let refuse =
                        refuser.judge(frame[0], why, t.is_idle(), &mut replies) == Verdict::Refuse;
                    if refused.is_some_and(|r| r != refuse) {
                        replies.truncate(mark);
                        *refuser = before;
                    }
                    refuse
                };
                if *refused.get_or_insert(refuse) != refuse {
                    // This frame starts the next run: judge it again then.
                    return Ok(Scan {
                        whole: off,
                        missing: 0,
                        terminate: false,
                        refused: !refuse,
                    });
                }
                if refuse {
                    shared.ctx.stats.statements_refused.fetch_add(
                        u64::from(matches!(frame[0], b'Q' | b'F' | b'P')),
                        Ordering::Relaxed,
                    );
                    off += len;
                    continue;
                }
                if let Some(text) = statement_text(frame[0], &frame[5..]) {
                    shared.ctx.hooks.on_statement(t.session(), text);
                }
                let action = t.client_frame(frame[0], &frame[5..], now)?;
                off += len;
                if action == ClientFrame::Terminate {
                    return Ok(Scan {
                        whole: off,
                        missing: 0,
                        terminate: true,
                        refused: false,
                    });
                }
            }
            Err(missing) => {
                return Ok(Scan {
                    whole: off,
                    missing,
                    terminate: false,
                    refused: refused == Some(true),
                })
            }
        }
    }
}

/// The whole server frames at the front of `buf`, fed to the tracker. An
/// ErrorResponse whose ReadyForQuery is on its way (the server flushes
/// errors at once, and the ReadyForQuery in a write of its own) is held
/// back with everything before it until that ReadyForQuery is read too, so
/// the records of the batch carry its transaction status. `hold_errors` is
/// off once the server's stream has ended.
fn scan_server(
    buf: &[u8],
    shared: &Shared<'_>,
    limits: &FrameLimits,
    hold_errors: bool,
) -> Result<Scan, SessionError> {
    if hold_errors {
        if let Some(missing) = error_before_ready(buf, limits)? {
            if shared.tracker().ready_follows_an_error() {
                return Ok(Scan {
                    whole: 0,
                    missing,
                    terminate: false,
                    refused: false,
                });
            }
        }
    }
    let mut off = 0;
    let mut tracker = None;
    let now = Instant::now();
    loop {
        match frame_len(&buf[off..], limits)? {
            Ok(len) => {
                let frame = &buf[off..off + len];
                // DataRow and CopyData are most of the traffic and tell the
                // tracker nothing but a row count: skip the lock for CopyData.
                if frame[0] != b'd' {
                    let t = tracker.get_or_insert_with(|| shared.tracker());
                    t.server_frame(frame[0], &frame[5..], now)?;
                }
                off += len;
            }
            Err(missing) => {
                return Ok(Scan {
                    whole: off,
                    missing,
                    terminate: false,
                    refused: false,
                })
            }
        }
    }
}

/// The statement text a Query or Parse message carries; `None` for other
/// messages and for malformed ones (the tracker reports those).
fn statement_text(tag: u8, body: &[u8]) -> Option<&[u8]> {
    use crate::protocol::frontend;
    match tag {
        b'Q' => frontend::query(body).ok(),
        b'P' => frontend::parse(body).ok().map(|p| p.query),
        _ => None,
    }
}

/// When the whole frames in `buf` end with a non-FATAL ErrorResponse that no
/// ReadyForQuery follows yet: how many more bytes are needed at least.
/// Only the headers are read, and an error's severity.
fn error_before_ready(buf: &[u8], limits: &FrameLimits) -> Result<Option<usize>, SessionError> {
    let mut off = 0;
    let mut waiting = false;
    loop {
        match frame_len(&buf[off..], limits)? {
            Ok(len) => {
                match buf[off] {
                    b'E' => {
                        let fatal =
                            crate::protocol::backend::error_fields(&buf[off + 5..off + len])
                                .is_ok_and(|f| f.is_fatal());
                        waiting = !fatal;
                    }
                    b'Z' => waiting = false,
                    _ => {}
                }
                off += len;
            }
            Err(missing) => return Ok(waiting.then_some(missing)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::build;

    fn frames(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn hooks_get_the_statement_text_without_nul_or_name() {
        let mut query = b"SELECT 1".to_vec();
        query.push(0);
        assert_eq!(statement_text(b'Q', &query), Some(&b"SELECT 1"[..]));
        let mut parse = b"stmt1\0SELECT $1\0".to_vec();
        parse.extend(0i16.to_be_bytes());
        assert_eq!(statement_text(b'P', &parse), Some(&b"SELECT $1"[..]));
        assert_eq!(statement_text(b'B', &parse), None);
        assert_eq!(statement_text(b'Q', b"no terminator"), None);
    }

    #[test]
    fn an_error_waits_for_its_ready_for_query() {
        let limits = FrameLimits::backend(1 << 20);
        let error = build::error_response(Severity::Error, "22012", "division by zero");
        let fatal = build::error_response(Severity::Fatal, "57P01", "bye");
        let ready = build::ready_for_query(b'I');
        let held = |b: &[u8]| error_before_ready(b, &limits).unwrap();
        assert_eq!(held(&frames(&[&error])), Some(5));
        assert_eq!(held(&frames(&[&error, &ready[..3]])), Some(2));
        assert_eq!(held(&frames(&[&error, &ready])), None);
        assert_eq!(held(&frames(&[&ready, &error])), Some(5));
        assert_eq!(
            held(&frames(&[&fatal])),
            None,
            "no ReadyForQuery follows a FATAL"
        );
        assert_eq!(held(&[]), None);
    }
}
