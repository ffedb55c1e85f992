//! `ClickHouseSink`: records for ClickHouse held in memory, in a bounded
//! channel to the sender thread (see `sink` for back-pressure and what a
//! full backlog reports). Without `audit.spool_dir`, a crash loses them.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rowbinary::{encode_record, EncodedRow};
use super::sink::{sender_gone, ClickHouseStats, SenderThread};
use crate::audit::record::Record;
use crate::audit::sink::{AuditSink, Offer, Room};
use crate::audit::writer::gate::{AuditGate, Blocked};
use crate::config::ClickHouseConfig;

/// After the sink is dropped, failed sends are retried this long.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// `audit.clickhouse_stall_timeout_ms` by default.
const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the writer sleeps before offering a row to a full backlog
/// again (back-pressure while ClickHouse acknowledges).
const BACKLOG_RETRY: Duration = Duration::from_millis(5);

pub struct ClickHouseSink {
    sender: SenderThread,
    tx: Option<SyncSender<EncodedRow>>,
    /// Rows the channel holds.
    capacity: usize,
    /// Whether the backlog was full at the last offer (log once per episode).
    backlog_full: bool,
    gate: Arc<AuditGate>,
    /// `audit.clickhouse_stall_timeout_ms`.
    stall_timeout: Duration,
}

enum Sent {
    Yes,
    Full(EncodedRow),
    Gone,
}

impl ClickHouseSink {
    /// Starts the sender thread.
    pub fn start(url: &str, config: &ClickHouseConfig) -> io::Result<ClickHouseSink> {
        let (sender, tx, capacity) = SenderThread::start(url, config, None)?;
        Ok(ClickHouseSink {
            sender,
            tx: Some(tx),
            capacity,
            backlog_full: false,
            gate: Arc::default(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        })
    }

    /// How long a full backlog waits for an acknowledgement before it is
    /// reported full.
    pub fn stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// The gate to report a full backlog on.
    pub fn guard(&mut self, gate: Arc<AuditGate>) {
        self.gate = gate;
    }

    pub fn stats(&self) -> &ClickHouseStats {
        &self.sender.shared.stats
    }

    /// A handle on the counters that outlives the sink (for `/metrics`).
    pub fn stats_handle(&self) -> Arc<ClickHouseStats> {
        self.sender.shared.stats.clone()
    }

    fn try_send(&self, row: EncodedRow) -> Sent {
        match self.tx.as_ref().map(|tx| tx.try_send(row)) {
            Some(Ok(())) => Sent::Yes,
            Some(Err(TrySendError::Full(row))) => Sent::Full(row),
            Some(Err(TrySendError::Disconnected(_))) | None => Sent::Gone,
        }
    }

    fn set_backlog_full(&mut self, full: bool) {
        if full == self.backlog_full {
            return;
        }
        self.backlog_full = full;
        self.gate.set(Blocked::ClickHouseBehind, full);
        if full {
            self.stats().backlog_full.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                rows = self.capacity,
                stall_timeout_ms = self.stall_timeout.as_millis() as u64,
                "ClickHouse failing or stalled with the backlog full (records held in memory; set audit.spool_dir to hold them on disk): fail_closed refuses new statements and waits, fail_open skips records and sends a gap row"
            );
        }
    }
}

impl AuditSink for ClickHouseSink {
    fn name(&self) -> String {
        format!("clickhouse:{}", self.sender.url)
    }

    /// Queues a row; while the backlog is full and ClickHouse healthy,
    /// waits (back-pressure); failing or stalled, reports it full.
    fn offer(&mut self, record: &Record, _end_seq: u64, room: Room) -> Offer {
        let mut row = match encode_record(record) {
            Ok(row) => row,
            Err(e) => return Offer::Failing(e.into()),
        };
        let waiting_since = Instant::now();
        loop {
            row = match self.try_send(row) {
                Sent::Yes => {
                    self.set_backlog_full(false);
                    return Offer::Taken;
                }
                Sent::Gone => return Offer::Failing(sender_gone()),
                Sent::Full(row) => row,
            };
            if room == Room::PastLimit {
                // Shutdown: nothing frees room any more.
                self.stats().rows_lost.fetch_add(1, Ordering::Relaxed);
                return Offer::Full;
            }
            if self.backlog_full
                || self
                    .sender
                    .shared
                    .stalled(waiting_since, self.stall_timeout)
            {
                self.set_backlog_full(true);
                return Offer::Full;
            }
            std::thread::sleep(BACKLOG_RETRY);
        }
    }

    /// Batching is time-driven in the sender thread: nothing to do but
    /// check that it runs.
    fn flush(&mut self) -> io::Result<()> {
        self.sender.alive()
    }

    fn wait(&mut self) {
        std::thread::sleep(BACKLOG_RETRY);
    }
}

impl Drop for ClickHouseSink {
    /// Sends what is buffered (retrying for up to `SHUTDOWN_GRACE`), then
    /// stops the sender thread.
    fn drop(&mut self) {
        self.sender.stop(SHUTDOWN_GRACE);
        drop(self.tx.take());
        self.sender.join();
    }
}
