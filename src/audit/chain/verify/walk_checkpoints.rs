//! The walk's checkpoint checks: a checkpoint names the chain before it
//! and is signed; the copies kept outside the trail must be in it.

use super::Walker;
use crate::audit::chain::verify::findings::Kind;
use crate::audit::chain::verify::item::{Item, Special};
use crate::audit::chain::ChainText;

impl Walker<'_> {
    /// A checkpoint names the chain before it, and is signed.
    pub(super) fn check_checkpoint(&mut self, item: &Item) {
        let Special::Checkpoint {
            previous_chain,
            key_id,
            signature,
        } = &item.special
        else {
            return;
        };
        self.report.checkpoints += 1;
        let (seq, time) = (item.seq, Some(item.event_time));
        if self.running.is_some() && self.running != *previous_chain {
            self.find(Kind::CheckpointMismatch, seq, seq, time, format!(
                "the checkpoint names chain value {} before it, the trail gives {}: records before it were changed",
                ChainText::of(previous_chain.as_ref()).as_str(),
                ChainText::of(self.running.as_ref()).as_str()
            ));
        }
        let Some(key) = self.key else {
            if !self.warned_unsigned {
                self.warned_unsigned = true;
                self.find(
                    Kind::Unsigned,
                    seq,
                    seq,
                    time,
                    "checkpoint signatures are not checked: give --public-key".into(),
                );
            }
            return;
        };
        let good = key_id == key.key_id()
            && key.verifies(&item.checkpoint_message(signature.len()), signature);
        if good {
            self.signatures.insert(signature.clone(), seq);
            return;
        }
        match self.signatures.get(signature) {
            Some(first) if !signature.is_empty() => {
                let first = *first;
                self.find(
                    Kind::ReplayedCheckpoint,
                    seq,
                    seq,
                    time,
                    format!("the checkpoint of seq {first} copied here"),
                );
            }
            _ => {
                let why = if signature.is_empty() {
                    "it is not signed".to_string()
                } else if key_id != key.key_id() {
                    format!(
                        "it names key {key_id}, the public key given is {}",
                        key.key_id()
                    )
                } else {
                    "its signature does not verify".into()
                };
                self.find(
                    Kind::BadSignature,
                    seq,
                    seq,
                    time,
                    format!("checkpoint: {why}"),
                );
            }
        }
    }

    pub(super) fn compare_outside(&mut self, item: &Item, outside: &Item) {
        if item.canonical != outside.canonical || item.chain != outside.chain {
            self.find(
                Kind::CheckpointMismatch,
                item.seq,
                item.seq,
                Some(item.event_time),
                format!(
                    "the trail's {} record at this seq is not the checkpoint kept outside it",
                    item.table
                ),
            );
        }
    }

    /// Outside checkpoints the trail did not hold.
    pub(super) fn check_outside(&mut self) {
        let last = self.report.last_seq;
        for (seq, cp) in std::mem::take(&mut self.outside) {
            if let (
                Some(key),
                Special::Checkpoint {
                    signature, key_id, ..
                },
            ) = (self.key, &cp.special)
            {
                if key_id != key.key_id()
                    || !key.verifies(&cp.checkpoint_message(signature.len()), signature)
                {
                    self.find(
                        Kind::BadSignature,
                        seq,
                        seq,
                        Some(cp.event_time),
                        "the outside copy of this checkpoint is not signed by the public key"
                            .into(),
                    );
                }
            }
            if seq > last {
                self.find(Kind::Truncated, last + 1, seq, Some(cp.event_time), format!(
                    "the trail ends at seq {last}, but a checkpoint kept outside it names seq {seq}: records were removed from the end"
                ));
            } else {
                self.find(
                    Kind::CheckpointMismatch,
                    seq,
                    seq,
                    Some(cp.event_time),
                    "a checkpoint kept outside the trail is missing from it".into(),
                );
            }
        }
    }

    /// A gap record standing for skipped seqs must be in the outside copy
    /// too, when that copy covers its seq: one that is not may have been
    /// written to hide records deleted in its place. (A gap whose chain
    /// value is not known, from a spool frame a later build wrote, is not
    /// asked for: the chain is unverified after it anyway.)
    pub(super) fn check_gap_outside(&mut self, item: &Item, skipped: u64) {
        let Some(chain) = item.chain else {
            return;
        };
        if self.outside_until.is_none_or(|until| until <= item.seq) {
            return;
        }
        if !self.outside_gaps.contains(&(item.seq, skipped, chain)) {
            self.find(Kind::Inserted, item.seq, item.seq + skipped - 1, Some(item.event_time),
                "a gap record the outside copy does not have: it may stand in for records that were deleted".into());
        }
    }
}
