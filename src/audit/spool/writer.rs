//! The appending end, used on the audit writer thread.
//!
//! Frames are buffered in memory by `write` and written plus `fdatasync`ed
//! by `flush` (group commit). Only then are they visible to the reader, so
//! nothing reaches ClickHouse that could vanish in a crash and come back
//! with a different content under the same seq.
//!
//! A failed write or fsync (disk full, I/O error) is not fatal: what the
//! file holds past the last successful fsync is unknown, so the segment is
//! cut back to that length (and fsynced) and detached, so that once
//! ClickHouse acknowledges it it can be deleted; the buffer still holds the
//! frames. Until a write works again (tried after `PROBE_EVERY`, doubling
//! to `PROBE_MAX` while it keeps failing, and whenever acknowledgements
//! freed space; each try writes the held frames 64 KiB at a time, so a disk
//! with less room than the buffer still makes progress) the gate is closed
//! (`SpoolDisk`) and records are reported as not taken (`Offer::Failing`):
//! `audit::policy` then holds them here (up to `MAX_BUFFER`, then the
//! writer waits) or releases what is held. Only when the cut itself fails
//! is the spool stopped until restart (`SpoolFailed`).
//!
//! A full spool (`spool_max_bytes`) closes the gate (`SpoolFull`) and
//! takes no record within its limit (`Offer::Full`) until acknowledgements
//! free room; gap records, and the last records at shutdown, go past it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frame;
use super::marker::sync_dir;
use super::recover::segment_name;
use super::Entry;
use super::{Segment, Shared};
use crate::audit::sink::{Held, Offer, Released, Room};
use crate::audit::writer::gate::{AuditGate, Blocked};

/// Frames buffered beyond this are flushed without waiting for the round;
/// while the disk fails, the writer waits once this much is held.
const MAX_BUFFER: usize = 8 << 20;
/// While the disk fails, a write is tried again at most this often (and
/// whenever acknowledgements freed space).
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// The longest pause between tries: each try writes the whole buffer.
const PROBE_MAX: Duration = Duration::from_secs(2);

pub struct SpoolWriter {
    shared: Arc<Shared>,
    /// The active segment, once the first record arrived.
    file: Option<File>,
    /// Durable bytes of the active segment.
    active_len: u64,
    buf: Vec<u8>,
    buf_last_seq: u64,
    /// The seqs the frames in `buf` account for, and how many they are.
    held: Held,
    /// Set when a failed write could not be cut back: stopped until restart.
    failed: Option<String>,
    /// The last write error while writes fail; retried (see module doc).
    disk_error: Option<String>,
    /// When the failing write was last tried, and the spool's generation
    /// then (acknowledgements that free space bump it).
    probed: (Instant, u64),
    /// How long after `probed` the next try is due.
    probe_wait: Duration,
    /// Whether the spool is in a full episode (log once per episode).
    full: bool,
    gate: Arc<AuditGate>,
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
            held: Held::default(),
            failed: None,
            disk_error: None,
            probed: (Instant::now(), 0),
            probe_wait: PROBE_EVERY,
            full: false,
            gate: Arc::default(),
        }
    }

    /// The gate to report a full or failing spool on.
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

    /// Buffers one frame, if the spool has room (or `room` lets it go past
    /// the limit) and its writes work.
    pub fn offer(&mut self, entry: Entry<'_>, room: Room) -> Offer {
        if let Err(e) = self.check() {
            return Offer::Failing(e);
        }
        if self.disk_error.is_some() && !self.try_resume() {
            return Offer::Failing(self.failing_error());
        }
        let taken = match room {
            Room::WithinLimit => self.has_room(),
            Room::PastLimit => Ok(true),
        }
        .and_then(|has_room| match has_room {
            true => self.append(entry).map(|()| true),
            false => Ok(false),
        });
        match taken {
            Ok(true) => Offer::Taken,
            Ok(false) => Offer::Full,
            // Not taken: the disk failed under it (a seal or a new segment).
            Err(e) if self.failed.is_none() && self.disk_error.is_none() => {
                Offer::Failing(self.on_write_error(e))
            }
            Err(e) => Offer::Failing(e),
        }
    }

    fn failing_error(&self) -> io::Error {
        let e = self.disk_error.as_deref().unwrap_or("unknown");
        io::Error::other(format!(
            "spool write failing ({e}); records are kept in memory and written when the disk takes them"
        ))
    }

    fn append(&mut self, entry: Entry<'_>) -> io::Result<()> {
        let size = self.active_len + self.buf.len() as u64;
        if self.file.is_none() || size >= self.shared.options.segment_bytes {
            self.rotate(entry.seq)?;
        }
        self.encode(entry)?;
        if self.buf.len() >= MAX_BUFFER {
            // A failure is kept in `disk_error`; the record is in `buf` or
            // counted in the skipped run either way.
            let _ = self.flush();
        }
        Ok(())
    }

    fn encode(&mut self, entry: Entry<'_>) -> io::Result<()> {
        let Entry {
            seq,
            end_seq,
            end_chain,
            body,
        } = entry;
        frame::encode(seq, &mut self.buf, body)?;
        self.buf_last_seq = seq;
        self.held.add(seq, end_seq, end_chain);
        Ok(())
    }

    /// Writes and fsyncs what is buffered, then shows it to the reader.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        if self.disk_error.is_some() {
            return match self.try_resume() {
                true => Ok(()),
                false => Err(self.failing_error()),
            };
        }
        self.write_out()
    }

    /// Writes `buf` to the active segment (starting one named after its
    /// first seq if there is none) and fsyncs it.
    fn write_out(&mut self) -> io::Result<()> {
        let (len, last_seq, frames) = (self.buf.len(), self.buf_last_seq, self.held.records());
        self.write_prefix(len, last_seq, frames)
    }

    /// Writes and fsyncs `buf[..len]` (whole frames: `frames` of them, the
    /// last with `last_seq`), then shows them to the reader.
    fn write_prefix(&mut self, len: usize, last_seq: u64, frames: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if self.file.is_none() {
            if let Err(e) = self.open_segment(self.held.first_seq()) {
                return Err(self.on_write_error(e));
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let chunk = &self.buf[..len];
        if let Err(e) = file.write_all(chunk).and_then(|()| file.sync_data()) {
            return Err(self.on_write_error(e));
        }
        self.active_len += len as u64;
        self.buf.drain(..len);
        self.held.wrote(frames, frame::seq_at(&self.buf, 0));
        let n = len as u64;
        let mut st = self.shared.lock();
        if let Some(active) = st.active {
            if let Some(seg) = st.segments.iter_mut().find(|s| s.first_seq == active) {
                seg.durable_len += n;
                seg.last_seq = last_seq;
            }
        }
        st.total_bytes += n;
        self.shared.notify(&mut st);
        Ok(())
    }

    /// Ends the active segment without writing to it, so it can be deleted
    /// once acknowledged; the next write starts a new one.
    fn detach_active(&mut self) {
        self.file = None;
        self.active_len = 0;
        let mut st = self.shared.lock();
        st.active = None;
        self.shared.notify(&mut st);
    }

    /// Seals the active segment (flushed first) and starts `spool-<seq>.log`.
    fn rotate(&mut self, seq: u64) -> io::Result<()> {
        self.seal()?;
        self.open_segment(seq)
    }

    fn open_segment(&mut self, seq: u64) -> io::Result<()> {
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
            tracing::error!(max_bytes = max, dir = %self.shared.dir.display(), "spool full (ClickHouse is behind or down): fail_closed refuses new statements and waits, fail_open skips records and writes a gap record");
        }
        // Acknowledgements may have freed room since.
        Ok(self.shared.lock().total_bytes < max)
    }

    /// Waits until acknowledgements change the spool, or a moment.
    pub fn wait(&mut self) {
        let st = self.shared.lock();
        let _ = self.shared.changed.wait_timeout(st, PROBE_EVERY);
    }

    /// Keeps a record the failing disk did not take, to write once it works.
    pub fn hold(&mut self, entry: Entry<'_>) {
        if self.failed.is_some() {
            return; // stopped for good: holding it would only fill memory
        }
        let seq = entry.seq;
        if let Err(e) = self.encode(entry) {
            tracing::error!(seq, error = %e, "spool: a record could not be encoded");
        }
    }

    pub fn held_full(&self) -> bool {
        self.failed.is_none() && self.disk_error.is_some() && self.buf.len() >= MAX_BUFFER
    }

    /// Gives up the records buffered and not written.
    pub fn release_held(&mut self) -> Option<Released> {
        let released = self.held.release()?;
        self.buf.clear();
        Some(released)
    }

    /// Flushes and tells the reader no more records come.
    pub fn close(&mut self) -> io::Result<()> {
        // A last try now, whatever the retry pause.
        self.probe_wait = Duration::ZERO;
        let result = self.check().and_then(|()| self.seal());
        if result.is_err() && !self.held.is_empty() {
            tracing::error!(
                records = self.held.records(),
                "stopping while spool writes fail: these records were not written"
            );
        }
        let mut st = self.shared.lock();
        st.closed = true;
        self.shared.notify(&mut st);
        result
    }
}

#[path = "writer_disk.rs"]
mod disk;

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if !self.shared.lock().closed {
            let _ = self.close();
        }
    }
}
