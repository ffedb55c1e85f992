//! The appending end, used on the audit writer thread.
//!
//! Frames are buffered in memory by `write` and written plus `fdatasync`ed
//! by `flush` (group commit). Only then are they visible to the reader, so
//! nothing reaches ClickHouse that could vanish in a crash and come back
//! with a different content under the same seq.
//!
//! An fsync error is fatal for the spool: after a failed fsync the kernel
//! may have dropped the dirty pages, so what is on disk is unknown. Every
//! later write fails; the audit writer logs it and counts sink errors.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use super::frame;
use super::marker::sync_dir;
use super::recover::segment_name;
use super::{Segment, Shared};
use crate::audit::record::Record;

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
    failed: Option<String>,
    /// Whether the writer is waiting for room (log once per episode).
    full: bool,
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
            failed: None,
            full: false,
        }
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::other(format!(
                "the spool failed earlier and takes no more records: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// Buffers one record; waits while the spool is full (`spool_max_bytes`).
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.check()?;
        self.wait_for_room()?;
        let seq = record.seq();
        let size = self.active_len + self.buf.len() as u64;
        if self.file.is_none() || size >= self.shared.options.segment_bytes {
            self.rotate(seq)?;
        }
        frame::encode(seq, record, &mut self.buf)?;
        self.buf_last_seq = seq;
        if self.buf.len() >= MAX_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes and fsyncs what is buffered, then shows it to the reader.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.write_all(&self.buf).and_then(|()| file.sync_data()) {
            tracing::error!(error = %e, dir = %self.shared.dir.display(), "spool write/fsync failed: the spool is stopped (records still go to other sinks)");
            self.failed = Some(e.to_string());
            return Err(e);
        }
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

    /// fail_closed on a full spool: flush and seal (so every segment can be
    /// deleted once acknowledged), then wait until acknowledgements free
    /// room. The audit queue fills meanwhile and `audit.queue_full` applies.
    fn wait_for_room(&mut self) -> io::Result<()> {
        let max = self.shared.options.max_bytes;
        let used = self.shared.lock().total_bytes + self.buf.len() as u64;
        if used < max {
            if self.full {
                self.full = false;
                tracing::info!("spool has room again");
            }
            return Ok(());
        }
        self.seal()?;
        if !self.full {
            self.full = true;
            tracing::error!(max_bytes = max, dir = %self.shared.dir.display(), "spool full (ClickHouse is behind or down): the audit writer waits, the audit queue fills and audit.queue_full applies");
        }
        let mut st = self.shared.lock();
        while st.total_bytes >= max {
            st = self
                .shared
                .changed
                .wait_timeout(st, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// Flushes and tells the reader no more records come.
    pub fn close(&mut self) -> io::Result<()> {
        let result = self.seal();
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
