//! The tailing end, used on the ClickHouse sender thread: reads durable
//! records in seq order from the acknowledged position, and moves the
//! marker (deleting wholly acknowledged segments) once ClickHouse answered.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::sync::Arc;
use std::time::Duration;

use super::frame::{self, Read1, SpooledFrame};
use super::marker;
use super::Shared;
use crate::audit::disk::slotfile::SlotFile;

pub struct SpoolReader {
    shared: Arc<Shared>,
    /// First seq of the segment being read, and the open file.
    current: Option<(u64, BufReader<File>)>,
    offset: u64,
    /// Records up to this seq were acknowledged before start: skipped.
    skip_through: u64,
    payload: Vec<u8>,
    /// State generation seen by the last `read`, so `wait` misses nothing.
    seen: u64,
    /// The `acked` marker, overwritten in place.
    marker: SlotFile,
}

impl SpoolReader {
    pub(super) fn new(shared: Arc<Shared>, marker: SlotFile) -> SpoolReader {
        let skip_through = shared.lock().acked;
        SpoolReader {
            shared,
            current: None,
            offset: 0,
            skip_through,
            payload: Vec::new(),
            seen: 0,
            marker,
        }
    }

    /// Appends up to `max` durable frames (with their seq) to `out`
    /// without waiting; returns how many.
    pub fn read(&mut self, max: usize, out: &mut Vec<(u64, SpooledFrame)>) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let (limit, next) = {
                let st = self.shared.lock();
                self.seen = st.generation;
                let cur = self.current.as_ref().map(|c| c.0);
                // The current segment, or (none yet / deleted) the first after it.
                let idx = st
                    .segments
                    .iter()
                    .position(|s| cur.is_none_or(|c| s.first_seq >= c));
                let Some(idx) = idx else { break };
                let seg = &st.segments[idx];
                if cur != Some(seg.first_seq) {
                    (None, Some((seg.first_seq, seg.path.clone())))
                } else {
                    let sealed = st.active != Some(seg.first_seq);
                    let next = st
                        .segments
                        .get(idx + 1)
                        .filter(|_| sealed)
                        .map(|s| (s.first_seq, s.path.clone()));
                    (Some(seg.durable_len), next)
                }
            };
            match limit {
                Some(limit) if self.offset < limit => {}
                _ => match next {
                    Some((first_seq, path)) => {
                        let file = File::open(&path)?;
                        self.current = Some((first_seq, BufReader::with_capacity(1 << 18, file)));
                        self.offset = 0;
                        continue;
                    }
                    None => break,
                },
            }
            let Some((first_seq, r)) = self.current.as_mut() else {
                break;
            };
            match frame::read_frame(r, &mut self.payload)? {
                Read1::Frame { seq, size } => {
                    self.offset += size;
                    if seq > self.skip_through {
                        out.push((seq, SpooledFrame::from_payload(&self.payload)?));
                        n += 1;
                    }
                }
                other => {
                    return Err(io::Error::other(format!(
                        "spool segment {first_seq} damaged at offset {} ({other:?}) after recovery",
                        self.offset
                    )))
                }
            }
        }
        Ok(n)
    }

    /// Waits until more may be readable (or the writer closed), at most `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let st = self.shared.lock();
        if st.generation == self.seen {
            let _ = self.shared.changed.wait_timeout(st, timeout);
        }
    }

    /// Whether the writer has closed (and flushed) the spool.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Records that ClickHouse acknowledged every record up to `seq`:
    /// deletes segments wholly at or below it, then moves the marker. Both
    /// work on a full disk (a deletion frees space, the marker is
    /// overwritten in place); a crash between them only resends records.
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        let mut st = self.shared.lock();
        st.acked = seq;
        let active = st.active;
        let mut freed = 0;
        let mut result = Ok(());
        st.segments.retain(|s| {
            let done = Some(s.first_seq) != active && s.last_seq <= seq;
            if done {
                if let Err(e) = fs::remove_file(&s.path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        result = Err(e);
                        return true;
                    }
                }
                freed += s.durable_len;
            }
            !done
        });
        st.total_bytes -= freed;
        if freed > 0 {
            self.shared.notify(&mut st);
        }
        drop(st);
        result?;
        if freed > 0 {
            marker::sync_dir(&self.shared.dir)?;
        }
        self.marker.store(seq)
    }
}
