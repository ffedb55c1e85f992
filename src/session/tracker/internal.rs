//! pgtrail's own messages on a client's connection: the attribution
//! markers (`cdc::marker`), sent before a statement that may write in a
//! block when another may have written since the previous marker, and
//! just before a client's transaction ends when it needs one (`writes.rs`;
//! ARCHITECTURE.md, "Attribution markers").
//!
//! They ride the same FIFO as the client's messages, as `Expect::Internal`
//! entries, so the server's answers to them are known by position: they
//! are swallowed (never reach the client, never become records), an error
//! earlier in a pipeline skips them as the server does, and the client's
//! own answers around them are untouched. Where the transaction a marker
//! would land in cannot be told from here (a Query string in flight, a
//! batch ahead that starts or ends a block), no marker is sent.

use std::sync::atomic::{AtomicU64, Ordering};

use super::queue::Expect;
use super::Tracker;
use crate::audit::event::TxnStatus;
pub use crate::cdc::marker::Boundary;
use crate::protocol::{backend, frontend, tag, Malformed};

/// `25P02`: a statement sent into an aborted block.
const IN_FAILED_TRANSACTION: &str = "25P02";

/// Where a server frame goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Client,
    /// An answer to pgtrail's own message: dropped.
    Swallow,
    /// Dropped, and these bytes (a frame held back, `wrap.rs`) written
    /// in its place.
    Replace(bytes::Bytes),
}

/// One of pgtrail's messages the server will answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Parse,
    Bind,
    Execute,
    Close,
    /// Close, Parse and Bind of the failing statement sent in place of a
    /// refused Execute (`verified.rs`): swallowed when they succeed; an
    /// error of theirs answers the client's Execute.
    RefuseClose,
    RefuseParse,
    RefuseBind,
}

/// How a marker goes to the server: Bind and Execute of the session's
/// marker statement, in the unnamed portal right before a client's Query
/// (`Simple`: the Query replaces that portal anyway; no Sync, so the
/// server answers both in one write), or in a portal of pgtrail's closed
/// after it (`Extended`: the client's Sync follows); before the client's
/// frame (a statement that may write after others in a block, a
/// `SAVEPOINT`, the end of a transaction) or after it (`ExtendedAfter`:
/// the client's CopyDone of an extended-protocol COPY).
/// A write sent as a Query outside a transaction is wrapped: `BEGIN`
/// before it, the marker and `COMMIT` after it (`wrap.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerForm {
    Simple,
    Extended,
    ExtendedAfter,
    Wrapped,
    /// A wrapped `COPY ... FROM`: `BEGIN` before it; the marker and
    /// `COMMIT` after the client's CopyDone (`wrap.rs`).
    WrappedCopy,
}

impl MarkerForm {
    /// Sent after the client's frame (its answers come after the frame's).
    pub fn after(self) -> bool {
        matches!(
            self,
            MarkerForm::ExtendedAfter | MarkerForm::Wrapped | MarkerForm::WrappedCopy
        )
    }
}

/// A marker to send with a client frame: how, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerPlan {
    pub form: MarkerForm,
    pub boundary: Boundary,
    /// The transaction it lands in.
    pub transaction_id: uuid::Uuid,
}

/// Counts of pgtrail's own statements, for `/metrics`.
#[derive(Debug, Default)]
pub struct InternalStats {
    pub markers_sent: AtomicU64,
    /// A marker the server answered with an error (the client's
    /// transaction is then aborted: this should never happen).
    pub markers_failed: AtomicU64,
    /// Sessions whose role may not emit markers (`session::marker_probe`).
    pub sessions_without_markers: AtomicU64,
}

impl Tracker {
    /// Whether a marker goes to the server with this client frame, how,
    /// and what it says. Called once per frame, before `client_frame`; it
    /// also notes the statements that may write (`writes.rs`).
    pub fn marker_for(&mut self, tag: u8, body: &[u8]) -> Option<MarkerPlan> {
        if !self.markers_allowed {
            return None;
        }
        match tag {
            tag::frontend::QUERY => self.query_marker(frontend::query(body).ok()?),
            tag::frontend::EXECUTE => {
                let e = frontend::execute(body).ok()?;
                let text = self.portals.get(e.portal)?.shared_text();
                let lead = words::Lead::of(&text);
                let may_write = lead.may_write();
                let plan = self.execute_marker(lead, may_write, e.max_rows);
                // What the batch's Sync will go by (after this Execute's
                // own plan, which goes by the Executes before it).
                self.may_have_written |= may_write;
                self.copy_in_batch |= lead.is_copy();
                plan
            }
            tag::frontend::COPY_DONE => self.copy_done_marker(),
            // A function call may write: no marker can say which
            // statement of the transaction it is.
            tag::frontend::FUNCTION_CALL => {
                self.writes.statement(None);
                None
            }
            // The Sync that ends an implicit transaction which may have
            // written; the next batch starts afresh.
            tag::frontend::SYNC => {
                let plan = self.sync_marker();
                self.may_have_written = false;
                self.copy_in_batch = false;
                plan
            }
            _ => None,
        }
    }

    /// A Query: the end of a block, a write in a block, or a lone write
    /// outside one; only when nothing in flight runs a statement (nothing
    /// of the client's at all, for a wrap), so the transaction and the
    /// statement's index are known.
    fn query_marker(&mut self, text: &[u8]) -> Option<MarkerPlan> {
        let quiet = self
            .expected
            .iter()
            .all(|e| matches!(e, Expect::Internal(_)));
        let settled = self.settled();
        let status = self.txn_status;
        let lead = words::Lead::of(text);
        if status == TxnStatus::InBlock && settled && lead.ends_transaction() {
            return self.writes.end().map(|b| self.plan(MarkerForm::Simple, b));
        }
        if status == TxnStatus::Idle && quiet {
            if lead.is_copy_from() {
                return Some(self.plan(MarkerForm::WrappedCopy, Boundary::End(Some(0))));
            }
            let wrap = words::wrappable(text);
            return wrap.map(|writer| self.plan(MarkerForm::Wrapped, Boundary::End(writer)));
        }
        let single = words::single_statement(text);
        let markable = self.statement_markers && status == TxnStatus::InBlock && settled;
        if single && self.statement_markers {
            if lead.is_savepoint() {
                return self
                    .writes
                    .savepoint(markable)
                    .map(|b| self.plan(MarkerForm::Simple, b));
            }
            if lead.rolls_back_to_savepoint() {
                self.writes.rolled_back_to_savepoint();
                return None;
            }
        }
        if !lead.may_write() && single {
            return None;
        }
        let index = (settled && single).then(|| self.statement_index());
        if markable {
            // Right before it (the server is not in COPY mode yet, even
            // before a COPY): only when another statement may have
            // written since the previous marker.
            return self
                .writes
                .before(index)
                .map(|b| self.plan(MarkerForm::Simple, b));
        }
        self.writes.statement(index);
        None
    }

    /// An Execute: the end of a block, or a write in one.
    fn execute_marker(
        &mut self,
        lead: words::Lead<'_>,
        may_write: bool,
        max_rows: i32,
    ) -> Option<MarkerPlan> {
        let usable = self.one_transaction_in_flight() && self.txn_status != TxnStatus::Failed;
        if lead.ends_transaction() {
            let end = usable.then(|| self.writes.end()).flatten();
            return end.map(|b| self.plan(MarkerForm::Extended, b));
        }
        if self.statement_markers && lead.is_savepoint() {
            // Right before it, as before a Query string's (drivers that
            // save a point before each statement send it this way).
            let markable = usable && self.txn_status == TxnStatus::InBlock;
            return self
                .writes
                .savepoint(markable)
                .map(|b| self.plan(MarkerForm::Extended, b));
        }
        if self.statement_markers && lead.rolls_back_to_savepoint() {
            self.writes.rolled_back_to_savepoint();
        }
        if !may_write {
            return None;
        }
        let index = usable.then(|| self.statement_index());
        // Right before it (the server is not in COPY mode yet, even before
        // a COPY), when another statement may have written since the
        // previous marker; not for a portal run in parts (one statement
        // answered several times).
        let markable = usable
            && self.statement_markers
            && self.txn_status == TxnStatus::InBlock
            && max_rows == 0;
        if markable {
            return self
                .writes
                .before(index)
                .map(|b| self.plan(MarkerForm::Extended, b));
        }
        self.writes.statement(index);
        None
    }

    /// The Sync that ends an implicit transaction which may have written,
    /// also behind other batches of a pipeline: their transactions open
    /// first, one per batch with an Execute, so this one's id is known.
    /// Behind other batches the marker names the transaction only.
    fn sync_marker(&mut self) -> Option<MarkerPlan> {
        let implicit = self.txn_status == TxnStatus::Idle;
        if !implicit || !self.may_have_written || self.copy_in_batch {
            return None;
        }
        let (batches, new) = self.batches_ahead()?;
        if batches == 0 {
            return Some(self.end_plan(MarkerForm::Extended));
        }
        Some(MarkerPlan {
            transaction_id: self.transactions.after_new(new),
            ..self.plan(MarkerForm::Extended, Boundary::End(None))
        })
    }

    /// The CopyDone of an extended-protocol `COPY ... FROM` in an implicit
    /// transaction: its marker goes right after it, where the server has
    /// left COPY mode and the client's Sync, which ends the transaction,
    /// has not come yet (a Sync sent into COPY mode was ignored). Only
    /// when the COPY's Execute is all that is in flight.
    fn copy_done_marker(&mut self) -> Option<MarkerPlan> {
        if !self.copy_in || self.txn_status != TxnStatus::Idle || self.wrap.is_some() {
            return None;
        }
        let mut in_flight = self
            .expected
            .iter()
            .filter(|e| !matches!(e, Expect::Internal(_)));
        let (Some(Expect::Execute { text, .. }), None) = (in_flight.next(), in_flight.next())
        else {
            return None;
        };
        words::is_copy_from(text).then(|| self.end_plan(MarkerForm::ExtendedAfter))
    }

    /// The pipeline's batches ahead (ended by a Sync in flight), and how many
    /// of them will open a transaction of their own; `None` when one may
    /// start or end a block, or a Query string is in flight.
    fn batches_ahead(&self) -> Option<(u32, u32)> {
        let (mut batches, mut new, mut pending) = (0, 0, false);
        for e in &self.expected {
            match e {
                Expect::Simple { .. } | Expect::FunctionCall { .. } => return None,
                Expect::Execute { text, .. } => {
                    if words::ends_transaction(text) || words::begins_block(text) {
                        return None;
                    }
                    pending = true;
                }
                Expect::Sync => {
                    // The front batch may be open already: its answers began.
                    let opened = batches == 0 && self.transactions.is_open();
                    new += u32::from(pending && !opened);
                    (batches, pending) = (batches + 1, false);
                }
                _ => {}
            }
        }
        Some((batches, new))
    }

    /// The end of an implicit transaction (no marker inside it).
    fn end_plan(&self, form: MarkerForm) -> MarkerPlan {
        self.plan(form, Boundary::End(self.writes.single()))
    }

    /// A plan for a marker in the open transaction, or the next one
    /// (nothing in flight can open another first).
    fn plan(&self, form: MarkerForm, boundary: Boundary) -> MarkerPlan {
        MarkerPlan {
            form,
            boundary,
            transaction_id: self.transactions.current_or_next(),
        }
    }

    /// The index within its transaction of a statement sent now: after the
    /// ones the transaction has, and those still in flight.
    fn statement_index(&self) -> u32 {
        let in_flight = self
            .expected
            .iter()
            .filter(|e| matches!(e, Expect::Execute { .. } | Expect::Simple { .. }))
            .count() as u32;
        self.transactions.next_index() + in_flight
    }

    /// Nothing in flight can end the transaction a marker would land in.
    /// A COPY's Execute puts the server in COPY mode, where a message of
    /// pgtrail's would break the protocol: no marker in its batch or
    /// behind it. Other batches ahead are fine unless one may start or end
    /// a block; one that fails aborts the block, and the marker's error
    /// (25P02) is then what the client's Execute would have had.
    fn one_transaction_in_flight(&self) -> bool {
        if self.copy_in_batch {
            return false;
        }
        !self.expected.iter().any(|e| match e {
            Expect::Simple { .. } | Expect::FunctionCall { .. } => true,
            Expect::Execute { text, .. } => {
                words::ends_transaction(text)
                    || words::begins_block(text)
                    || words::rolls_back(text)
                    || words::is_copy(text)
            }
            _ => false,
        })
    }

    /// Nothing in flight runs a statement: what is queued (the client's
    /// Parse, Bind, Describe, Close and Sync, pgtrail's own messages)
    /// cannot end or start a transaction, so a marker sent now lands in
    /// the current one, and the next statement's index is known. Drivers
    /// close a dropped statement (Close and Sync) while the application
    /// goes on, as tokio-postgres does.
    fn settled(&self) -> bool {
        !self.expected.iter().any(|e| {
            matches!(
                e,
                Expect::Simple { .. } | Expect::Execute { .. } | Expect::FunctionCall { .. }
            )
        })
    }

    /// Whether the marker being built must prepare the session's marker
    /// statement first; from now on it counts as prepared.
    pub fn marker_parse_needed(&mut self) -> bool {
        !std::mem::replace(&mut self.marker_prepared, true)
    }

    /// The marker chosen by `marker_for` goes out (`with_parse`: as
    /// `marker_parse_needed` said): called before the client frame is fed
    /// for a marker that goes before it, after for one that goes after it,
    /// so its answers are expected in that order.
    pub fn marker_sent(&mut self, form: MarkerForm, with_parse: bool) {
        if !form.after() {
            self.may_have_written = false;
        }
        if with_parse {
            self.expected.push_back(Expect::Internal(Step::Parse));
        }
        let steps: &[Step] = match form {
            MarkerForm::Simple => {
                self.hold_client = true;
                &[Step::Bind, Step::Execute]
            }
            MarkerForm::Extended | MarkerForm::ExtendedAfter => {
                &[Step::Bind, Step::Execute, Step::Close]
            }
            MarkerForm::Wrapped => {
                self.wrap = Some(super::wrap::Wrap::new());
                &[]
            }
            MarkerForm::WrappedCopy => {
                self.wrap = Some(super::wrap::Wrap::copy());
                &[]
            }
        };
        for step in steps {
            self.expected.push_back(Expect::Internal(*step));
        }
        self.internal.markers_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A server frame while pgtrail's own message is at the front: `None`
    /// when the frame is not an answer to it (asynchronous messages:
    /// notices, notifications, parameter changes go to the client).
    pub(super) fn internal_frame(
        &mut self,
        step: Step,
        tag: u8,
        body: &[u8],
    ) -> Result<Option<Route>, Malformed> {
        use tag::backend as b;
        let done = match (step, tag) {
            (_, b::NOTIFICATION_RESPONSE | b::NOTICE_RESPONSE | b::PARAMETER_STATUS) => {
                return Ok(None)
            }
            (Step::RefuseClose | Step::RefuseParse | Step::RefuseBind, b::ERROR_RESPONSE) => {
                while matches!(
                    self.expected.front(),
                    Some(Expect::Internal(
                        Step::RefuseClose | Step::RefuseParse | Step::RefuseBind
                    ))
                ) {
                    self.expected.pop_front();
                }
                return Ok(None);
            }
            (_, b::ERROR_RESPONSE) => {
                if self.client_skipped_by_internal_error() {
                    // The marker went right before the client's message
                    // without a Sync of its own: the server now skips the
                    // client's messages up to its Sync, so the error is
                    // the client's (its transaction failed here).
                    self.count_internal_failure(body)?;
                    while matches!(self.expected.front(), Some(Expect::Internal(_))) {
                        self.expected.pop_front();
                    }
                    if self.hold_client {
                        // A Query has no Sync: pgtrail's ends the skipping,
                        // and its ReadyForQuery is the Query's.
                        self.queue_upstream(crate::protocol::build::sync());
                        self.release_client();
                    }
                    return Ok(None);
                }
                self.internal_failed(body)?;
                return Ok(Some(Route::Swallow));
            }
            (Step::Execute, b::COMMAND_COMPLETE) => {
                self.release_client();
                true
            }
            (Step::Parse, b::PARSE_COMPLETE)
            | (Step::Bind, b::BIND_COMPLETE)
            | (Step::Close | Step::RefuseClose, b::CLOSE_COMPLETE)
            | (Step::RefuseParse, b::PARSE_COMPLETE)
            | (Step::RefuseBind, b::BIND_COMPLETE) => true,
            (Step::Execute, b::DATA_ROW) => false,
            _ => {
                tracing::warn!(tag, ?step, "unexpected answer to pgtrail's marker");
                return Ok(None);
            }
        };
        if done {
            self.expected.pop_front();
        }
        Ok(Some(Route::Swallow))
    }

    /// The server refused pgtrail's marker. The client's transaction is
    /// aborted by it (its COMMIT will answer ROLLBACK): say so loudly.
    fn internal_failed(&mut self, body: &[u8]) -> Result<(), Malformed> {
        self.count_internal_failure(body)?;
        self.skip_internal_after_error();
        Ok(())
    }

    /// Counts and logs a refused marker (not one sent into a block that
    /// had already failed: nothing of the client's changes then).
    fn count_internal_failure(&mut self, body: &[u8]) -> Result<(), Malformed> {
        let fields = backend::error_fields(body)?;
        if matches!(self.expected.front(), Some(Expect::Internal(Step::Parse))) {
            // The marker statement was not made: prepare it next time.
            self.marker_prepared = false;
        }
        if fields.code == IN_FAILED_TRANSACTION {
            return Ok(());
        }
        self.internal.markers_failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            session_id = %self.session.session_id,
            sqlstate = %fields.code,
            message = %fields.message,
            "the server refused pgtrail's attribution marker"
        );
        Ok(())
    }

    /// pgtrail's messages at the front are followed by the client's, with
    /// no Sync between them: an error of theirs makes the server skip the
    /// client's up to its Sync.
    fn client_skipped_by_internal_error(&self) -> bool {
        let mut rest = self
            .expected
            .iter()
            .skip_while(|e| matches!(e, Expect::Internal(_)));
        !matches!(rest.next(), None | Some(Expect::Sync))
    }

    /// A marker went before a client's Query without a Sync: if the server
    /// refuses it, it skips everything up to a Sync, so nothing more of the
    /// client's may follow until the marker is answered (`holds_client`).
    pub fn holds_client(&self) -> bool {
        self.hold_client
    }

    /// The client's messages may follow again; the relay is told once
    /// (`take_client_release`).
    fn release_client(&mut self) {
        self.client_released |= std::mem::take(&mut self.hold_client);
    }

    /// Whether the client's messages were held and may follow now. The
    /// relay writes pgtrail's bytes for the server (`take_upstream`)
    /// before the client's next.
    pub fn take_client_release(&mut self) -> bool {
        std::mem::take(&mut self.client_released)
    }

    /// The server skips the rest up to the next Sync, the client's or
    /// pgtrail's own.
    fn skip_internal_after_error(&mut self) {
        self.skip_to_sync();
    }
}

use super::words;
