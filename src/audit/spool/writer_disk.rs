//! The spool writer while writes fail (disk full, I/O error): keeping or
//! counting records, trying again, and the gap record (see `writer`'s
//! module doc).

use std::io;
use std::time::Instant;

use super::{gap_reason, SpoolWriter, MAX_BUFFER, PROBE_EVERY, PROBE_MAX};
use crate::audit::gate::{Blocked, SkippedRun};
use crate::audit::record::Record;
use crate::audit::spool::frame;
use crate::audit::spool::reserve;
use crate::config::FailurePolicy;

/// What one write holds while the disk recovers.
const RESUME_CHUNK: usize = 64 << 10;

impl SpoolWriter {
    /// The disk fails: `fail_open` counts the record in the skipped run,
    /// `fail_closed` keeps it (waiting beyond `MAX_BUFFER`) and reports an
    /// error until it is written.
    pub(super) fn write_while_failing(&mut self, record: &Record) -> io::Result<()> {
        if self.gate.policy() == FailurePolicy::FailOpen {
            self.skip(record);
            self.try_resume();
            return Ok(());
        }
        self.encode(record, record.seq() + 1)?;
        if self.buf.len() >= MAX_BUFFER {
            self.wait_for_disk();
        } else {
            self.try_resume();
        }
        match &self.disk_error {
            Some(e) => Err(io::Error::other(format!(
                "spool write failing ({e}); the record is kept in memory and written when the disk takes it"
            ))),
            None => Ok(()),
        }
    }

    /// A write or fsync failed. What the file holds past the last fsync is
    /// unknown: cut it back to that (fsynced), so the durable state is
    /// known again, and detach the segment so it can be deleted once
    /// acknowledged. If the cut fails, the spool stops until restart.
    pub(super) fn on_write_error(&mut self, e: io::Error) -> io::Error {
        let cut = match &self.file {
            Some(f) => f.set_len(self.active_len).and_then(|()| f.sync_all()),
            None => Ok(()),
        };
        if let Err(cut_error) = cut {
            tracing::error!(error = %e, cut_error = %cut_error, dir = %self.shared.dir.display(), policy = ?self.gate.policy(), "spool write failed and the segment could not be cut back to its durable length: the spool is stopped until pgtrail restarts (fail_closed refuses new statements, fail_open counts dropped records)");
            self.failed = Some(e.to_string());
            self.gate.set(Blocked::SpoolFailed, true);
            if self.gate.policy() == FailurePolicy::FailOpen {
                self.gate.count_dropped(self.buf_records);
            }
            return e;
        }
        if self.active_len > 0 {
            self.detach_active();
        }
        if self.disk_error.is_none() {
            let released = reserve::release(&self.shared.dir);
            tracing::error!(error = %e, dir = %self.shared.dir.display(), policy = ?self.gate.policy(), reserve_released = released, "spool write failed (disk full?): retried until it works; fail_closed keeps the records in memory and refuses new statements, fail_open skips records and writes a gap record");
            self.gate.set(Blocked::SpoolDisk, true);
        }
        self.disk_error = Some(e.to_string());
        if self.gate.policy() == FailurePolicy::FailOpen && self.buf_records > 0 {
            self.drop_buffer();
        }
        e
    }

    /// `fail_open`: the buffered records join the skipped run.
    pub(super) fn drop_buffer(&mut self) {
        let count = self.buf_end_seq - self.buf_first_seq;
        let records = self.buf_records;
        self.gate.count_dropped(records);
        self.skipped = Some(match self.skipped.take() {
            Some(run) if run.end_seq() == self.buf_first_seq => SkippedRun::span(
                run.first_seq(),
                run.end_seq() - run.first_seq() + count,
                &self.instance_id,
            ),
            _ => SkippedRun::span(self.buf_first_seq, count, &self.instance_id),
        });
        self.buf.clear();
        self.buf_records = 0;
    }

    /// While writes fail: tries again once the pause is over or
    /// or if acknowledgements changed the spool; whether writes work again.
    pub(super) fn try_resume(&mut self) -> bool {
        let generation = self.shared.lock().generation;
        let (at, seen) = self.probed;
        if at.elapsed() < self.probe_wait && generation == seen {
            return false;
        }
        self.probed = (Instant::now(), generation);
        let mut told = None;
        if let Some(run) = &self.skipped {
            if self.buf_records == 0 {
                told = Some((run.first_seq(), run.end_seq() - run.first_seq()));
                let gap = run.gap_record(gap_reason(run, "spool write failed"));
                let end = run.end_seq();
                if self.encode(&gap, end).is_err() {
                    return false;
                }
                self.skipped = None;
            }
        }
        if self.write_out_in_chunks().is_err() {
            self.probe_wait = (self.probe_wait * 2).clamp(PROBE_EVERY, PROBE_MAX);
            return false;
        }
        self.probe_wait = PROBE_EVERY;
        tracing::info!(dir = %self.shared.dir.display(), "spool writes work again");
        if let Some((first_seq, missing)) = told {
            tracing::warn!(
                first_seq,
                missing,
                "spool: gap record written for records skipped while writes failed (fail_open)"
            );
        }
        self.disk_error = None;
        self.gate.set(Blocked::SpoolDisk, false);
        if let Err(e) = reserve::ensure(&self.shared.dir) {
            tracing::warn!(error = %e, "spool: could not write the reserve file again (retried after the next failure)");
        }
        true
    }

    /// Writes the held frames a chunk at a time, each fsynced and shown to
    /// the reader, in segments of the usual size: a disk with less room
    /// than the buffer still makes progress, and acknowledgements of what
    /// was written free more.
    fn write_out_in_chunks(&mut self) -> io::Result<()> {
        while !self.buf.is_empty() {
            if self.active_len >= self.shared.options.segment_bytes {
                self.detach_active();
            }
            let (len, last_seq, frames) = frame::prefix(&self.buf, RESUME_CHUNK);
            self.write_prefix(len, last_seq, frames)?;
        }
        Ok(())
    }

    /// fail_closed with `MAX_BUFFER` held: waits until a write works, or
    /// shutdown.
    pub(super) fn wait_for_disk(&mut self) {
        while self.disk_error.is_some() && !self.gate.is_stopping() {
            {
                let st = self.shared.lock();
                let _ = self.shared.changed.wait_timeout(st, PROBE_EVERY);
            }
            self.try_resume();
        }
    }

    /// Puts back a run whose gap record could not be written, joined with
    /// a run made meanwhile from the failed buffer.
    pub(super) fn keep_run(&mut self, run: SkippedRun) {
        self.skipped = Some(match self.skipped.take() {
            None => run,
            Some(other) => {
                let (a, b) = if other.end_seq() == run.first_seq() {
                    (other, run)
                } else {
                    (run, other)
                };
                if a.end_seq() != b.first_seq() {
                    tracing::error!(
                        first_seq = b.first_seq(),
                        missing = b.end_seq() - b.first_seq(),
                        "spool: two runs of skipped records are not adjacent; the later one has no gap record"
                    );
                    a
                } else {
                    let count = b.end_seq() - a.first_seq();
                    SkippedRun::span(a.first_seq(), count, &self.instance_id)
                }
            }
        });
    }
}
