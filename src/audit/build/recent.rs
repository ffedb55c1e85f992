//! The seqs of recent statement records by (transaction, index within it),
//! kept when the decoding consumer runs: a change whose marker names its
//! statement's index gets that statement's seq and end user; one named by
//! its transaction only gets the end user of the transaction's last
//! statement; a change a `Before` marker claims for the statement after it
//! keeps that statement only if the transaction's end confirmed the claim
//! (`ended`). Bounded: the oldest go
//! first, and a change that comes later than that (a slot far behind, or a
//! restart) keeps `attribution = transaction`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::identity::EndUser;

pub(super) struct RecentStatements {
    seqs: HashMap<(uuid::Uuid, u32), (u64, Arc<EndUser>)>,
    transactions: HashMap<uuid::Uuid, TransactionSeen>,
    order: VecDeque<(uuid::Uuid, u32)>,
    capacity: usize,
}

/// What is kept of a transaction, for as long as its first kept statement.
struct TransactionSeen {
    /// The index of that statement (reads in autocommit are not kept, so
    /// it is not always 0).
    first: u32,
    /// The end user of its last statement so far.
    end_user: Arc<EndUser>,
    /// Once it ended: the statement its last `Before` marker's claim held
    /// for (`TransactionEvent::tail_statement`).
    ended: Option<Option<u32>>,
}

impl RecentStatements {
    /// All of `capacity` is reserved at once: growing a map of a few
    /// hundred thousand entries rehashes all of them, a pause of
    /// milliseconds in the writer. The pages are touched as they fill.
    pub fn new(capacity: usize) -> Self {
        RecentStatements {
            seqs: HashMap::with_capacity(capacity),
            transactions: HashMap::new(),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn insert(&mut self, txn: uuid::Uuid, index: u32, seq: u64, end_user: &Arc<EndUser>) {
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
                // Its transaction's entry goes with its first statement.
                if self
                    .transactions
                    .get(&old.0)
                    .is_some_and(|t| t.first == old.1)
                {
                    self.transactions.remove(&old.0);
                }
            }
        }
        self.seqs.insert((txn, index), (seq, end_user.clone()));
        self.transactions
            .entry(txn)
            .and_modify(|t| t.end_user = end_user.clone())
            .or_insert_with(|| TransactionSeen {
                first: index,
                end_user: end_user.clone(),
                ended: None,
            });
        self.order.push_back((txn, index));
    }

    /// The statement's seq and end user.
    pub fn statement(&self, txn: uuid::Uuid, index: u32) -> Option<(u64, Arc<EndUser>)> {
        self.seqs.get(&(txn, index)).cloned()
    }

    /// The transaction ended; `tail`: the statement a `Before` marker's
    /// claim held for. Kept while its first statement is.
    pub fn ended(&mut self, txn: uuid::Uuid, tail: Option<u32>) {
        if let Some(t) = self.transactions.get_mut(&txn) {
            t.ended = Some(tail);
        }
    }

    /// `None` while the transaction has not ended (as far as known here);
    /// then the statement its last claim held for, if any.
    pub fn claim_held(&self, txn: uuid::Uuid) -> Option<Option<u32>> {
        self.transactions.get(&txn).and_then(|t| t.ended)
    }

    /// The end user of the transaction's last statement seen.
    pub fn transaction_end_user(&self, txn: uuid::Uuid) -> Option<Arc<EndUser>> {
        self.transactions.get(&txn).map(|t| t.end_user.clone())
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
}
