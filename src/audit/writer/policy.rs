//! `audit.failure_policy`, applied in one place.
//!
//! The parts of the audit path only report what happened: the queue was
//! full, a sink took a record, had no room (`Offer::Full`: the spool at its
//! size limit, ClickHouse's in-memory backlog full while ClickHouse fails
//! or stalls) or could not write (`Offer::Failing`: a full disk, an I/O
//! error). What follows is decided here, and nowhere else:
//!
//! | situation | `fail_closed` | `fail_open` |
//! | --- | --- | --- |
//! | audit queue full | the session waits for room | the event is counted, a gap record follows |
//! | sink full | the writer waits for room | the record is skipped, a gap record follows |
//! | sink failing | the record is held in memory and tried again (the writer waits beyond the sink's limit) | what the sink holds and the record are skipped, a gap record follows |
//! | a `before_ack` record not durable | the session ends (53000) | the result goes on |
//! | the gate closed | idle sessions' new statements are refused (53000) | statements run |
//!
//! Every record not kept is counted once, by the gate
//! (`pgtrail_audit_records_dropped_total`), and told by a gap record made
//! by the `RecordBuilder`: skipped seqs by one whose `seq` is the first
//! skipped and whose `missing_events` counts the run, so the skipped seqs
//! are `[seq, seq + missing_events)`.

use std::io;

use super::gate::AuditGate;
use crate::audit::build::RecordBuilder;
use crate::audit::chain::ChainValue;
use crate::audit::record::Record;
use crate::audit::sink::{AuditSink, Offer, Room};
use crate::config::FailurePolicy;

/// What to do when there is no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    Wait,
    Skip,
}

/// What to do with records a sink cannot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFailing {
    /// Keep them in memory and try again.
    Hold,
    /// Give them up; a gap record tells them.
    Skip,
}

impl FailurePolicy {
    pub fn when_full(self) -> WhenFull {
        match self {
            FailurePolicy::FailClosed => WhenFull::Wait,
            FailurePolicy::FailOpen => WhenFull::Skip,
        }
    }

    pub fn when_failing(self) -> WhenFailing {
        match self {
            FailurePolicy::FailClosed => WhenFailing::Hold,
            FailurePolicy::FailOpen => WhenFailing::Skip,
        }
    }

    /// Whether a statement may only run, and its result only reach the
    /// client, once the audit path has its record (the gate open, a
    /// `before_ack` record durable).
    pub fn needs_the_record(self) -> bool {
        self == FailurePolicy::FailClosed
    }
}

/// A run of consecutive seqs a sink did not keep, not yet told by a gap
/// record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedRun {
    pub first_seq: u64,
    pub end_seq: u64,
    /// Why, for the gap record: `full` or `failing`.
    pub why: Why,
    /// The chain value after the run, where its gap record says the chain
    /// goes on.
    pub end_chain: Option<ChainValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Full,
    Failing,
}

/// A sink, with the failure policy applied to what it reports.
pub struct Destination {
    sink: Box<dyn AuditSink>,
    /// Runs not told yet, oldest first (adjacent runs are joined).
    skipped: Vec<SkippedRun>,
    /// Gap records this sink took since the writer last asked: they are
    /// also kept outside the trail (`take_told`).
    told: Vec<Record>,
}

impl Destination {
    pub fn new(sink: Box<dyn AuditSink>) -> Destination {
        Destination {
            sink,
            skipped: Vec::new(),
            told: Vec::new(),
        }
    }

    pub fn name(&self) -> String {
        self.sink.name()
    }

    /// Writes `record` (seqs `[record.seq(), end_seq)`) under the gate's
    /// policy. `Ok` when the sink took it or the policy let it go (counted);
    /// `Err` when it is not written yet (held for a retry, or shutdown).
    pub fn write(
        &mut self,
        record: &Record,
        end_seq: u64,
        gate: &AuditGate,
        gaps: &RecordBuilder,
    ) -> io::Result<()> {
        self.tell(gaps, Room::WithinLimit);
        if let Some(run) = self.skipped.last().copied() {
            if gate.policy().when_full() == WhenFull::Skip {
                // A run is still untold: the record joins it rather than
                // going ahead of the run's gap record, so a sink never holds
                // a seq above a gap it has not written yet (the spool acks
                // and deletes by seq, in order).
                self.skip(gate, record, end_seq, run.why);
                return Ok(());
            }
        }
        let mut room = Room::WithinLimit;
        loop {
            let policy = gate.policy();
            match self.sink.offer(record, end_seq, room) {
                Offer::Taken => return Ok(()),
                Offer::Full => match policy.when_full() {
                    WhenFull::Skip => {
                        self.skip(gate, record, end_seq, Why::Full);
                        return Ok(());
                    }
                    WhenFull::Wait if room == Room::PastLimit => {
                        return Err(io::Error::other(format!(
                            "stopping with {} full: the record is not written",
                            self.sink.name()
                        )));
                    }
                    WhenFull::Wait if gate.is_stopping() => room = Room::PastLimit,
                    WhenFull::Wait => self.sink.wait(),
                },
                Offer::Failing(e) => return self.on_failing(record, end_seq, e, gate),
            }
        }
    }

    /// The sink's writes fail.
    fn on_failing(
        &mut self,
        record: &Record,
        end_seq: u64,
        error: io::Error,
        gate: &AuditGate,
    ) -> io::Result<()> {
        match gate.policy().when_failing() {
            WhenFailing::Skip => {
                self.release_held(gate);
                self.skip(gate, record, end_seq, Why::Failing);
                Ok(())
            }
            WhenFailing::Hold => {
                self.sink.hold(record, end_seq);
                let mut result = Err(error);
                while result.is_err() {
                    result = self.sink.flush();
                    if !self.sink.held_full() || gate.is_stopping() {
                        break;
                    }
                    self.sink.wait();
                }
                result
            }
        }
    }

    /// The gap records written since the last call, for the copy kept
    /// outside the trail: a gap record found in the trail but not there
    /// may stand in for deleted records.
    pub fn take_told(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.told)
    }

    /// Flushes the sink and, once it has room, tells what was skipped.
    pub fn flush(&mut self, gate: &AuditGate, gaps: &RecordBuilder) -> io::Result<()> {
        self.flush_telling(gate, gaps, Room::WithinLimit)
    }

    /// The last flush: what was skipped is told past the size limit.
    pub fn close(&mut self, gate: &AuditGate, gaps: &RecordBuilder) -> io::Result<()> {
        self.flush_telling(gate, gaps, Room::PastLimit)
    }

    fn flush_telling(
        &mut self,
        gate: &AuditGate,
        gaps: &RecordBuilder,
        room: Room,
    ) -> io::Result<()> {
        let mut result = self.sink.flush();
        if result.is_ok() && !self.skipped.is_empty() {
            self.tell(gaps, room);
            result = self.sink.flush();
        }
        if result.is_err() && gate.policy().when_failing() == WhenFailing::Skip {
            self.release_held(gate);
        }
        result
    }

    /// Offers the gap records of the runs skipped so far, oldest first; a
    /// run stays until its gap is taken.
    fn tell(&mut self, gaps: &RecordBuilder, room: Room) {
        while let Some(run) = self.skipped.first().copied() {
            let missing = run.end_seq - run.first_seq;
            let why = match run.why {
                Why::Full => "full",
                Why::Failing => "write failed",
            };
            let reason = format!(
                "{} {why} (fail_open): {missing} records from seq {} were not kept",
                self.sink.name(),
                run.first_seq
            );
            let gap = gaps.gap_for_run(run.first_seq, missing, run.end_chain, reason);
            match self.sink.offer(&gap, run.end_seq, room) {
                Offer::Taken => {
                    self.skipped.remove(0);
                    self.told.push(gap);
                    tracing::warn!(sink = %self.sink.name(), first_seq = run.first_seq, missing, "gap record written for records not kept (fail_open)");
                }
                Offer::Full | Offer::Failing(_) => return,
            }
        }
    }

    /// `fail_open`: the records the sink held are given up.
    fn release_held(&mut self, gate: &AuditGate) {
        if let Some(r) = self.sink.release_held() {
            gate.count_dropped(r.records);
            self.note(r.first_seq, r.end_seq, Why::Failing, r.end_chain);
        }
    }

    fn skip(&mut self, gate: &AuditGate, record: &Record, end_seq: u64, why: Why) {
        gate.count_dropped(1);
        self.note(record.seq(), end_seq, why, record.header().chain);
    }

    /// Adds `[first_seq, end_seq)` to the last run if adjacent, else starts one.
    fn note(&mut self, first_seq: u64, end_seq: u64, why: Why, end_chain: Option<ChainValue>) {
        match self.skipped.last_mut() {
            Some(run) if run.end_seq == first_seq => {
                run.end_seq = end_seq;
                run.end_chain = end_chain;
            }
            _ => self.skipped.push(SkippedRun {
                first_seq,
                end_seq,
                why,
                end_chain,
            }),
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
