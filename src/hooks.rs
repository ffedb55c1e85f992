//! Extension points: a trait of session phases with default no-ops, so that
//! policy checks and change-data-capture tagging can plug in without
//! touching the relay.

use crate::audit::{SessionInfo, StatementEvent};

pub trait SessionHooks: Send + Sync {
    /// Authentication succeeded; the relay is about to start.
    fn on_session_start(&self, _session: &SessionInfo) {}
    /// A statement is being sent upstream: `text` is a Query message's whole
    /// string (all its statements) or a Parse message's query, as the client
    /// sent it, without the protocol's terminating NUL or the prepared
    /// statement's name.
    fn on_statement(&self, _session: &SessionInfo, _text: &[u8]) {}
    /// A statement has its result; called before the event is audited.
    fn on_result(&self, _event: &StatementEvent) {}
    /// The session is over.
    fn on_session_end(&self, _session: &SessionInfo) {}
}

/// The default: every phase does nothing.
pub struct NoHooks;

impl SessionHooks for NoHooks {}
