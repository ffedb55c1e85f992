//! The seqs and rows of each session's open transaction, so that its
//! `transactions` record can name its first and last statement records,
//! the seq ranges a ROLLBACK TO SAVEPOINT undid, and the rows it changed.

use std::collections::HashMap;

use crate::audit::event::{TransactionEvent, TransactionOutcome, TxnRef};

/// Per session (one open transaction each), on the writer thread.
#[derive(Default)]
pub(super) struct TransactionSeqs {
    open: HashMap<String, Open>,
}

struct Open {
    id: uuid::Uuid,
    first_seq: u64,
    last_seq: u64,
    /// (index in the transaction, seq, rows written) of each statement
    /// record made.
    statements: Vec<(u32, u64, u64)>,
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
    /// A statement record of `session_id` was made with `seq`.
    pub fn statement(&mut self, session_id: &str, txn: TxnRef, seq: u64, rows_written: u64) {
        let open = match self.open.get_mut(session_id) {
            Some(open) if open.id == txn.id => open,
            // A new transaction (the end of the last one was not seen if
            // one is left: a fail_open gap took its record).
            _ => {
                let fresh = Open {
                    id: txn.id,
                    first_seq: seq,
                    last_seq: seq,
                    statements: Vec::new(),
                };
                self.open.insert(session_id.to_string(), fresh);
                match self.open.get_mut(session_id) {
                    Some(open) => open,
                    None => return,
                }
            }
        };
        open.last_seq = seq;
        open.statements.push((txn.index, seq, rows_written));
    }

    /// The transaction ended.
    pub fn end(&mut self, session_id: &str, e: &TransactionEvent) -> Seqs {
        let open = self
            .open
            .remove(session_id)
            .filter(|o| o.id == e.transaction_id);
        let Some(open) = open else {
            return Seqs {
                first_seq: 0,
                last_seq: 0,
                rows_changed: 0,
                undone_from_seq: Vec::new(),
                undone_to_seq: Vec::new(),
            };
        };
        let undone = |index: u32| e.undone.iter().any(|&(a, b)| (a..=b).contains(&index));
        let rows_changed = match e.outcome {
            TransactionOutcome::Committed => open
                .statements
                .iter()
                .filter(|(i, ..)| !undone(*i))
                .map(|&(.., rows)| rows)
                .sum(),
            _ => 0,
        };
        let (mut from, mut to) = (Vec::new(), Vec::new());
        for &(a, b) in &e.undone {
            let seqs = open
                .statements
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

    /// The session ended.
    pub fn end_session(&mut self, session_id: &str) {
        self.open.remove(session_id);
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
