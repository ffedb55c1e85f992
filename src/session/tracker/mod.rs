//! The per-session queue of expected responses. Every client message that
//! the server answers pushes an entry; every answer pops or advances one.
//! This ties each CommandComplete, ErrorResponse and PortalSuspended to the
//! statement that caused it, through pipelines, multi-statement Query
//! strings, errors that skip to Sync, and COPY.
//!
//! No I/O here: the relay feeds frames in and takes finished events out.
//! `queue` keeps the FIFO (client frames push, answers pop); `events` turns
//! results into [`StatementEvent`]s.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::audit::event::{TransactionEvent, TxnStatus};
use crate::audit::{AuditEvent, SessionInfo};
use crate::protocol::{backend, tag, Malformed};

mod events;
mod internal;
mod queue;
mod txn;
mod verified;
mod words;
mod wrap;
mod writes;

pub use internal::{InternalStats, MarkerForm, MarkerPlan, Route};
use queue::{Expect, Portal};
use txn::Transactions;
pub use verified::Refusal;
pub use words::may_write;

/// What the relay should do after a client frame.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Forward,
    /// Terminate: forward it, then end the session.
    Terminate,
}

/// Converts the monotonic clock to wall-clock time for records.
#[derive(Debug, Clone, Copy)]
pub struct SessionClock {
    wall: SystemTime,
    mono: Instant,
}

impl SessionClock {
    pub fn now() -> Self {
        SessionClock {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    pub fn wall(&self, at: Instant) -> SystemTime {
        self.wall + at.saturating_duration_since(self.mono)
    }
}

pub struct Tracker {
    session: Arc<SessionInfo>,
    clock: SessionClock,
    log_params: bool,
    expected: VecDeque<Expect>,
    prepared: HashMap<Bytes, Bytes>,
    portals: HashMap<Bytes, Portal>,
    /// Finished statements (and the transactions they ended) whose
    /// ReadyForQuery has not arrived yet.
    pending: Vec<AuditEvent>,
    /// Finished statements whose ReadyForQuery (and so txn_status) arrived.
    ready: Vec<AuditEvent>,
    transactions: Transactions,
    /// When the server last finished something: a pipelined statement
    /// starts no earlier than that.
    last_done: Instant,
    rows_seen: u64,
    application_name: Arc<str>,
    txn_status: TxnStatus,
    statements: u64,
    /// The server's FATAL (or PANIC) error, as `FATAL 57P01: message`.
    server_fatal: Option<String>,
    /// Between CopyInResponse and ReadyForQuery: the server waits for the
    /// client's COPY data, even after an error.
    copy_in: bool,
    /// An Execute since the last Sync ran a statement that may write
    /// (followed by `marker_for`, only while markers are on).
    may_have_written: bool,
    /// An Execute since the last Sync ran a COPY.
    copy_in_batch: bool,
    /// A wrapped Query being answered (`wrap.rs`).
    wrap: Option<wrap::Wrap>,
    /// Markers after statements that may write, not only at the end.
    statement_markers: bool,
    /// The role may emit markers at all (`session::marker_probe`).
    markers_allowed: bool,
    /// The session's marker statement exists on the server.
    marker_prepared: bool,
    /// pgtrail's bytes for the server, asked for by the server side
    /// (`wrap.rs`), taken by the relay.
    upstream: Option<bytes::Bytes>,
    /// A marker went before a client's Query without a Sync and is not
    /// answered yet: the client's next messages wait (`internal.rs`).
    hold_client: bool,
    /// The hold ended; the relay has not been told yet.
    client_released: bool,
    /// The statements of the current transaction that may write.
    writes: writes::Writes,
    internal: Arc<InternalStats>,
    /// The session's role must name a verified end user (`verified.rs`).
    require_verified: bool,
}

impl Tracker {
    pub fn new(session: Arc<SessionInfo>, clock: SessionClock, log_params: bool) -> Self {
        let application_name = Arc::from(session.application_name.as_str());
        Tracker {
            transactions: Transactions::new(session.clone()),
            session,
            clock,
            log_params,
            expected: VecDeque::new(),
            prepared: HashMap::new(),
            portals: HashMap::new(),
            pending: Vec::new(),
            ready: Vec::new(),
            last_done: Instant::now(),
            rows_seen: 0,
            application_name,
            txn_status: TxnStatus::Idle,
            statements: 0,
            server_fatal: None,
            copy_in: false,
            may_have_written: false,
            copy_in_batch: false,
            wrap: None,
            statement_markers: true,
            markers_allowed: true,
            upstream: None,
            hold_client: false,
            client_released: false,
            marker_prepared: false,
            writes: writes::Writes::default(),
            internal: Arc::default(),
            require_verified: false,
        }
    }

    /// Counts pgtrail's own statements into `stats` (shared by a server's
    /// sessions) instead of a private counter.
    pub fn with_internal_stats(mut self, stats: Arc<InternalStats>) -> Self {
        self.internal = stats;
        self
    }

    /// Follows the session's end-user claims (`crate::identity`).
    pub fn with_claims(mut self, claims: Option<crate::identity::SessionClaims>) -> Self {
        if let Some(claims) = claims {
            self.require_verified = claims.identity().requires_verified(&self.session);
            self.transactions = self.transactions.with_claims(claims);
        }
        self
    }

    /// Markers only where transactions end (`cdc.attribution =
    /// "transaction"`), none after statements.
    pub fn transaction_markers_only(mut self) -> Self {
        self.statement_markers = false;
        self
    }

    /// `false`: no markers, the session's role may not emit them.
    pub fn with_markers_allowed(mut self, allowed: bool) -> Self {
        self.markers_allowed = allowed;
        self
    }

    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// The session's `application_name` as the server last reported it.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// Statements that got a result so far.
    pub fn statements(&self) -> u64 {
        self.statements
    }

    /// Nothing in flight and no transaction open: the server is waiting for
    /// the client in state `I`.
    pub fn is_idle(&self) -> bool {
        self.expected.is_empty() && self.txn_status == TxnStatus::Idle
    }

    /// The FATAL error the server sent, if any: it ends the session, whether
    /// or not a statement was in flight.
    pub fn server_fatal(&self) -> Option<&str> {
        self.server_fatal.as_deref()
    }

    /// A transaction's end as an event, with the statement the last
    /// `Before` marker claimed the changes after it for, if that claim
    /// held to the end (`writes.rs`).
    fn transaction_ended(&self, mut txn: TransactionEvent) -> AuditEvent {
        txn.tail_statement = self.writes.claim();
        AuditEvent::Transaction(Box::new(txn))
    }

    /// The session is over: a transaction still open ends with an unknown
    /// outcome (its event is taken with `take_finished`).
    pub fn end_session(&mut self, now: Instant) {
        if let Some(txn) = self.transactions.lost(&self.application_name, now) {
            self.pending.push(AuditEvent::Transaction(Box::new(txn)));
        }
    }

    /// Whether an error from the server now will be followed by a
    /// ReadyForQuery without anything more from the client: a Query string
    /// (or function call) is in flight, or a Sync is queued behind the
    /// failing extended-protocol message; not during COPY IN, where the
    /// server waits for the client's CopyDone or CopyFail.
    pub fn ready_follows_an_error(&self) -> bool {
        if self.copy_in {
            return false;
        }
        match self.expected.front() {
            Some(Expect::Simple { .. } | Expect::FunctionCall { .. }) => true,
            // A marker before a Query, refused: only pgtrail's Sync, sent
            // once the error is read, brings a ReadyForQuery.
            Some(Expect::Internal(_)) if self.hold_client => false,
            _ => self.expected.iter().any(|e| matches!(e, Expect::Sync)),
        }
    }

    /// Every statement finished so far, released per statement rather than
    /// per ReadyForQuery: the relay calls this after each read from the
    /// server, before it writes that read's frames to the client, so no
    /// result reaches the client before its event is queued (and, under
    /// `before_ack`, durable), and nothing piles up before a Sync. Events
    /// whose ReadyForQuery was in the frames read carry its status; the
    /// others carry `TxnStatus::Unknown`. A transaction's event follows its
    /// last statement's.
    pub fn take_finished(&mut self) -> Vec<AuditEvent> {
        let mut finished = std::mem::take(&mut self.ready);
        finished.append(&mut self.pending);
        finished
    }

    /// A whole frame from the server; `body` excludes the 5-byte header.
    /// Answers to pgtrail's own messages are to be swallowed.
    pub fn server_frame(&mut self, tag: u8, body: &[u8], now: Instant) -> Result<Route, Malformed> {
        if let Some(route) = self.wrap_frame(tag, body, now)? {
            return Ok(route);
        }
        if let Some(Expect::Internal(step)) = self.expected.front() {
            if let Some(route) = self.internal_frame(*step, tag, body)? {
                return Ok(route);
            }
        }
        self.plain_frame(tag, body, now)?;
        Ok(Route::Client)
    }

    /// A server frame the client gets.
    fn plain_frame(&mut self, tag: u8, body: &[u8], now: Instant) -> Result<(), Malformed> {
        match tag {
            tag::backend::DATA_ROW => self.rows_seen += 1,
            tag::backend::COMMAND_COMPLETE => {
                let tag = backend::command_tag(body)?;
                if tag == b"DEALLOCATE ALL" || tag == b"DISCARD ALL" {
                    // pgtrail's marker statement went with the client's.
                    self.marker_prepared = false;
                }
                self.complete(now, Some(tag), None);
            }
            tag::backend::PORTAL_SUSPENDED => self.complete(now, None, None),
            tag::backend::FUNCTION_CALL_RESPONSE => self.complete(now, Some(b""), None),
            tag::backend::EMPTY_QUERY_RESPONSE => self.empty_query(),
            tag::backend::ERROR_RESPONSE => {
                let fields = backend::error_fields(body)?;
                self.error(now, fields);
            }
            tag::backend::COPY_IN_RESPONSE => self.copy_in = true,
            tag::backend::READY_FOR_QUERY => {
                self.copy_in = false;
                self.txn_status = backend::ready_status(body)?;
                // The transaction it ends takes its writers' claim first.
                self.ready_for_query(now);
                if self.txn_status == TxnStatus::Idle {
                    self.writes.reset();
                }
            }
            tag::backend::PARSE_COMPLETE => self.pop_if(|e| matches!(e, Expect::Parse { .. })),
            tag::backend::BIND_COMPLETE => self.pop_if(|e| matches!(e, Expect::Bind { .. })),
            tag::backend::CLOSE_COMPLETE => self.pop_if(|e| matches!(e, Expect::Close)),
            tag::backend::ROW_DESCRIPTION | tag::backend::NO_DATA => {
                self.pop_if(|e| matches!(e, Expect::Describe))
            }
            tag::backend::PARAMETER_STATUS => {
                let (name, value) = backend::parameter_status(body)?;
                if name == b"application_name" {
                    self.application_name = Arc::from(crate::text::lossless(value).0.as_ref());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod claims_tests;
#[cfg(test)]
mod internal_tests;
#[cfg(test)]
mod tests;
