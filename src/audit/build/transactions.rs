//! The seqs and rows of each session's open transaction, so that its
//! `transactions` record can name its first and last statement records,
//! the seq ranges a ROLLBACK TO SAVEPOINT undid, and the rows it changed.

use std::collections::HashMap;

use crate::audit::event::{TransactionEvent, TransactionOutcome, TxnRef};

/// Every open transaction, by id, on the writer thread.
#[derive(Default)]
pub(super) struct TransactionSeqs {
    open: HashMap<uuid::Uuid, Open>,
}

struct Open {
    first_seq: u64,
    last_seq: u64,
    /// Rows its statements wrote.
    rows: u64,
    /// (index in the transaction, seq, rows written) of the statements made
    /// while a savepoint was open: only those can be undone by ROLLBACK TO.
    after_savepoint: Vec<(u32, u64, u64)>,
}

/// What the `transactions` record takes from the statement records.
pub(super) struct Seqs {
    pub first_seq: u64,
    pub last_seq: u64,
    pub rows_changed: u64,
    pub undone_from_seq: Vec<u64>,
    pub undone_to_seq: Vec<u64>,
}

impl TransactionSeqs {
    /// A statement record of transaction `txn` was made with `seq`.
    pub fn statement(&mut self, txn: TxnRef, seq: u64, rows_written: u64) {
        let open = self.open.entry(txn.id).or_insert(Open {
            first_seq: seq,
            last_seq: seq,
            rows: 0,
            after_savepoint: Vec::new(),
        });
        open.last_seq = seq;
        open.rows += rows_written;
        if txn.after_savepoint {
            open.after_savepoint.push((txn.index, seq, rows_written));
        }
    }

    /// The transaction ended.
    pub fn end(&mut self, e: &TransactionEvent) -> Seqs {
        let Some(open) = self.open.remove(&e.transaction_id) else {
            // Its statement records were not kept (a fail_open gap).
            return Seqs {
                first_seq: 0,
                last_seq: 0,
                rows_changed: 0,
                undone_from_seq: Vec::new(),
                undone_to_seq: Vec::new(),
            };
        };
        let undone = |index: u32| e.undone.iter().any(|&(a, b)| (a..=b).contains(&index));
        let rows_undone: u64 = open
            .after_savepoint
            .iter()
            .filter(|(i, ..)| undone(*i))
            .map(|&(.., rows)| rows)
            .sum();
        let rows_changed = match e.outcome {
            TransactionOutcome::Committed => open.rows.saturating_sub(rows_undone),
            _ => 0,
        };
        let (mut from, mut to) = (Vec::new(), Vec::new());
        for &(a, b) in &e.undone {
            let seqs = open
                .after_savepoint
                .iter()
                .filter(|(i, ..)| (a..=b).contains(i))
                .map(|&(_, seq, _)| seq);
            if let (Some(lo), Some(hi)) = (seqs.clone().min(), seqs.max()) {
                from.push(lo);
                to.push(hi);
            }
        }
        Seqs {
            first_seq: open.first_seq,
            last_seq: open.last_seq,
            rows_changed,
            undone_from_seq: from,
            undone_to_seq: to,
        }
    }

    /// The session ended: transactions of it still open (their end record
    /// was not kept) are forgotten. Transaction ids carry the session id's
    /// upper 96 bits (`session::tracker`).
    pub fn end_session(&mut self, session_id: &str) {
        if self.open.is_empty() {
            return;
        }
        if let Ok(session) = uuid::Uuid::parse_str(session_id) {
            let prefix = session.as_u128() >> 32;
            self.open.retain(|id, _| id.as_u128() >> 32 != prefix);
        }
    }
}

/// Rows a successful statement changed, from its tag: INSERT, UPDATE,
/// DELETE, MERGE, and COPY into a table.
pub(super) fn rows_written(tag: &str, rows: u64, writes_objects: bool) -> u64 {
    let verb = tag.split(' ').next().unwrap_or("");
    match verb {
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" => rows,
        "COPY" if writes_objects => rows,
        _ => 0,
    }
}
