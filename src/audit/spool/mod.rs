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
//! - `acked`: highest seq ClickHouse acknowledged (`marker`, atomic replace).
//! - `instance_id`: the generated instance id, when none is configured.
//! - `lock`: held (`flock`) by the one process using the spool; holds its pid.
//! - `quarantine/`: corrupt segment tails moved aside at start (`recover`).
//!
//! Durability: `write` only buffers; `flush` writes and `fdatasync`s. The
//! audit writer flushes every `audit.flush_interval_ms` under load (at once
//! for `before_ack` waiters), so one fsync covers every record since the
//! last (group commit), and the sender thread only sees
//! records once they are durable.
//!
//! Order of trust: a record is deleted only after its segment is wholly at
//! or below `acked`, and `acked` only moves after ClickHouse answered an
//! INSERT. After a crash, records between the marker and what ClickHouse
//! really has are sent again; the tables deduplicate on `(instance_id, seq)`.

mod frame;
pub mod marker;
mod reader;
mod recover;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub use reader::SpoolReader;
pub use recover::Gap;
pub use writer::SpoolWriter;

use crate::audit::lockfile::PathLock;

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
        let acked = marker::read_acked(dir)?;
        let rec = recover::recover(dir)?;
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
        let next_seq = rec.max_seq.max(acked) + 1;
        tracing::info!(
            dir = %dir.display(),
            segments = segments.len(),
            bytes = total_bytes,
            acked,
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
            reader: SpoolReader::new(shared),
            next_seq,
            gaps: rec.gaps,
        })
    }
}

#[cfg(test)]
mod tests;
