//! The seqs of recent statement records by (transaction, index within it),
//! kept when the decoding consumer runs: a change whose marker names its
//! statement's index gets that statement's seq. Bounded: the oldest go
//! first, and a change that comes later than that (a slot far behind, or a
//! restart) keeps `attribution = transaction`.

use std::collections::{HashMap, VecDeque};

pub(super) struct RecentStatements {
    seqs: HashMap<(uuid::Uuid, u32), u64>,
    order: VecDeque<(uuid::Uuid, u32)>,
    capacity: usize,
}

impl RecentStatements {
    pub fn new(capacity: usize) -> Self {
        RecentStatements {
            seqs: HashMap::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    pub fn insert(&mut self, txn: uuid::Uuid, index: u32, seq: u64) {
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
            }
        }
        self.seqs.insert((txn, index), seq);
        self.order.push_back((txn, index));
    }

    pub fn seq(&self, txn: uuid::Uuid, index: u32) -> Option<u64> {
        self.seqs.get(&(txn, index)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first() {
        let t = uuid::Uuid::from_u128(1);
        let mut r = RecentStatements::new(2);
        r.insert(t, 0, 10);
        r.insert(t, 1, 11);
        assert_eq!(r.seq(t, 0), Some(10));
        r.insert(t, 2, 12);
        assert_eq!(
            (r.seq(t, 0), r.seq(t, 1), r.seq(t, 2)),
            (None, Some(11), Some(12))
        );
    }
}
