//! The durable spool between the audit writer and ClickHouse.
//!
//! The `clickhouse` crate gives no delivery guarantee (a failed batch is
//! gone), so with `audit.spool_dir` set every record bound for ClickHouse is
//! first appended to a local segment file and fsynced, and only deleted once
//! ClickHouse has acknowledged it. The audit writer then never waits for
//! ClickHouse, only for the disk; the ClickHouse sender thread tails the
//! spool.
//!
//! Layout of `spool_dir`:
//! - `spool-<first seq, 20 digits>.log`: segments of CRC32C frames (`frame`),
//!   each at most about `spool_segment_bytes`.
//! - `acked`: highest seq ClickHouse acknowledged (`marker`; overwritten in
//!   place, so it moves on a full disk).
//! - `seq`: the seq high-water mark: the audit writer reserves seqs in
//!   blocks and fsyncs the block's end here before it hands any of them
//!   out, so a restart (even after a crash) continues above it.
//! - `instance_id`: the generated instance id, when none is configured.
//! - `lock`: held (`flock`) by the one process using the spool; holds its pid.
//! - `reserve`: room freed when a write fails for want of space (`reserve`).
//! - `quarantine/`: corrupt segment tails moved aside at start (`recover`).
//!
//! Durability: `write` only buffers; `flush` writes and `fdatasync`s. The
//! audit writer flushes every `audit.flush_interval_ms` under load (at once
//! for `before_ack` waiters), so one fsync covers every record since the
//! last (group commit), and the sender thread only sees
//! records once they are durable.
//!
//! Order of trust: a record is deleted only after its segment is wholly at
//! or below what ClickHouse acknowledged, and `acked` only moves after
//! ClickHouse answered an INSERT. Segments are deleted before the marker is
//! moved (deleting needs no space); a crash between the two only resends
//! records, and the `seq` mark, not the segments, keeps seqs unique. After a crash, records between the marker and what ClickHouse
//! really has are sent again; the tables deduplicate on `(instance_id, seq)`.

pub(crate) mod frame;
pub mod marker;
mod reader;
mod recover;
mod reserve;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub use frame::SpooledFrame;
pub use reader::SpoolReader;
pub use recover::Gap;
pub use writer::SpoolWriter;

use crate::audit::disk::lockfile::PathLock;
use crate::audit::disk::slotfile::SlotFile;

/// Sizes from `[audit]`.
#[derive(Debug, Clone, Copy)]
pub struct SpoolOptions {
    /// When the segments together reach this, the writer waits for
    /// ClickHouse to acknowledge (and segments to be deleted).
    pub max_bytes: u64,
    /// A new segment is started once the current one reaches this.
    pub segment_bytes: u64,
}

/// A spool just opened: both ends, and what recovery found.
pub struct Spool {
    pub writer: SpoolWriter,
    pub reader: SpoolReader,
    /// Where the record sequence continues: above every seq the spool and
    /// the marker have seen.
    pub next_seq: u64,
    /// Corruption found at start, to be written as gap records.
    pub gaps: Vec<Gap>,
    /// The seq high-water mark, for the record builder to reserve seqs.
    pub seq_mark: SlotFile,
    /// Seqs the previous run reserved above every record the spool holds:
    /// `(first, count)`. Records with them were lost in a crash (never
    /// fsynced) or never made; a gap record says so.
    pub unused_seqs: Option<(u64, u64)>,
    /// The last frame of each tag the spool's last segments hold, with its
    /// seq: where the audit chain stood, and the last row change kept,
    /// after a crash.
    pub last_frames: Vec<(u64, SpooledFrame)>,
}

/// One frame to append: the seqs it accounts for, `[seq, end_seq)`, and
/// its body, written by the caller (for ClickHouse: `clickhouse::
/// spool_rows::encode`), which returns the frame's tag.
pub struct Entry<'a> {
    pub seq: u64,
    pub end_seq: u64,
    /// The audit chain's value after the entry, handed back with the seqs
    /// if the entry is given up (`release_held`).
    pub end_chain: Option<crate::audit::chain::ChainValue>,
    pub body: &'a dyn Fn(&mut Vec<u8>) -> io::Result<u8>,
}

/// One segment as the writer and reader share it.
#[derive(Debug, Clone)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    /// Bytes known durable (fsynced); the reader reads no further.
    durable_len: u64,
    /// Highest durable seq; 0 when empty.
    last_seq: u64,
}

#[derive(Debug)]
struct State {
    segments: Vec<Segment>,
    /// First seq of the segment the writer appends to, if any.
    active: Option<u64>,
    acked: u64,
    /// Sum of `durable_len`.
    total_bytes: u64,
    /// Bumped whenever data becomes durable, space is freed or the writer
    /// closes, so waiters do not miss a wake-up.
    generation: u64,
    /// The writer is gone: once the reader is at the end, it is done.
    closed: bool,
}

struct Shared {
    dir: PathBuf,
    /// Held while either end is alive: one process per spool.
    _lock: PathLock,
    options: SpoolOptions,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self, state: &mut State) {
        state.generation += 1;
        self.changed.notify_all();
    }
}

/// A read-only view of the spool's size, for `/metrics`.
#[derive(Clone)]
pub struct SpoolUsage(Arc<Shared>);

impl SpoolUsage {
    /// Durable bytes in the spool and the number of segment files.
    pub fn get(&self) -> (u64, usize) {
        let st = self.0.lock();
        (st.total_bytes, st.segments.len())
    }

    /// Durable records ClickHouse has not acknowledged yet, by seq (the
    /// bytes include acknowledged records until their segment is deleted).
    pub fn unacked(&self) -> u64 {
        let st = self.0.lock();
        let last = st.segments.iter().map(|s| s.last_seq).max().unwrap_or(0);
        last.saturating_sub(st.acked)
    }
}

impl Spool {
    /// Creates the directory if needed, recovers the segments (logging what
    /// was truncated or quarantined) and reads the marker.
    pub fn open(dir: &Path, options: SpoolOptions) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let lock = PathLock::acquire(&dir.join("lock"), "spool directory")?;
        // Start may have to create the marker files: give it the room kept.
        reserve::release(dir);
        let acked = marker::read_acked(dir)?;
        let mark = marker::read_seq_mark(dir)?;
        let rec = recover::recover(dir)?;
        let acked_marker = marker::open_acked(dir, acked)?;
        let seq_mark = SlotFile::open(&dir.join(marker::SEQ), mark)?;
        if let Err(e) = reserve::ensure(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "spool: could not write the reserve file (room for gap records on a full disk)");
        }
        let segments: Vec<Segment> = rec
            .segments
            .iter()
            .map(|s| Segment {
                first_seq: s.first_seq,
                path: s.path.clone(),
                durable_len: s.len,
                last_seq: s.last_seq,
            })
            .collect();
        let total_bytes = segments.iter().map(|s| s.durable_len).sum();
        let seen = rec.max_seq.max(acked);
        let next_seq = seen.max(mark) + 1;
        let unused_seqs = (mark > seen).then(|| (seen + 1, mark - seen));
        tracing::info!(
            dir = %dir.display(),
            segments = segments.len(),
            bytes = total_bytes,
            acked,
            seq_mark = mark,
            next_seq,
            "spool opened; records above the acked seq are sent to ClickHouse"
        );
        let shared = std::sync::Arc::new(Shared {
            dir: dir.to_path_buf(),
            _lock: lock,
            options,
            state: Mutex::new(State {
                segments,
                active: None,
                acked,
                total_bytes,
                generation: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        });
        Ok(Spool {
            writer: SpoolWriter::new(shared.clone()),
            reader: SpoolReader::new(shared, acked_marker),
            next_seq,
            gaps: rec.gaps,
            seq_mark,
            unused_seqs,
            last_frames: rec
                .last_by_tag
                .into_values()
                .filter_map(|(seq, p)| SpooledFrame::from_payload(&p).ok().map(|f| (seq, f)))
                .collect(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
