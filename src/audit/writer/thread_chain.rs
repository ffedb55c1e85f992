//! The writer's part in tamper evidence (`audit::chain`): checkpoints,
//! the start and stop lifecycle records, what the start found missing,
//! and the gap records kept outside the trail.

use std::sync::atomic::Ordering;

use super::Writer;
use crate::audit::chain::ChainText;
use crate::audit::record::{LifecycleEvent, Record};
use crate::audit::writer::StartGap;

impl Writer {
    pub(super) fn checkpoint_if_due(&mut self) {
        if self.checkpoints.due() {
            self.checkpoint();
        }
    }

    /// A signed checkpoint of the chain so far, in the trail and outside
    /// it; the sinks are flushed first, so the outside copy does not name
    /// records a crash could still lose.
    pub(super) fn checkpoint(&mut self) {
        let previous = self.chainer.last();
        let mut checkpoint = self
            .builder
            .checkpoint(&previous, self.checkpoints.run_records());
        self.checkpoints.sign(&mut checkpoint);
        let mut record = Record::Checkpoint(Box::new(checkpoint));
        self.chainer.link(&mut record);
        self.checkpoints.counted();
        let end_seq = record.seq() + 1;
        self.write(&record, end_seq);
        self.flush();
        let kept = self.checkpoints.keep_outside(&record);
        let stats = &self.stats;
        stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        stats
            .last_checkpoint_seq
            .store(record.seq(), Ordering::Relaxed);
        stats
            .last_checkpoint_micros
            .store(record.header().event_time, Ordering::Relaxed);
        stats
            .checkpoint_file_failing
            .store(!kept, Ordering::Relaxed);
    }

    /// The start record (where the chain continues from) and a checkpoint.
    pub(super) fn write_start(&mut self) {
        let start = self.chain_start;
        let detail = match (start.clean, start.previous_chain) {
            _ if start.previous_seq == 0 => "new instance".to_string(),
            (true, _) => "the previous run stopped cleanly".to_string(),
            (false, Some(_)) => format!("the previous run did not stop cleanly: the chain continues from its last record kept, seq {}", start.previous_seq),
            (false, None) => format!("the previous run did not stop cleanly and its last chain value is not known: the chain restarts after seq {}", start.previous_seq),
        };
        let mut record =
            self.builder
                .lifecycle(LifecycleEvent::Start, self.config_digest.clone(), detail);
        if let Record::Lifecycle(l) = &mut record {
            l.previous_seq = start.previous_seq;
            l.previous_chain = ChainText::of(start.previous_chain.as_ref()).as_str().into();
            l.clean = start.clean;
        }
        self.write_linked(record);
        self.checkpoint();
    }

    /// The stop record and the last checkpoint.
    pub(super) fn write_stop(&mut self) {
        let record = self.builder.lifecycle(
            LifecycleEvent::Stop,
            self.config_digest.clone(),
            "clean stop".into(),
        );
        self.write_linked(record);
        self.checkpoint();
    }

    /// What the start found: the seqs the last run reserved and left no
    /// record of (a gap standing in their place, saying the chain goes on
    /// from where this run starts it), the start record and a checkpoint,
    /// then spool damage (gaps that are links), in seq order.
    pub(in crate::audit::writer) fn write_start_gaps(&mut self, gaps: Vec<StartGap>) {
        let mut lost = Vec::new();
        for gap in gaps {
            match gap {
                StartGap::Lost {
                    missing_events,
                    reason,
                } => lost.push((missing_events, reason)),
                StartGap::Unused { first_seq, count } => {
                    let last = first_seq + count - 1;
                    let reason = format!("seqs {first_seq}..{last} were reserved by the previous run but no record with them was kept (lost in a crash before their fsync, or never used)");
                    let end_chain = Some(self.chainer.last());
                    let record = self
                        .builder
                        .gap_for_run(first_seq, count, end_chain, reason);
                    self.write(&record, first_seq + count);
                    self.checkpoints.keep_gap_outside(&record);
                }
            }
        }
        self.write_start();
        for (missing_events, reason) in lost {
            let record = self.builder.gap(missing_events, &reason);
            self.write_linked(record);
        }
        self.flush();
    }

    /// Gap records the destinations wrote go to the outside copy as well.
    pub(super) fn keep_told_gaps_outside(&mut self) {
        for dest in &mut self.destinations {
            for gap in dest.take_told() {
                self.checkpoints.keep_gap_outside(&gap);
            }
        }
    }
}
