//! The FIFO of what the server will answer: client frames push entries
//! (a Query string, Parse, Bind, Execute, Describe, Close, Sync, a function
//! call); the server's answers pop them, an error skips to the next Sync,
//! ReadyForQuery ends a round. Prepared statements and portals are kept so
//! that an Execute knows its text.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

use super::internal::Step;
use super::{ClientFrame, Tracker};
use crate::audit::{AuditEvent, Param};
use crate::protocol::{frontend, tag, Malformed};

/// What the server will answer, in order.
#[derive(Debug)]
pub(super) enum Expect {
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
    /// pgtrail's own message (`internal.rs`): answered, never recorded.
    Internal(super::internal::Step),
}

#[derive(Debug, Clone)]
pub(super) struct Portal {
    text: Bytes,
    params: Option<Arc<Vec<Param>>>,
}

impl Portal {
    /// The portal's statement text (shared, not copied).
    pub(super) fn shared_text(&self) -> Bytes {
        self.text.clone()
    }

    /// Its bind parameters as text, when kept.
    pub(super) fn param_texts(&self) -> Vec<Option<String>> {
        params_as_text(self.params.as_deref().map(|p| &p[..]))
    }
}

/// Bind parameters in text format as text (binary ones, and non-UTF-8
/// text, are unknown).
pub(super) fn params_as_text(params: Option<&[Param]>) -> Vec<Option<String>> {
    params
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let v = p.value.as_ref().filter(|_| !p.binary)?;
            String::from_utf8(v.to_vec()).ok()
        })
        .collect()
}

impl Tracker {
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
        // Parameters are also kept (not recorded) where they may set a
        // claim: `set_config('pgtrail.end_user', $1, ...)`.
        let keep = self.log_params
            || (self.transactions.claims().is_some()
                && crate::identity::setting::mentions_claim(&text));
        let params = if keep {
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

    pub(super) fn pop_if(&mut self, pred: impl Fn(&Expect) -> bool) {
        if self.expected.front().is_some_and(pred) {
            self.expected.pop_front();
        }
    }

    /// After an error in the extended protocol the server ignores everything
    /// up to the next Sync.
    pub(super) fn skip_to_sync(&mut self) {
        while let Some(front) = self.expected.front() {
            match front {
                Expect::Parse { .. }
                | Expect::Bind { .. }
                | Expect::Describe
                | Expect::Close
                | Expect::Execute { .. }
                | Expect::Internal(
                    Step::Parse
                    | Step::Bind
                    | Step::Execute
                    | Step::Close
                    | Step::RefuseClose
                    | Step::RefuseParse
                    | Step::RefuseBind,
                ) => {
                    match self.expected.pop_front() {
                        Some(Expect::Parse { name, previous, .. }) => {
                            match previous {
                                Some(p) => self.prepared.insert(name, p),
                                None => self.prepared.remove(&name),
                            };
                        }
                        // The server skipped pgtrail's Parse too.
                        Some(Expect::Internal(Step::Parse)) => self.marker_prepared = false,
                        _ => {}
                    }
                }
                _ => break,
            }
        }
    }

    pub(super) fn ready_for_query(&mut self, now: Instant) {
        while let Some(e) = self.expected.pop_front() {
            match e {
                Expect::Simple { .. } | Expect::Sync | Expect::FunctionCall { .. } => break,
                other => tracing::debug!(?other, "ReadyForQuery skipped an expected response"),
            }
        }
        for mut e in self.pending.drain(..) {
            if let AuditEvent::Statement(s) = &mut e {
                s.txn_status = self.txn_status;
            }
            self.ready.push(e);
        }
        let app = &self.application_name;
        if let Some(txn) = self.transactions.ready(self.txn_status, app, now) {
            let ended = self.transaction_ended(txn);
            self.ready.push(ended);
        }
    }
}
