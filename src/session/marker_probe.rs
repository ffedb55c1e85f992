//! Whether the session's role may emit pgtrail's attribution markers, asked
//! once right after login when markers are on, before the client has its
//! ReadyForQuery. PostgreSQL checks a function's EXECUTE privilege when the
//! executor starts, whatever a CASE around the call decides, so a marker
//! sent for a role without the privilege fails, and takes the client's
//! statement or COMMIT with it. PUBLIC has the privilege unless a DBA
//! revoked it; a session without it sends no markers (its changes read
//! `attribution = none`), and says so.

use bytes::{BufMut, BytesMut};
use std::sync::atomic::Ordering;

use super::error::SessionError;
use super::stream::Framed;
use crate::audit::SessionInfo;
use crate::context::ProxyContext;
use crate::protocol::backend;
use crate::protocol::{build, tag, Frame};

/// True when the current role may call both functions a marker calls.
const PROBE_SQL: &[u8] = b"SELECT pg_catalog.has_function_privilege(\
    'pg_catalog.pg_logical_emit_message(boolean,text,bytea)', 'EXECUTE') \
    AND pg_catalog.has_function_privilege(\
    'pg_catalog.pg_current_xact_id_if_assigned()', 'EXECUTE')";

/// Whether `session` may send markers: always, when markers are off;
/// else asked of the server, and a session that may not is counted and
/// named in a warning.
pub async fn markers_allowed(
    ctx: &ProxyContext,
    session: &SessionInfo,
    up: &mut Framed,
    to_client: &mut BytesMut,
) -> Result<bool, SessionError> {
    if ctx.markers.is_none() || ask(up, to_client).await? {
        return Ok(true);
    }
    ctx.stats
        .markers
        .sessions_without_markers
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(session = %session.session_id, db_role = %session.db_role, "cdc: this role may not call pg_logical_emit_message (or pg_current_xact_id_if_assigned): the session sends no attribution markers, so its row changes read attribution = none; GRANT EXECUTE on both to it");
    Ok(false)
}

/// Asks the server on the freshly logged-in `up` (idle, between its
/// ReadyForQuery and the client's first message). What the server says on
/// its own meanwhile (ParameterStatus, a notification) goes to `to_client`;
/// the answers to pgtrail's query never do. A probe the server refuses
/// leaves markers on, as they were before there was a probe.
async fn ask(up: &mut Framed, to_client: &mut BytesMut) -> Result<bool, SessionError> {
    up.write(&build::query(PROBE_SQL)).await?;
    let mut allowed = true;
    loop {
        let frame = up.read_frame().await?;
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::DATA_ROW => {
                // A row that does not parse leaves markers on, as a
                // refused probe does.
                let row = backend::data_row(frame.slice(5..)).unwrap_or_default();
                allowed = !matches!(row.first(), Some(Some(v)) if v[..] == *b"f");
            }
            tag::backend::ERROR_RESPONSE => {
                let e = backend::error_fields(view.body)?;
                tracing::warn!(sqlstate = %e.code, error = %e.message, "cdc: the marker privilege check failed; this session sends markers");
            }
            tag::backend::PARAMETER_STATUS | tag::backend::NOTIFICATION_RESPONSE => {
                to_client.put_slice(&frame);
            }
            tag::backend::READY_FOR_QUERY => return Ok(allowed),
            _ => {}
        }
    }
}
