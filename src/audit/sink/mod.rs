//! Where records go: the audit file (`jsonl`) and ClickHouse
//! (`clickhouse`, through memory or the spool). A sink reports what it did
//! with each record; `writer::policy` decides what follows.

use std::io;

use super::record::Record;

pub mod clickhouse;
mod held;
pub mod jsonl;

pub use held::Held;

/// What a sink did with a record it was offered.
#[derive(Debug)]
pub enum Offer {
    /// Taken: buffered, queued or written.
    Taken,
    /// Not taken: no room now (see the module doc).
    Full,
    /// Not taken: the sink's writes fail.
    Failing(io::Error),
}

/// Whether a record may go past a sink's size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    WithinLimit,
    /// A gap record (small, and the only trace of what it tells), or a
    /// record at shutdown, when nothing frees room any more.
    PastLimit,
}

/// Seqs a sink held and gave up: `[first_seq, end_seq)`, `records` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub first_seq: u64,
    pub end_seq: u64,
    pub records: u64,
    /// The chain value after the last of them (where a gap record telling
    /// them says the chain goes on).
    pub end_chain: Option<crate::audit::chain::ChainValue>,
}

/// Where records go. Called from the writer thread only. A sink never
/// applies the failure policy: it reports, and `Destination` decides.
pub trait AuditSink: Send {
    fn name(&self) -> String;

    /// Takes `record`, which accounts for the seqs `[record.seq(), end_seq)`
    /// (more than one for a gap record telling skipped seqs), if it can now.
    fn offer(&mut self, record: &Record, end_seq: u64, room: Room) -> Offer;

    /// Called whenever the queue runs empty, and at least every few
    /// thousand records; while writes fail, tries them again when due.
    fn flush(&mut self) -> io::Result<()>;

    /// Keeps a record the sink could not take while its writes fail, to
    /// write once they work (`fail_closed`).
    fn hold(&mut self, _record: &Record, _end_seq: u64) {}

    /// Whether the memory for held records is used up (the writer waits).
    fn held_full(&self) -> bool {
        false
    }

    /// Gives up the records taken but not written (`fail_open` while writes
    /// fail).
    fn release_held(&mut self) -> Option<Released> {
        None
    }

    /// Waits a moment for room, or for a write to work again.
    fn wait(&mut self) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
