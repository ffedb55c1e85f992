//! `Held`: what a sink has taken but not written yet, as the seqs it
//! accounts for and its record count, the bookkeeping `release_held`
//! gives up (`jsonl` and the spool writer keep one each).

use super::Released;
use crate::audit::chain::ChainValue;

/// The seqs a sink's buffer accounts for, `[first_seq, end_seq)` (a gap
/// record accounts for the run it tells), and how many records hold them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    first_seq: u64,
    end_seq: u64,
    records: u64,
    /// The chain value after the last record held.
    end_chain: Option<ChainValue>,
}

impl Held {
    /// A record was buffered: it accounts for `[seq, end_seq)`, and the
    /// chain stands at `chain` after it.
    pub fn add(&mut self, seq: u64, end_seq: u64, chain: Option<ChainValue>) {
        if self.records == 0 {
            self.first_seq = seq;
        }
        self.end_seq = end_seq;
        self.records += 1;
        self.end_chain = chain;
    }

    /// The first `records` buffered records were written; the buffer now
    /// starts with the record of `next_first_seq` (`None` when the caller
    /// cannot tell, or nothing is left).
    pub fn wrote(&mut self, records: u64, next_first_seq: Option<u64>) {
        self.records = self.records.saturating_sub(records);
        if let Some(seq) = next_first_seq {
            self.first_seq = seq;
        }
    }

    /// Gives up what is held: the seqs and records, if any.
    pub fn release(&mut self) -> Option<Released> {
        if self.records == 0 {
            return None;
        }
        let released = Released {
            first_seq: self.first_seq,
            end_seq: self.end_seq,
            records: self.records,
            end_chain: self.end_chain,
        };
        self.records = 0;
        Some(released)
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The seq of the first record held (stale once nothing is).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Records held.
    pub fn records(&self) -> u64 {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(first_seq: u64, end_seq: u64, records: u64) -> Option<Released> {
        Some(Released {
            first_seq,
            end_seq,
            records,
            end_chain: None,
        })
    }

    #[test]
    fn nothing_held_releases_nothing() {
        let mut held = Held::default();
        assert!(held.is_empty());
        assert_eq!(held.release(), None);
    }

    #[test]
    fn records_and_a_gap_run_are_released_as_one_span() {
        let mut held = Held::default();
        held.add(5, 6, None);
        // A gap record telling 6..9.
        held.add(6, 9, None);
        held.add(9, 10, None);
        assert_eq!(held.records(), 3);
        assert_eq!(held.release(), released(5, 10, 3));
        assert!(held.is_empty());
        assert_eq!(held.release(), None);
    }

    #[test]
    fn a_written_prefix_moves_the_first_seq() {
        let mut held = Held::default();
        for seq in 1..=4 {
            held.add(seq, seq + 1, None);
        }
        held.wrote(2, Some(3));
        assert_eq!(held.records(), 2);
        assert_eq!(held.release(), released(3, 5, 2));
    }

    #[test]
    fn all_written_then_new_records_start_a_new_span() {
        let mut held = Held::default();
        held.add(1, 2, None);
        held.add(2, 3, None);
        held.wrote(2, None);
        assert!(held.is_empty());
        assert_eq!(held.release(), None);
        held.add(7, 8, None);
        assert_eq!(held.release(), released(7, 8, 1));
        // Released: adding again starts from the new record.
        held.add(8, 9, None);
        assert_eq!(held.release(), released(8, 9, 1));
    }

    #[test]
    fn more_written_than_held_leaves_nothing() {
        let mut held = Held::default();
        held.add(1, 2, None);
        held.wrote(3, None);
        assert!(held.is_empty());
    }
}
