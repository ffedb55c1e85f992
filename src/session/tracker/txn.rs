//! Transactions as the proxy sees them: every statement belongs to one,
//! explicit (`BEGIN` … `COMMIT`) or implicit (an autocommit statement, a
//! Query string, the messages up to a Sync), and each ends with an
//! outcome.
//!
//! The boundaries come from what the server says: command tags (`BEGIN`,
//! `COMMIT`, `ROLLBACK`, `PREPARE TRANSACTION`, `SAVEPOINT`, `RELEASE`) and
//! the status of ReadyForQuery (`I`: no transaction open). A `COMMIT` in an
//! aborted block answers `ROLLBACK`, so the tag, not the text, says how it
//! ended; the text is read only to tell `ROLLBACK TO SAVEPOINT` (tag
//! `ROLLBACK` too) from `ROLLBACK`, and for savepoint names.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::audit::event::{TransactionEvent, TransactionOutcome, TxnRef, TxnStatus};
use crate::audit::SessionInfo;
use crate::identity::{setting, EndUser, SessionClaims};
use crate::sql::lex::{identifier, tokenize, LexOptions, Tok};

/// The transactions of one session.
pub(super) struct Transactions {
    session: Arc<SessionInfo>,
    /// The session id's 128 bits: transaction ids are it with the low 32
    /// bits replaced by a per-session counter, so they are unique per
    /// instance and sort by session, then order, at no cost.
    base: u128,
    count: u32,
    open: Option<Open>,
    /// The session's end-user claims, when claims are on: their settings
    /// follow these transactions' boundaries, as PostgreSQL's do.
    claims: Option<SessionClaims>,
    /// The claim of the last statement (also a transaction's at its end).
    last_claim: Arc<EndUser>,
    /// The statements of the last Query string read for claims, so a
    /// string of many is split once, not once per statement.
    split: Option<Split>,
}

/// A Query string's statement ranges. The text is held (shared, not
/// copied) so its memory cannot be reused by another text while the
/// ranges are kept; dropped at ReadyForQuery.
struct Split {
    text: bytes::Bytes,
    ranges: Vec<std::ops::Range<usize>>,
}

struct Open {
    id: uuid::Uuid,
    started_at: SystemTime,
    started: Instant,
    /// Statements so far; the next one's index.
    statements: u32,
    /// `BEGIN` seen: only `COMMIT`/`ROLLBACK` (or a failed `COMMIT`) ends it.
    explicit: bool,
    /// A statement failed in it.
    failed: bool,
    /// Open savepoints: name (folded as PostgreSQL folds it) and the index
    /// of the `SAVEPOINT` statement.
    savepoints: Vec<(Vec<u8>, u32)>,
    /// Statement index ranges undone by `ROLLBACK TO SAVEPOINT`.
    undone: Vec<(u32, u32)>,
}

/// What one statement did, as far as transactions go.
pub(super) struct Finished<'a> {
    pub started_at: SystemTime,
    pub started: Instant,
    pub tag: Option<&'a str>,
    pub failed: bool,
    /// The statement's own text (read only for `ROLLBACK`, `SAVEPOINT`,
    /// `RELEASE` tags, and for claims when it may hold a comment or set
    /// one).
    pub text: &'a dyn Fn() -> Vec<u8>,
    /// The whole text sent (a Query string may hold several statements).
    pub sent: &'a bytes::Bytes,
    /// Which statement of `sent` it is.
    pub index: u32,
    /// Its bind parameters as text, when known (`set_config(..., $1, ...)`).
    pub params: &'a dyn Fn() -> Vec<Option<String>>,
}

impl Transactions {
    pub fn new(session: Arc<SessionInfo>) -> Self {
        // A session id that is no UUID (embedders, tests) gets a random
        // base, so ids still differ between sessions.
        let base = uuid::Uuid::parse_str(&session.session_id).map_or_else(
            |_| u128::from(getrandom::u64().unwrap_or(0)) << 64,
            |u| u.as_u128(),
        );
        Transactions {
            session,
            base,
            count: 0,
            open: None,
            claims: None,
            last_claim: Arc::default(),
            split: None,
        }
    }

    /// Follows end-user claims for this session.
    pub fn with_claims(mut self, claims: SessionClaims) -> Self {
        self.claims = Some(claims);
        self
    }

    pub fn claims(&self) -> Option<&SessionClaims> {
        self.claims.as_ref()
    }

    pub fn claims_mut(&mut self) -> Option<&mut SessionClaims> {
        self.claims.as_mut()
    }

    /// The transaction a finished statement belongs to (starting one if
    /// none is open), the transaction it ended, if it ended one, and the
    /// end-user claim it ran with.
    pub fn statement(
        &mut self,
        s: Finished<'_>,
        app: &Arc<str>,
        now: Instant,
    ) -> (TxnRef, Option<TransactionEvent>, Arc<EndUser>) {
        let open = match &mut self.open {
            Some(open) => open,
            None => self.open.insert(Open::new(self.base, &mut self.count, &s)),
        };
        let txn = TxnRef {
            id: open.id,
            index: open.statements,
            after_savepoint: !open.savepoints.is_empty(),
        };
        open.statements += 1;
        open.failed |= s.failed;
        let depth = open.savepoints.len() as u32;
        if let Some(claims) = &mut self.claims {
            self.last_claim = statement_claim(claims, &mut self.split, &s, depth + 1, app);
        }
        let end = match s.tag {
            Some("BEGIN" | "START TRANSACTION") => {
                open.explicit = true;
                None
            }
            Some("COMMIT") => Some(TransactionOutcome::Committed),
            Some("PREPARE TRANSACTION") => Some(TransactionOutcome::Prepared),
            Some("ROLLBACK") => open.rollback(txn.index, &(s.text)()),
            Some("SAVEPOINT") => {
                if let Some(name) = savepoint_name(&(s.text)()) {
                    open.savepoints.push((name, txn.index));
                }
                None
            }
            Some("RELEASE") => {
                if let Some(name) = savepoint_name(&(s.text)()) {
                    open.release(&name);
                }
                None
            }
            _ => None,
        };
        let after = open.savepoints.len() as u32;
        if let (Some(claims), None) = (&mut self.claims, end) {
            match s.tag {
                Some("RELEASE") => claims.settings.release_to(after + 1),
                Some("ROLLBACK") => claims.settings.rollback_to(after),
                _ => {}
            }
        }
        let ended = end.and_then(|outcome| self.end(outcome, app, now));
        (txn, ended, self.last_claim.clone())
    }

    /// The index the next statement gets in its transaction.
    pub fn next_index(&self) -> u32 {
        self.open.as_ref().map_or(0, |o| o.statements)
    }

    /// The open transaction's id, or the one the next statement opens.
    pub fn current_or_next(&self) -> uuid::Uuid {
        match &self.open {
            Some(open) => open.id,
            None => uuid::Uuid::from_u128(
                (self.base & !0xffff_ffff) | u128::from(self.count.wrapping_add(1)),
            ),
        }
    }

    /// The id of the transaction that opens after `new` more have opened
    /// (the batches of a pipeline ahead of the one asking).
    pub fn after_new(&self, new: u32) -> uuid::Uuid {
        let n = self.count.wrapping_add(new).wrapping_add(1);
        uuid::Uuid::from_u128((self.base & !0xffff_ffff) | u128::from(n))
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// ReadyForQuery: at `I` nothing is open any more.
    pub fn ready(
        &mut self,
        status: TxnStatus,
        app: &Arc<str>,
        now: Instant,
    ) -> Option<TransactionEvent> {
        self.split = None;
        if status != TxnStatus::Idle {
            return None;
        }
        let open = self.open.as_ref()?;
        let outcome = match (open.explicit, open.failed) {
            // A block that ended without COMMIT or ROLLBACK answering: its
            // COMMIT failed (a deferred constraint, a serialization failure).
            (true, _) => TransactionOutcome::Failed,
            (false, true) => TransactionOutcome::RolledBack,
            (false, false) => TransactionOutcome::Committed,
        };
        self.end(outcome, app, now)
    }

    /// The session ended: what is open has an unknown outcome.
    pub fn lost(&mut self, app: &Arc<str>, now: Instant) -> Option<TransactionEvent> {
        self.end(TransactionOutcome::Unknown, app, now)
    }

    fn end(
        &mut self,
        outcome: TransactionOutcome,
        app: &Arc<str>,
        now: Instant,
    ) -> Option<TransactionEvent> {
        let open = self.open.take()?;
        if let Some(claims) = &mut self.claims {
            let kept = matches!(
                outcome,
                TransactionOutcome::Committed | TransactionOutcome::Prepared
            );
            claims.settings.end_transaction(kept);
        }
        Some(TransactionEvent {
            session: self.session.clone(),
            application_name: app.clone(),
            transaction_id: open.id,
            statements: open.statements,
            outcome,
            started_at: open.started_at,
            duration_us: now.saturating_duration_since(open.started).as_micros() as u64,
            undone: open.undone,
            end_user: self.last_claim.clone(),
            tail_statement: None,
        })
    }
}

impl Open {
    fn new(base: u128, count: &mut u32, s: &Finished<'_>) -> Open {
        *count = count.wrapping_add(1);
        Open {
            id: uuid::Uuid::from_u128((base & !0xffff_ffff) | u128::from(*count)),
            started_at: s.started_at,
            started: s.started,
            statements: 0,
            explicit: false,
            failed: false,
            savepoints: Vec::new(),
            undone: Vec::new(),
        }
    }

    /// `ROLLBACK TO [SAVEPOINT] x` undoes what followed `SAVEPOINT x` and
    /// leaves the block usable; a plain `ROLLBACK` (or a `COMMIT` of an
    /// aborted block) ends it.
    fn rollback(&mut self, index: u32, text: &[u8]) -> Option<TransactionOutcome> {
        let Some(name) = rollback_to_name(text) else {
            return Some(TransactionOutcome::RolledBack);
        };
        if let Some(at) = self.savepoints.iter().rposition(|(n, _)| *n == name) {
            let from = self.savepoints[at].1 + 1;
            if from < index {
                self.undone.push((from, index - 1));
            }
            self.savepoints.truncate(at + 1);
        }
        self.failed = false;
        None
    }

    fn release(&mut self, name: &[u8]) {
        if let Some(at) = self.savepoints.iter().rposition(|(n, _)| n == name) {
            self.savepoints.truncate(at);
        }
    }
}

/// A finished statement's claim: its own changes to the `pgtrail.*`
/// settings applied first (at `level`), when it succeeded.
fn statement_claim(
    claims: &mut SessionClaims,
    split: &mut Option<Split>,
    s: &Finished<'_>,
    level: u32,
    app: &Arc<str>,
) -> Arc<EndUser> {
    let may_change = !s.failed && s.tag.is_some_and(|t| setting::may_change(t, s.sent));
    let may_comment = memchr::memmem::find(s.sent, b"/*").is_some();
    let own = if may_change || may_comment {
        own_text(split, s.sent, s.index)
    } else {
        s.sent
    };
    if may_change {
        for change in setting::changes(own, &(s.params)()) {
            claims.settings.apply(&change, level);
        }
    }
    claims.claim(own, may_comment, app, crate::identity::unix_now)
}

/// Statement `index` of a text that may hold several, split once per text.
fn own_text<'a>(split: &mut Option<Split>, sent: &'a bytes::Bytes, index: u32) -> &'a [u8] {
    if !crate::audit::build::may_hold_several(sent) {
        return sent;
    }
    let same = |s: &Split| s.text.as_ptr() == sent.as_ptr() && s.text.len() == sent.len();
    let ranges = match split {
        Some(s) if same(s) => &s.ranges,
        _ => {
            let ranges = crate::sql::statement_ranges(sent);
            let text = sent.clone();
            &split.insert(Split { text, ranges }).ranges
        }
    };
    match ranges.get(index as usize) {
        Some(r) if ranges.len() > 1 => &sent[r.clone()],
        _ => sent,
    }
}

/// The identifiers and keywords of a statement, folded as PostgreSQL folds
/// them (`sql::lex::identifier`); a `U&"..."` name as written.
fn words(text: &[u8]) -> Vec<Vec<u8>> {
    tokenize(text, LexOptions::default())
        .iter()
        .filter_map(|t| {
            identifier(text, t)
                .or_else(|| (t.kind == Tok::QIdent).then(|| text[t.start..t.end].to_vec()))
        })
        .collect()
}

/// `SAVEPOINT x`, `RELEASE [SAVEPOINT] x`: the name.
fn savepoint_name(text: &[u8]) -> Option<Vec<u8>> {
    let w = words(text);
    match w.as_slice() {
        [_, name] | [_, _, name] => Some(name.clone()),
        _ => None,
    }
}

/// `ROLLBACK|ABORT [WORK|TRANSACTION] TO [SAVEPOINT] x`: the name; `None`
/// for a plain rollback.
pub(super) fn rollback_to_name(text: &[u8]) -> Option<Vec<u8>> {
    let w = words(text);
    let to = w.iter().position(|w| w == b"to")?;
    match &w[to + 1..] {
        [name] => Some(name.clone()),
        [kw, name] if kw == b"savepoint" => Some(name.clone()),
        _ => None,
    }
}
