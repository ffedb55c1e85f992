//! `SpooledClickHouseSink`: records for ClickHouse go through the durable
//! spool (`audit.spool_dir`): `offer()` appends to it, `flush()` fsyncs it
//! (group commit, once per writer round), and the sender thread tails it
//! (see `sink`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::sink::{ClickHouseStats, SenderThread};
use super::spool_rows::encode;
use crate::audit::record::Record;
use crate::audit::sink::{AuditSink, Offer, Released, Room};
use crate::audit::spool::{Entry, SpoolReader, SpoolWriter};
use crate::config::ClickHouseConfig;

/// With a spool nothing is lost by stopping: retry only briefly.
const SPOOL_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub struct SpooledClickHouseSink {
    sender: SenderThread,
    spool: SpoolWriter,
}

impl SpooledClickHouseSink {
    /// Starts the sender thread on `reader`; records are appended to
    /// `writer`. `instance_id` is the one the spool's records carry (the
    /// gap row for a frame the sender cannot read carries it too).
    pub fn start(
        url: &str,
        config: &ClickHouseConfig,
        writer: SpoolWriter,
        reader: SpoolReader,
        instance_id: String,
    ) -> io::Result<SpooledClickHouseSink> {
        let spool = Some((reader, instance_id));
        let (sender, _unused, _) = SenderThread::start(url, config, spool)?;
        Ok(SpooledClickHouseSink {
            sender,
            spool: writer,
        })
    }

    pub fn stats(&self) -> &ClickHouseStats {
        &self.sender.shared.stats
    }

    /// A handle on the counters that outlives the sink (for `/metrics`).
    pub fn stats_handle(&self) -> Arc<ClickHouseStats> {
        self.sender.shared.stats.clone()
    }
}

impl AuditSink for SpooledClickHouseSink {
    fn name(&self) -> String {
        format!("clickhouse:{}", self.sender.url)
    }

    fn offer(&mut self, record: &Record, end_seq: u64, room: Room) -> Offer {
        self.spool
            .offer(entry(record, end_seq, &|out| encode(record, out)), room)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.spool.flush()?;
        self.sender.alive()
    }

    fn hold(&mut self, record: &Record, end_seq: u64) {
        self.spool
            .hold(entry(record, end_seq, &|out| encode(record, out)));
    }

    fn held_full(&self) -> bool {
        self.spool.held_full()
    }

    fn release_held(&mut self) -> Option<Released> {
        self.spool.release_held()
    }

    fn wait(&mut self) {
        self.spool.wait();
    }
}

/// The spool frame of `record`: its RowBinary row and table tag.
fn entry<'a>(
    record: &Record,
    end_seq: u64,
    body: &'a dyn Fn(&mut Vec<u8>) -> io::Result<u8>,
) -> Entry<'a> {
    Entry {
        seq: record.seq(),
        end_seq,
        end_chain: record.header().chain,
        body,
    }
}

impl Drop for SpooledClickHouseSink {
    /// Closes the spool, lets the sender retry briefly (what is not sent
    /// stays spooled for the next start), then stops it.
    fn drop(&mut self) {
        self.sender.stop(SPOOL_SHUTDOWN_GRACE);
        if let Err(e) = self.spool.close() {
            tracing::error!(error = %e, "spool close failed");
        }
        self.sender.join();
    }
}
