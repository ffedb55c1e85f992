//! The spool writer while writes fail (disk full, I/O error): cutting back
//! and trying again (see `writer`'s module doc).

use std::io;
use std::time::Instant;

use super::{SpoolWriter, PROBE_EVERY, PROBE_MAX};
use crate::audit::spool::frame;
use crate::audit::spool::reserve;
use crate::audit::writer::gate::Blocked;

/// What one write holds while the disk recovers.
const RESUME_CHUNK: usize = 64 << 10;

impl SpoolWriter {
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
            tracing::error!(error = %e, cut_error = %cut_error, dir = %self.shared.dir.display(), "spool write failed and the segment could not be cut back to its durable length: the spool is stopped until pgtrail restarts (fail_closed refuses new statements, fail_open counts dropped records)");
            self.failed = Some(e.to_string());
            self.gate.set(Blocked::SpoolFailed, true);
            return e;
        }
        if self.active_len > 0 {
            self.detach_active();
        }
        if self.disk_error.is_none() {
            let released = reserve::release(&self.shared.dir);
            tracing::error!(error = %e, dir = %self.shared.dir.display(), reserve_released = released, "spool write failed (disk full?): retried until it works; fail_closed keeps the records in memory and refuses new statements, fail_open skips records and writes a gap record");
            self.gate.set(Blocked::SpoolDisk, true);
        }
        self.disk_error = Some(e.to_string());
        e
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
        if self.write_out_in_chunks().is_err() {
            self.probe_wait = (self.probe_wait * 2).clamp(PROBE_EVERY, PROBE_MAX);
            return false;
        }
        self.probe_wait = PROBE_EVERY;
        tracing::info!(dir = %self.shared.dir.display(), "spool writes work again");
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
}
