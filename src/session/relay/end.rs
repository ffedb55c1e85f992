//! How a session ends: which side ended it, what each side is told, and
//! the reason the disconnect record gives.

use std::sync::atomic::Ordering;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Shared, LAST_WORDS};
use crate::protocol::build::{self, Severity};
use crate::protocol::sqlstate;
use crate::session::error::SessionError;
use crate::session::refuse::REFUSED_SQLSTATE;

pub(super) enum ClientEnd {
    Terminated,
    Eof,
}

pub(super) enum End {
    Client(Result<ClientEnd, SessionError>),
    Server(Result<(), SessionError>),
    Shutdown,
}

/// Says goodbye to whichever side is still there; returns the reason.
pub(super) async fn finish(
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
pub(super) async fn terminate(server_w: &mut (impl AsyncWrite + Unpin)) {
    let _ = tokio::time::timeout(LAST_WORDS, server_w.write_all(&build::terminate())).await;
}
