//! The per-session queue of expected responses. Every client message that
//! the server answers pushes an entry; every answer pops or advances one.
//! This ties each CommandComplete, ErrorResponse and PortalSuspended to the
//! statement that caused it, through pipelines, multi-statement Query
//! strings, errors that skip to Sync, and COPY.
//!
//! No I/O here: the relay feeds frames in and takes finished events out.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::audit::event::TxnStatus;
use crate::audit::{Failure, Param, Protocol, SessionInfo, StatementEvent};
use crate::protocol::{backend, frontend, tag, Malformed};

/// What the server will answer, in order.
#[derive(Debug)]
enum Expect {
    /// A Query string: one result per statement, then ReadyForQuery.
    Simple {
        text: Bytes,
        sent: Instant,
        index: u32,
    },
    Parse {
        name: Bytes,
        text: Bytes,
        previous: Option<Bytes>,
        sent: Instant,
    },
    Bind {
        text: Bytes,
        sent: Instant,
    },
    Describe,
    Close,
    Execute {
        text: Bytes,
        params: Option<Arc<Vec<Param>>>,
        sent: Instant,
    },
    /// FunctionCall: a result, then ReadyForQuery.
    FunctionCall {
        oid: u32,
        sent: Instant,
    },
    Sync,
}

#[derive(Debug, Clone)]
struct Portal {
    text: Bytes,
    params: Option<Arc<Vec<Param>>>,
}

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
    /// Finished statements whose ReadyForQuery has not arrived yet.
    pending: Vec<StatementEvent>,
    /// Finished statements whose ReadyForQuery (and so txn_status) arrived.
    ready: Vec<StatementEvent>,
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
}

impl Tracker {
    pub fn new(session: Arc<SessionInfo>, clock: SessionClock, log_params: bool) -> Self {
        let application_name = Arc::from(session.application_name.as_str());
        Tracker {
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
        }
    }

    pub fn session(&self) -> &SessionInfo {
        &self.session
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
            _ => self.expected.iter().any(|e| matches!(e, Expect::Sync)),
        }
    }

    /// Every statement finished so far, released per statement rather than
    /// per ReadyForQuery: the relay calls this after each read from the
    /// server, before it writes that read's frames to the client, so no
    /// result reaches the client before its event is queued (and, under
    /// `before_ack`, durable), and nothing piles up before a Sync. Events
    /// whose ReadyForQuery was in the frames read carry its status; the
    /// others carry `TxnStatus::Unknown`.
    pub fn take_finished(&mut self) -> Vec<StatementEvent> {
        let mut finished = std::mem::take(&mut self.ready);
        finished.append(&mut self.pending);
        finished
    }

    /// A whole frame from the client; `body` excludes the 5-byte header.
    pub fn client_frame(
        &mut self,
        tag: u8,
        body: &[u8],
        now: Instant,
    ) -> Result<ClientFrame, Malformed> {
        match tag {
            tag::frontend::QUERY => {
                let text = Bytes::copy_from_slice(frontend::query(body)?);
                self.expected.push_back(Expect::Simple {
                    text,
                    sent: now,
                    index: 0,
                });
            }
            tag::frontend::PARSE => {
                let p = frontend::parse(body)?;
                let name = Bytes::copy_from_slice(p.statement);
                let text = Bytes::copy_from_slice(p.query);
                let previous = self.prepared.insert(name.clone(), text.clone());
                self.expected.push_back(Expect::Parse {
                    name,
                    text,
                    previous,
                    sent: now,
                });
            }
            tag::frontend::BIND => self.bind(body, now)?,
            tag::frontend::EXECUTE => {
                let e = frontend::execute(body)?;
                let (text, params) = match self.portals.get(e.portal) {
                    Some(p) => (p.text.clone(), p.params.clone()),
                    None => (Bytes::new(), None),
                };
                self.expected.push_back(Expect::Execute {
                    text,
                    params,
                    sent: now,
                });
            }
            tag::frontend::DESCRIBE => {
                frontend::close_or_describe(body)?;
                self.expected.push_back(Expect::Describe);
            }
            tag::frontend::CLOSE => {
                let (target, name) = frontend::close_or_describe(body)?;
                match target {
                    frontend::Target::Statement => self.prepared.remove(name),
                    frontend::Target::Portal => self.portals.remove(name).map(|p| p.text),
                };
                self.expected.push_back(Expect::Close);
            }
            tag::frontend::SYNC => self.expected.push_back(Expect::Sync),
            tag::frontend::FUNCTION_CALL => {
                let oid = frontend::function_call_oid(body)?;
                self.expected
                    .push_back(Expect::FunctionCall { oid, sent: now });
            }
            tag::frontend::TERMINATE => return Ok(ClientFrame::Terminate),
            tag::frontend::COPY_DATA | tag::frontend::COPY_DONE | tag::frontend::COPY_FAIL => {
                self.forget_syncs_sent_into_copy()
            }
            // Flush, COPY data and anything unknown: forwarded, no answer expected.
            _ => {}
        }
        Ok(ClientFrame::Forward)
    }

    /// COPY data means the server is in copy-in mode, where it ignores
    /// Sync: a Sync sent right after the COPY's Execute (as drivers do)
    /// will get no ReadyForQuery of its own.
    fn forget_syncs_sent_into_copy(&mut self) {
        let syncs = self
            .expected
            .iter()
            .rev()
            .take_while(|e| matches!(e, Expect::Sync))
            .count();
        let keep = self.expected.len() - syncs;
        if syncs > 0
            && keep > 0
            && matches!(self.expected.get(keep - 1), Some(Expect::Execute { .. }))
        {
            self.expected.truncate(keep);
        }
    }

    fn bind(&mut self, body: &[u8], now: Instant) -> Result<(), Malformed> {
        let b = frontend::bind(body)?;
        let text = self.prepared.get(b.statement).cloned().unwrap_or_default();
        let params = if self.log_params {
            let values = b.params()?;
            let owned = values
                .iter()
                .map(|p| Param {
                    value: p.value.map(Bytes::copy_from_slice),
                    binary: p.binary,
                })
                .collect();
            Some(Arc::new(owned))
        } else {
            None
        };
        self.portals.insert(
            Bytes::copy_from_slice(b.portal),
            Portal {
                text: text.clone(),
                params,
            },
        );
        self.expected.push_back(Expect::Bind { text, sent: now });
        Ok(())
    }

    /// A whole frame from the server; `body` excludes the 5-byte header.
    pub fn server_frame(&mut self, tag: u8, body: &[u8], now: Instant) -> Result<(), Malformed> {
        match tag {
            tag::backend::DATA_ROW => self.rows_seen += 1,
            tag::backend::COMMAND_COMPLETE => {
                let tag = backend::command_tag(body)?;
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
                self.ready_for_query();
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

    fn pop_if(&mut self, pred: impl Fn(&Expect) -> bool) {
        if self.expected.front().is_some_and(pred) {
            self.expected.pop_front();
        }
    }

    /// CommandComplete, PortalSuspended or FunctionCallResponse.
    fn complete(&mut self, now: Instant, tag: Option<&[u8]>, failure: Option<Failure>) {
        let rows = tag
            .and_then(backend::rows_from_tag)
            .or(Some(self.rows_seen));
        let command_tag = tag.map(|t| crate::text::lossless(t).0.into_owned());
        match self.expected.front_mut() {
            Some(Expect::Simple { text, sent, index }) => {
                let (text, sent, i) = (text.clone(), *sent, *index);
                *index += 1;
                self.finish(
                    Protocol::Simple,
                    text,
                    i,
                    None,
                    sent,
                    now,
                    command_tag,
                    rows,
                    failure,
                );
            }
            Some(Expect::Execute { .. }) => {
                if let Some(Expect::Execute { text, params, sent }) = self.expected.pop_front() {
                    let params = params.map(|p| p.as_ref().clone());
                    self.finish(
                        Protocol::Extended,
                        text,
                        0,
                        params,
                        sent,
                        now,
                        command_tag,
                        rows,
                        failure,
                    );
                }
            }
            Some(Expect::FunctionCall { oid, sent }) => {
                let text = Bytes::from(format!("fastpath function call, oid {oid}"));
                let sent = *sent;
                self.finish(
                    Protocol::FunctionCall,
                    text,
                    0,
                    None,
                    sent,
                    now,
                    command_tag,
                    None,
                    failure,
                );
            }
            _ => tracing::debug!("result without a pending statement"),
        }
    }

    fn empty_query(&mut self) {
        if matches!(self.expected.front(), Some(Expect::Execute { .. })) {
            self.expected.pop_front();
        }
        self.rows_seen = 0;
    }

    fn error(&mut self, now: Instant, fields: backend::ErrorFields) {
        if fields.is_fatal() {
            self.server_fatal = Some(format!(
                "{} {}: {}",
                fields.severity, fields.code, fields.message
            ));
        }
        let failure = Failure {
            sqlstate: fields.code.clone(),
            message: fields.message.clone(),
            position: fields.position,
        };
        match self.expected.front() {
            Some(Expect::Simple { .. } | Expect::Execute { .. } | Expect::FunctionCall { .. }) => {
                self.complete(now, None, Some(failure));
            }
            Some(Expect::Parse { .. } | Expect::Bind { .. }) => {
                match self.expected.pop_front() {
                    Some(Expect::Parse {
                        name,
                        text,
                        previous,
                        sent,
                    }) => {
                        // The statement was not created: keep what PostgreSQL kept.
                        match previous {
                            Some(p) => self.prepared.insert(name, p),
                            None => self.prepared.remove(&name),
                        };
                        self.finish(
                            Protocol::Extended,
                            text,
                            0,
                            None,
                            sent,
                            now,
                            None,
                            None,
                            Some(failure),
                        );
                    }
                    Some(Expect::Bind { text, sent }) => {
                        self.finish(
                            Protocol::Extended,
                            text,
                            0,
                            None,
                            sent,
                            now,
                            None,
                            None,
                            Some(failure),
                        );
                    }
                    _ => {}
                }
            }
            Some(Expect::Describe | Expect::Close) => {
                self.expected.pop_front();
            }
            Some(Expect::Sync) | None => return,
        }
        self.skip_to_sync();
    }

    /// After an error in the extended protocol the server ignores everything
    /// up to the next Sync.
    fn skip_to_sync(&mut self) {
        while let Some(front) = self.expected.front() {
            match front {
                Expect::Parse { .. }
                | Expect::Bind { .. }
                | Expect::Describe
                | Expect::Close
                | Expect::Execute { .. } => {
                    if let Some(Expect::Parse { name, previous, .. }) = self.expected.pop_front() {
                        match previous {
                            Some(p) => self.prepared.insert(name, p),
                            None => self.prepared.remove(&name),
                        };
                    }
                }
                _ => break,
            }
        }
    }

    fn ready_for_query(&mut self) {
        while let Some(e) = self.expected.pop_front() {
            match e {
                Expect::Simple { .. } | Expect::Sync | Expect::FunctionCall { .. } => break,
                other => tracing::debug!(?other, "ReadyForQuery skipped an expected response"),
            }
        }
        for mut e in self.pending.drain(..) {
            e.txn_status = self.txn_status;
            self.ready.push(e);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        protocol: Protocol,
        text: Bytes,
        statement_index: u32,
        params: Option<Vec<Param>>,
        sent: Instant,
        now: Instant,
        command_tag: Option<String>,
        rows: Option<u64>,
        failure: Option<Failure>,
    ) {
        let start = sent.max(self.last_done);
        self.last_done = now;
        self.rows_seen = 0;
        self.statements += 1;
        self.pending.push(StatementEvent {
            session: self.session.clone(),
            application_name: self.application_name.clone(),
            protocol,
            text,
            statement_index,
            params,
            started_at: self.clock.wall(start),
            duration_us: now.saturating_duration_since(start).as_micros() as u64,
            command_tag,
            rows: if failure.is_some() { None } else { rows },
            failure,
            txn_status: TxnStatus::Unknown,
        });
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
