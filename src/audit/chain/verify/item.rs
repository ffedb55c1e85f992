//! What the walker needs of a record: its place, its chain value, its
//! canonical bytes, and the fields of the records the chain treats apart.
//! Made from a `Record` (JSON Lines) or straight from a ClickHouse row
//! (`clickhouse`), so a row never needs to become a `Record`.

use crate::audit::chain::{canonical, parse_hex, ChainValue};
use crate::audit::record::{LifecycleEvent, Record};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub table: &'static str,
    pub instance_id: String,
    pub seq: u64,
    pub event_time: i64,
    /// `None`: empty (unknown) or not 64 hex digits.
    pub chain: Option<ChainValue>,
    pub canonical: Vec<u8>,
    /// Where `seq`'s 8 bytes sit in `canonical`.
    pub seq_at: usize,
    pub special: Special,
    /// Its place in the input (JSON Lines: line order across files).
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Special {
    None,
    /// A gap record standing for `skipped` seqs from its own (no link).
    SkippedRun {
        skipped: u64,
    },
    /// A gap record for events that never got a seq (a link).
    Gap,
    Checkpoint {
        previous_chain: Option<ChainValue>,
        key_id: String,
        signature: String,
    },
    Start {
        previous_chain: Option<ChainValue>,
        previous_seq: u64,
        clean: bool,
    },
    Stop,
}

impl Item {
    pub fn of_record(record: &Record, position: u64) -> Item {
        let mut bytes = Vec::with_capacity(512);
        canonical::encode(record, &mut bytes);
        let h = record.header();
        let special = match record {
            Record::Gap(g) if g.skipped_seqs > 0 => Special::SkippedRun {
                skipped: g.skipped_seqs,
            },
            Record::Gap(_) => Special::Gap,
            Record::Checkpoint(c) => Special::Checkpoint {
                previous_chain: parse_hex(&c.previous_chain),
                key_id: c.key_id.clone(),
                signature: c.signature.clone(),
            },
            Record::Lifecycle(l) if l.event_type == LifecycleEvent::Start => Special::Start {
                previous_chain: parse_hex(&l.previous_chain),
                previous_seq: l.previous_seq,
                clean: l.clean,
            },
            Record::Lifecycle(l) if l.event_type == LifecycleEvent::Stop => Special::Stop,
            _ => Special::None,
        };
        Item {
            table: record.table(),
            seq_at: seq_offset(record.table(), &h.instance_id),
            instance_id: h.instance_id.clone(),
            seq: h.seq,
            event_time: h.event_time,
            chain: h.chain,
            canonical: bytes,
            special,
            position,
        }
    }

    /// Its canonical bytes as if its seq were `seq` (to test a swap).
    pub fn canonical_with_seq(&self, seq: u64) -> Vec<u8> {
        let mut bytes = self.canonical.clone();
        if let Some(at) = bytes.get_mut(self.seq_at..self.seq_at + 8) {
            at.copy_from_slice(&seq.to_le_bytes());
        }
        bytes
    }

    /// What a checkpoint's signature covers: its canonical bytes with the
    /// signature (the last column) empty, after the domain prefix.
    pub fn checkpoint_message(&self, signature_len: usize) -> Vec<u8> {
        let mut out = canonical::CHECKPOINT_DOMAIN.to_vec();
        let keep = self.canonical.len().saturating_sub(4 + signature_len);
        out.extend_from_slice(&self.canonical[..keep]);
        out.extend_from_slice(&0u32.to_le_bytes());
        out
    }
}

/// The table name's text, the event id, then the instance id's text.
pub fn seq_offset(table: &str, instance_id: &str) -> usize {
    4 + table.len() + 16 + 4 + instance_id.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::json::tests as samples;
    use crate::audit::record::{CheckpointRecord, Record};

    #[test]
    fn the_seq_is_where_seq_at_says() {
        let record = samples::transaction("t", 7);
        let item = Item::of_record(&record, 0);
        let at = item.seq_at;
        assert_eq!(item.canonical[at..at + 8], item.seq.to_le_bytes());
        let moved = item.canonical_with_seq(99);
        assert_eq!(moved[at..at + 8], 99u64.to_le_bytes());
    }

    #[test]
    fn the_checkpoint_message_is_the_one_signed() {
        let Record::Checkpoint(c) = samples::checkpoint("sig-hex", 3) else {
            unreachable!()
        };
        let c: CheckpointRecord = *c;
        let item = Item::of_record(&Record::Checkpoint(Box::new(c.clone())), 0);
        assert_eq!(
            item.checkpoint_message(c.signature.len()),
            canonical::checkpoint_message(&c)
        );
    }
}
