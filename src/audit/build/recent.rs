//! The seqs of recent statement records by (transaction, index within it),
//! kept when the decoding consumer runs: a change whose marker names its
//! statement's index gets that statement's seq and end user; one named by
//! its transaction only gets the end user of the transaction's last
//! statement. Bounded: the oldest go
//! first, and a change that comes later than that (a slot far behind, or a
//! restart) keeps `attribution = transaction`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::identity::EndUser;

pub(super) struct RecentStatements {
    seqs: HashMap<(uuid::Uuid, u32), (u64, Arc<EndUser>)>,
    /// The end user of each transaction's last statement so far.
    claims: HashMap<uuid::Uuid, Arc<EndUser>>,
    order: VecDeque<(uuid::Uuid, u32)>,
    capacity: usize,
}

impl RecentStatements {
    pub fn new(capacity: usize) -> Self {
        RecentStatements {
            seqs: HashMap::with_capacity(capacity.min(1 << 16)),
            claims: HashMap::new(),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    pub fn insert(&mut self, txn: uuid::Uuid, index: u32, seq: u64, end_user: &Arc<EndUser>) {
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
                // Its transaction's entry goes with its first statement.
                if old.1 == 0 {
                    self.claims.remove(&old.0);
                }
            }
        }
        self.seqs.insert((txn, index), (seq, end_user.clone()));
        self.claims.insert(txn, end_user.clone());
        self.order.push_back((txn, index));
    }

    /// The statement's seq and end user.
    pub fn statement(&self, txn: uuid::Uuid, index: u32) -> Option<(u64, Arc<EndUser>)> {
        self.seqs.get(&(txn, index)).cloned()
    }

    /// The end user of the transaction's last statement seen.
    pub fn transaction_end_user(&self, txn: uuid::Uuid) -> Option<Arc<EndUser>> {
        self.claims.get(&txn).cloned()
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
}
