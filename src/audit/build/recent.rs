//! The seqs of recent statement records by (transaction, index within it),
//! kept when the decoding consumer runs: a change whose marker names its
//! statement's index gets that statement's seq and end user; one named by
//! its transaction only gets the end user of the transaction's last
//! statement; a change a `Before` marker claims for the statement after it
//! keeps that statement only if the transaction's end confirmed the claim
//! (`ended`). Bounded: the oldest transactions go first, and a change that
//! comes later than that (a slot far behind, or a restart) keeps
//! `attribution = transaction`.
//!
//! Kept by transaction: a statement's insert finds its transaction's entry,
//! which its previous statement touched, and eviction drops a whole
//! transaction at once. Keyed by statement, the map took several cold
//! lookups per statement record (an insert and an eviction in a map of
//! hundreds of thousands of entries), the writer's largest cost per
//! pgbench -N transaction after encoding.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::identity::EndUser;
use crate::sql::analyzer::cache::KeyHash;

pub(super) struct RecentStatements {
    /// By pgtrail's own transaction id: the analyzer cache's folded-multiply
    /// hasher, not SipHash.
    transactions: HashMap<u128, TransactionSeen, KeyHash>,
    /// Transactions by their first kept statement, oldest first.
    order: VecDeque<u128>,
    /// Statements kept, over all transactions.
    kept: usize,
    capacity: usize,
}

/// What is kept of a transaction, for as long as any of its statements is.
struct TransactionSeen {
    /// (index in the transaction, seq, end user) by index: reads in
    /// autocommit are not kept, so the first is not always 0.
    statements: VecDeque<(u32, u64, Arc<EndUser>)>,
    /// Once it ended: the statement its last `Before` marker's claim held
    /// for (`TransactionEvent::tail_statement`).
    ended: Option<Option<u32>>,
}

impl RecentStatements {
    pub fn new(capacity: usize) -> Self {
        RecentStatements {
            transactions: HashMap::with_hasher(KeyHash::random()),
            order: VecDeque::new(),
            kept: 0,
            capacity,
        }
    }

    pub fn insert(&mut self, txn: uuid::Uuid, index: u32, seq: u64, end_user: &Arc<EndUser>) {
        let id = txn.as_u128();
        let seen = self.transactions.entry(id).or_insert_with(|| {
            self.order.push_back(id);
            TransactionSeen {
                statements: VecDeque::new(),
                ended: None,
            }
        });
        seen.statements.push_back((index, seq, end_user.clone()));
        self.kept += 1;
        self.evict(id);
    }

    /// Drops the oldest transactions while more than `capacity` statements
    /// are kept. When the oldest is `current` (a long transaction, still
    /// taking statements), only its oldest statements go, one at a time,
    /// so that the one just inserted stays.
    fn evict(&mut self, current: u128) {
        while self.kept > self.capacity {
            let Some(&oldest) = self.order.front() else {
                return;
            };
            let Some(seen) = self.transactions.get_mut(&oldest) else {
                self.order.pop_front();
                continue;
            };
            if oldest == current && seen.statements.len() > 1 {
                seen.statements.pop_front();
                self.kept -= 1;
                continue;
            }
            self.kept -= seen.statements.len();
            self.transactions.remove(&oldest);
            self.order.pop_front();
        }
    }

    /// The statement's seq and end user.
    pub fn statement(&self, txn: uuid::Uuid, index: u32) -> Option<(u64, Arc<EndUser>)> {
        let statements = &self.transactions.get(&txn.as_u128())?.statements;
        let at = statements.binary_search_by_key(&index, |s| s.0).ok()?;
        statements
            .get(at)
            .map(|(_, seq, user)| (*seq, user.clone()))
    }

    /// The transaction ended; `tail`: the statement a `Before` marker's
    /// claim held for. Kept while any of its statements is.
    pub fn ended(&mut self, txn: uuid::Uuid, tail: Option<u32>) {
        if let Some(t) = self.transactions.get_mut(&txn.as_u128()) {
            t.ended = Some(tail);
        }
    }

    /// `None` while the transaction has not ended (as far as known here);
    /// then the statement its last claim held for, if any.
    pub fn claim_held(&self, txn: uuid::Uuid) -> Option<Option<u32>> {
        self.transactions.get(&txn.as_u128()).and_then(|t| t.ended)
    }

    /// The end user of the transaction's last statement seen.
    pub fn transaction_end_user(&self, txn: uuid::Uuid) -> Option<Arc<EndUser>> {
        let seen = self.transactions.get(&txn.as_u128())?;
        seen.statements.back().map(|s| s.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first() {
        let t = uuid::Uuid::from_u128(1);
        let mut r = RecentStatements::new(2);
        let none = Arc::new(EndUser::default());
        let alice = Arc::new(EndUser {
            end_user: "alice".into(),
            ..EndUser::default()
        });
        r.insert(t, 0, 10, &none);
        r.insert(t, 1, 11, &alice);
        let seq = |r: &RecentStatements, i| r.statement(t, i).map(|s| s.0);
        assert_eq!(seq(&r, 0), Some(10));
        assert_eq!(r.transaction_end_user(t), Some(alice.clone()));
        r.insert(t, 2, 12, &none);
        assert_eq!(
            (seq(&r, 0), seq(&r, 1), seq(&r, 2)),
            (None, Some(11), Some(12))
        );
        assert_eq!(r.statement(t, 1).map(|s| s.1), Some(alice));
    }

    #[test]
    fn a_claim_is_known_once_its_transaction_ended() {
        let (t, u) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let mut r = RecentStatements::new(2);
        let none = Arc::new(EndUser::default());
        r.insert(t, 0, 10, &none);
        assert_eq!(r.claim_held(t), None);
        r.ended(t, Some(3));
        r.ended(u, Some(1));
        assert_eq!((r.claim_held(t), r.claim_held(u)), (Some(Some(3)), None));
        r.insert(u, 0, 11, &none);
        r.insert(u, 1, 12, &none);
        assert_eq!(r.claim_held(t), None, "gone with its first statement");
    }

    #[test]
    fn a_transaction_goes_with_its_first_kept_statement() {
        // Its read in autocommit (index 0) was not kept.
        let (t, u) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let mut r = RecentStatements::new(2);
        let none = Arc::new(EndUser::default());
        r.insert(t, 1, 10, &none);
        r.insert(u, 0, 11, &none);
        r.insert(u, 1, 12, &none);
        assert_eq!(r.transaction_end_user(t), None);
        assert_eq!(r.transactions.len(), 1);
    }

    #[test]
    fn a_transaction_longer_than_the_capacity_keeps_its_newest_statements() {
        let (t, u) = (
            uuid::Uuid::from_u128(7 << 64 | 1),
            uuid::Uuid::from_u128(7 << 64 | 2),
        );
        let mut r = RecentStatements::new(3);
        let none = Arc::new(EndUser::default());
        r.insert(t, 0, 10, &none);
        for (i, seq) in [(2, 12), (5, 15), (6, 16), (9, 19)] {
            r.insert(u, i, seq, &none);
        }
        let seq = |r: &RecentStatements, t, i| r.statement(t, i).map(|s| s.0);
        assert_eq!(seq(&r, t, 0), None, "the older transaction went first");
        assert_eq!(
            [2, 5, 6, 9, 7].map(|i| seq(&r, u, i)),
            [None, Some(15), Some(16), Some(19), None]
        );
        r.ended(u, Some(9));
        assert_eq!(r.claim_held(u), Some(Some(9)));
        assert_eq!(r.kept, 3);
    }
}
