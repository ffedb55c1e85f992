//! One client connection: startup, authentication, upstream login, the
//! relay, and the session's audit events.

pub mod error;
mod login;
mod marker_probe;
pub(crate) mod refusal;
mod refuse;
pub mod relay;
pub mod startup;
pub mod stream;
pub mod tracker;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::net::TcpStream;

use crate::audit::{AuditEvent, SessionEvent, SessionEventType, SessionInfo};
use crate::context::{AuthFailureReason, CancelResult, ProxyContext};
use crate::protocol::build::{self, Severity};
use crate::protocol::sqlstate;
use error::SessionError;
use login::{Established, LoggedIn};
use startup::Request;
use stream::Framed;
use tracker::SessionClock;

/// Serves one client connection until it ends. Never panics on peer input;
/// every way out is logged and audited: a session that got a connect record
/// ends with exactly one disconnect record, whether or not it logged in.
pub async fn serve(socket: TcpStream, peer: SocketAddr, ctx: Arc<ProxyContext>) {
    let _ = socket.set_nodelay(true);
    ctx.stats.sessions_total.fetch_add(1, Ordering::Relaxed);
    ctx.stats.sessions_active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(&ctx);
    let clock = SessionClock::now();
    let began = Instant::now();
    let mut setup = Setup::default();
    // A session still in startup is closed at shutdown too, not only when
    // the startup timeout expires.
    let result = tokio::select! {
        r = tokio::time::timeout(
            ctx.config.startup_timeout(),
            establish(socket, peer, &ctx, &mut setup),
        ) => r.map_err(|_| "authentication timeout"),
        () = ctx.forced_close() => Err("server shutting down during authentication"),
    };
    let established = match result {
        Ok(Some(e)) => e,
        Ok(None) => return end_before_relay(&ctx, setup, began).await,
        Err(reason) => {
            tracing::info!(%peer, reason, "session setup ended");
            if let Some(info) = &setup.info {
                let info = Arc::new(info.clone());
                session_event(
                    &ctx,
                    SessionEventType::AuthFailed,
                    info,
                    Some(reason.into()),
                )
                .await;
            }
            setup.end_reason = Some(reason.into());
            return end_before_relay(&ctx, setup, began).await;
        }
    };
    let info = established.info.clone();
    ctx.hooks.on_session_start(&info);
    let outcome = relay::run(established, &ctx, clock).await;
    tracing::debug!(%peer, reason = %outcome.reason, "session ended");
    ctx.hooks.on_session_end(&info);
    let end = SessionEvent {
        event_type: SessionEventType::Disconnect,
        session: info,
        at: clock.wall(Instant::now()),
        reason: Some(outcome.reason),
        bytes_in: outcome.bytes_in,
        bytes_out: outcome.bytes_out,
        statements: outcome.statements,
        duration_us: began.elapsed().as_micros() as u64,
    };
    ctx.audit.send(AuditEvent::Session(Box::new(end))).await;
}

/// What is known of a session before the relay: its identity once the
/// connect record is out, and why and with how many bytes it ended if it
/// never reached the relay.
#[derive(Default)]
struct Setup {
    info: Option<SessionInfo>,
    end_reason: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
}

impl Setup {
    /// Remembers why the session ends here, and the client's byte counts.
    fn ended(&mut self, client: &Framed, reason: String) {
        self.end_reason = Some(reason);
        self.bytes_in = client.bytes_read;
        self.bytes_out = client.bytes_written;
    }
}

/// The disconnect record of a session that had a connect record but never
/// reached the relay (failed login, timeout, shutdown).
async fn end_before_relay(ctx: &ProxyContext, setup: Setup, began: Instant) {
    let Some(info) = setup.info else { return };
    let end = SessionEvent {
        event_type: SessionEventType::Disconnect,
        session: Arc::new(info),
        at: SystemTime::now(),
        reason: Some(
            setup
                .end_reason
                .unwrap_or_else(|| "session ended before login completed".into()),
        ),
        bytes_in: setup.bytes_in,
        bytes_out: setup.bytes_out,
        statements: 0,
        duration_us: began.elapsed().as_micros() as u64,
    };
    ctx.audit.send(AuditEvent::Session(Box::new(end))).await;
}

struct ActiveGuard<'a>(&'a ProxyContext);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.stats.sessions_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Startup and authentication. `setup.info` holds the session once its
/// connect event is out, so a timeout can still be recorded.
async fn establish(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: &ProxyContext,
    setup: &mut Setup,
) -> Option<Established> {
    let (mut client, startup) = startup_request(socket, peer, ctx).await?;
    if let Err((code, message)) = login::check_startup(&startup, client.stream.is_tls(), ctx) {
        tracing::info!(%peer, %message, "startup refused");
        let _ = client
            .write(&build::error_response(Severity::Fatal, code, &message))
            .await;
        return None;
    }
    let info = login::session_info(&startup, peer, client.stream.is_tls());
    session_event(ctx, SessionEventType::Connect, Arc::new(info.clone()), None).await;
    setup.info = Some(info);
    setup.ended(&client, "client closed the connection during login".into());
    let result = login::authenticate(&mut client, &startup, ctx, &mut setup.info).await;
    let info = setup.info.clone()?;
    match result {
        Ok(Ok(LoggedIn {
            upstream,
            cancel_key,
            markers_allowed,
        })) => {
            let info = Arc::new(info);
            session_event(ctx, SessionEventType::AuthOk, info.clone(), None).await;
            Some(Established {
                client,
                upstream,
                info,
                cancel_key,
                markers_allowed,
            })
        }
        Ok(Err(refused)) => {
            ctx.stats.auth_failed(refused.reason());
            let reason = refused.to_string();
            tracing::info!(%peer, user = %info.user, %reason, "authentication failed");
            setup.ended(&client, format!("login failed: {reason}"));
            session_event(
                ctx,
                SessionEventType::AuthFailed,
                Arc::new(info),
                Some(reason),
            )
            .await;
            None
        }
        Err(e) => {
            login_error(ctx, peer, &mut client, e, setup).await;
            None
        }
    }
}

/// The StartupMessage of a new connection; `None` when the connection
/// carried a CancelRequest (forwarded here) or failed before a
/// StartupMessage (answered and logged here).
async fn startup_request(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: &ProxyContext,
) -> Option<(Framed, crate::protocol::startup::Startup)> {
    let (conn, request) = startup::negotiate(socket, ctx).await;
    let (client, request) = match (conn, request) {
        (Some(c), Ok(r)) => (c, r),
        (conn, Err(e)) => {
            log_failure(peer, &e);
            if let (Some(mut c), true) = (conn, e.is_protocol_violation()) {
                let _ = c
                    .write(&build::error_response(
                        Severity::Fatal,
                        sqlstate::PROTOCOL_VIOLATION,
                        &e.to_string(),
                    ))
                    .await;
            }
            return None;
        }
        (None, Ok(_)) => return None,
    };
    match request {
        Request::Cancel { pid, secret } => {
            forward_cancel(ctx, peer, pid, &secret).await;
            None
        }
        Request::Startup(s) => Some((client, s)),
    }
}

/// A login that failed on I/O, the protocol or the server's reachability
/// (not a refusal): the client hears why, the trail gets `auth_failed`.
async fn login_error(
    ctx: &ProxyContext,
    peer: SocketAddr,
    client: &mut Framed,
    e: SessionError,
    setup: &mut Setup,
) {
    log_failure(peer, &e);
    ctx.stats.auth_failed(match &e {
        SessionError::Upstream(_) => AuthFailureReason::Upstream,
        _ => AuthFailureReason::Other,
    });
    let (code, message) = match &e {
        SessionError::Upstream(_) => (
            sqlstate::CONNECTION_FAILURE,
            format!("pgtrail: the database server is unavailable: {e}"),
        ),
        other if other.is_protocol_violation() => (sqlstate::PROTOCOL_VIOLATION, e.to_string()),
        _ => (sqlstate::CONNECTION_FAILURE, e.to_string()),
    };
    let _ = client
        .write(&build::error_response(Severity::Fatal, code, &message))
        .await;
    let why = match &e {
        SessionError::Closed => "client closed the connection during login".into(),
        e => format!("login failed: {e}"),
    };
    setup.ended(client, why);
    if let Some(info) = &setup.info {
        let info = Arc::new(info.clone());
        session_event(ctx, SessionEventType::AuthFailed, info, Some(e.to_string())).await;
    }
}

/// Forwards a CancelRequest whose key matches a session, and audits it as a
/// `cancel` session record: the session it names, the sender's address and
/// what became of it. Unmatched keys (guesses cost one packet each) are
/// logged and audited at most every 10 s, with the count since.
async fn forward_cancel(ctx: &ProxyContext, peer: SocketAddr, pid: i32, secret: &[u8]) {
    let Some(key) = ctx.cancel.lookup(pid, secret) else {
        ctx.stats.cancelled(CancelResult::Unmatched);
        if let Some(since) = ctx.cancel.unmatched_report() {
            tracing::info!(%peer, pid, unmatched_since_last = since, "cancel request with unknown key ignored (reported at most every 10 s)");
            let info = SessionInfo::unidentified(peer);
            let reason = format!("cancel request with an unknown key for backend pid {pid} ignored; {since} more unmatched since the last such record");
            session_event(ctx, SessionEventType::Cancel, Arc::new(info), Some(reason)).await;
        }
        return;
    };
    let reason = match crate::cancel::send_cancel(&key).await {
        Ok(()) => {
            ctx.stats.cancelled(CancelResult::Forwarded);
            tracing::debug!(%peer, pid, "cancel request forwarded");
            format!("cancel request for backend pid {pid} forwarded to the server")
        }
        Err(e) => {
            ctx.stats.cancelled(CancelResult::Failed);
            tracing::warn!(%peer, error = %e, "could not forward cancel request");
            format!("cancel request for backend pid {pid} could not be forwarded: {e}")
        }
    };
    // The session it names, seen from the address that sent the cancel.
    let mut info = key.session.as_ref().clone();
    info.client_addr = peer.ip();
    info.client_port = peer.port();
    session_event(ctx, SessionEventType::Cancel, Arc::new(info), Some(reason)).await;
}

async fn session_event(
    ctx: &ProxyContext,
    event_type: SessionEventType,
    session: Arc<SessionInfo>,
    reason: Option<String>,
) {
    let event = SessionEvent {
        event_type,
        session,
        at: SystemTime::now(),
        reason,
        bytes_in: 0,
        bytes_out: 0,
        statements: 0,
        duration_us: 0,
    };
    ctx.audit.send(AuditEvent::Session(Box::new(event))).await;
}

fn log_failure(peer: SocketAddr, e: &SessionError) {
    match e {
        SessionError::Closed => {
            tracing::debug!(%peer, "client closed the connection during startup")
        }
        e if e.is_protocol_violation() => tracing::warn!(%peer, error = %e, "invalid startup"),
        e => tracing::info!(%peer, error = %e, "session setup failed"),
    }
}
