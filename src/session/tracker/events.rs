//! Turning the server's results into [`StatementEvent`]s: which statement
//! a CommandComplete, ErrorResponse or PortalSuspended finishes, its text,
//! parameters, timing, tag, rows and failure.

use bytes::Bytes;
use std::time::Instant;

use super::queue::Expect;
use super::{txn, Tracker};
use crate::audit::build::own_statement;
use crate::audit::event::TxnStatus;
use crate::audit::{AuditEvent, Failure, Param, Protocol, StatementEvent};
use crate::protocol::backend;

impl Tracker {
    /// CommandComplete, PortalSuspended or FunctionCallResponse.
    pub(super) fn complete(&mut self, now: Instant, tag: Option<&[u8]>, failure: Option<Failure>) {
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

    pub(super) fn empty_query(&mut self) {
        if matches!(self.expected.front(), Some(Expect::Execute { .. })) {
            self.expected.pop_front();
        }
        self.rows_seen = 0;
    }

    pub(super) fn error(&mut self, now: Instant, fields: backend::ErrorFields) {
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
            // pgtrail's own messages are answered in `internal.rs`.
            Some(Expect::Sync | Expect::Internal(_)) | None => return,
        }
        self.skip_to_sync();
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
        let started_at = self.clock.wall(start);
        let position = failure.as_ref().and_then(|f| f.position);
        let own_text = || own_statement(&text, statement_index, position).to_vec();
        let param_texts = || super::queue::params_as_text(params.as_deref());
        let finished = txn::Finished {
            started_at,
            started: start,
            tag: command_tag.as_deref(),
            failed: failure.is_some(),
            text: &own_text,
            sent: &text,
            index: statement_index,
            params: &param_texts,
        };
        let (transaction, ended, end_user) =
            self.transactions
                .statement(finished, &self.application_name, now);
        self.pending
            .push(AuditEvent::Statement(Box::new(StatementEvent {
                session: self.session.clone(),
                application_name: self.application_name.clone(),
                protocol,
                text,
                statement_index,
                // Kept only to read a claim when not configured to log.
                params: params.filter(|_| self.log_params),
                started_at,
                duration_us: now.saturating_duration_since(start).as_micros() as u64,
                command_tag,
                rows: if failure.is_some() { None } else { rows },
                failure,
                txn_status: TxnStatus::Unknown,
                transaction,
                end_user,
            })));
        if let Some(txn) = ended {
            let ended = self.transaction_ended(txn);
            self.pending.push(ended);
        }
    }
}
