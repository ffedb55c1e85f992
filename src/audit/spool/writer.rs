//! The appending end, used on the audit writer thread.
//!
//! Frames are buffered in memory by `write` and written plus `fdatasync`ed
//! by `flush` (group commit). Only then are they visible to the reader, so
//! nothing reaches ClickHouse that could vanish in a crash and come back
//! with a different content under the same seq.
//!
//! An fsync error is fatal for the spool: after a failed fsync the kernel
//! may have dropped the dirty pages, so what is on disk is unknown. Every
//! later write fails (`fail_closed`; the audit writer logs it, counts sink
//! errors and the gate refuses new statements) or is counted as dropped
//! (`fail_open`).
//!
//! A full spool (`spool_max_bytes`): under `fail_closed` the writer closes
//! the gate and waits for acknowledgements to free room; under `fail_open`
//! it skips records and, once there is room again, writes one gap record
//! whose `seq` is the first skipped seq and whose `missing_events` is the
//! number skipped, so the skipped seqs are exactly
//! `[seq, seq + missing_events)`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use super::frame;
use super::marker::sync_dir;
use super::recover::segment_name;
use super::{Segment, Shared};
use crate::audit::gate::{AuditGate, Blocked, SkippedRun};
use crate::audit::record::Record;
use crate::config::FailurePolicy;

/// Frames buffered beyond this are flushed without waiting for the round.
const MAX_BUFFER: usize = 8 << 20;

pub struct SpoolWriter {
    shared: Arc<Shared>,
    /// The active segment, once the first record arrived.
    file: Option<File>,
    /// Durable bytes of the active segment.
    active_len: u64,
    buf: Vec<u8>,
    buf_last_seq: u64,
    /// Records in `buf` (counted as dropped if their fsync fails).
    buf_records: u64,
    failed: Option<String>,
    /// Whether the spool is in a full episode (log once per episode).
    full: bool,
    /// Holds the failure policy too (a reload may change it).
    gate: Arc<AuditGate>,
    /// `fail_open`: records skipped while full, not yet told by a gap record.
    skipped: Option<SkippedRun>,
}

impl SpoolWriter {
    /// A handle on the spool's size that outlives the writer.
    pub fn usage(&self) -> super::SpoolUsage {
        super::SpoolUsage(self.shared.clone())
    }

    pub(super) fn new(shared: Arc<Shared>) -> SpoolWriter {
        SpoolWriter {
            shared,
            file: None,
            active_len: 0,
            buf: Vec::with_capacity(1 << 20),
            buf_last_seq: 0,
            buf_records: 0,
            failed: None,
            full: false,
            gate: Arc::default(),
            skipped: None,
        }
    }

    /// The gate to report on; its policy says what to do when full or failed.
    pub fn guard(&mut self, gate: Arc<AuditGate>) {
        self.gate = gate;
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::other(format!(
                "the spool failed earlier and takes no more records: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// Buffers one record. When full: waits (`fail_closed`) or skips it
    /// (`fail_open`).
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        if let Err(e) = self.check() {
            if self.gate.policy() == FailurePolicy::FailOpen {
                self.gate.count_dropped(1);
                return Ok(());
            }
            return Err(e);
        }
        if !self.has_room()? {
            if self.gate.policy() == FailurePolicy::FailOpen {
                self.skip(record);
                return Ok(());
            }
            self.wait_for_room();
        }
        self.write_skipped_gap()?;
        self.append(record)
    }

    fn append(&mut self, record: &Record) -> io::Result<()> {
        let seq = record.seq();
        let size = self.active_len + self.buf.len() as u64;
        if self.file.is_none() || size >= self.shared.options.segment_bytes {
            self.rotate(seq)?;
        }
        frame::encode(seq, record, &mut self.buf)?;
        self.buf_last_seq = seq;
        self.buf_records += 1;
        if self.buf.len() >= MAX_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes and fsyncs what is buffered, then shows it to the reader.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        if self.skipped.is_some() && self.has_room()? {
            self.write_skipped_gap()?;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.write_all(&self.buf).and_then(|()| file.sync_data()) {
            tracing::error!(error = %e, dir = %self.shared.dir.display(), policy = ?self.gate.policy(), "spool write/fsync failed: the spool is stopped until pgtrail restarts (fail_closed refuses new statements, fail_open counts dropped records)");
            self.failed = Some(e.to_string());
            self.gate.set(Blocked::SpoolFailed, true);
            if self.gate.policy() == FailurePolicy::FailOpen {
                self.gate.count_dropped(self.buf_records);
            }
            return Err(e);
        }
        self.buf_records = 0;
        let n = self.buf.len() as u64;
        self.active_len += n;
        self.buf.clear();
        let mut st = self.shared.lock();
        if let Some(active) = st.active {
            if let Some(seg) = st.segments.iter_mut().find(|s| s.first_seq == active) {
                seg.durable_len += n;
                seg.last_seq = self.buf_last_seq;
            }
        }
        st.total_bytes += n;
        self.shared.notify(&mut st);
        Ok(())
    }

    /// Seals the active segment (flushed first) and starts `spool-<seq>.log`.
    fn rotate(&mut self, seq: u64) -> io::Result<()> {
        self.seal()?;
        let path = self.shared.dir.join(segment_name(seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        sync_dir(&self.shared.dir)?;
        let mut st = self.shared.lock();
        // A segment left empty by recovery has the same name: reuse it.
        if st.segments.last().is_none_or(|s| s.first_seq != seq) {
            st.segments.push(Segment {
                first_seq: seq,
                path,
                durable_len: len,
                last_seq: 0,
            });
        }
        st.active = Some(seq);
        self.file = Some(file);
        self.active_len = len;
        Ok(())
    }

    fn seal(&mut self) -> io::Result<()> {
        self.flush()?;
        self.file = None;
        self.active_len = 0;
        let mut st = self.shared.lock();
        st.active = None;
        self.shared.notify(&mut st);
        Ok(())
    }

    /// Whether a record may be added now. At the start of a full episode
    /// the active segment is sealed, so every segment can be deleted once
    /// acknowledged.
    fn has_room(&mut self) -> io::Result<bool> {
        let max = self.shared.options.max_bytes;
        let used = self.shared.lock().total_bytes + self.buf.len() as u64;
        if used < max {
            if self.full {
                self.full = false;
                self.gate.set(Blocked::SpoolFull, false);
                tracing::info!("spool has room again");
            }
            return Ok(true);
        }
        if !self.full {
            self.seal()?;
            self.full = true;
            self.gate.set(Blocked::SpoolFull, true);
            tracing::error!(max_bytes = max, dir = %self.shared.dir.display(), policy = ?self.gate.policy(), "spool full (ClickHouse is behind or down): fail_closed refuses new statements and waits, fail_open skips records and writes a gap record");
        }
        // Acknowledgements may have freed room since.
        Ok(self.shared.lock().total_bytes < max)
    }

    /// fail_closed: waits until acknowledgements free room, or shutdown.
    fn wait_for_room(&mut self) {
        let max = self.shared.options.max_bytes;
        let mut st = self.shared.lock();
        while st.total_bytes >= max && !self.gate.is_stopping() {
            st = self
                .shared
                .changed
                .wait_timeout(st, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let still_full = st.total_bytes >= max;
        drop(st);
        if still_full {
            // Shutdown: the queued records go past the limit rather than
            // being lost; the next start sends them.
            tracing::warn!(
                max_bytes = max,
                "stopping with the spool full: the last records are kept past spool_max_bytes"
            );
            return;
        }
        self.full = false;
        self.gate.set(Blocked::SpoolFull, false);
        tracing::info!("spool has room again");
    }

    fn skip(&mut self, record: &Record) {
        self.gate.count_dropped(1);
        SkippedRun::note(&mut self.skipped, record);
    }

    /// The gap record for what `fail_open` skipped; written past the size
    /// limit if need be (it is small, and it is the only trace).
    fn write_skipped_gap(&mut self) -> io::Result<()> {
        match self.skipped.take() {
            Some(run) => self.append(&run.into_gap("spool full")),
            None => Ok(()),
        }
    }

    /// Flushes and tells the reader no more records come.
    pub fn close(&mut self) -> io::Result<()> {
        let result = self
            .check()
            .and_then(|()| self.write_skipped_gap())
            .and_then(|()| self.seal());
        let mut st = self.shared.lock();
        st.closed = true;
        self.shared.notify(&mut st);
        result
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if !self.shared.lock().closed {
            let _ = self.close();
        }
    }
}
