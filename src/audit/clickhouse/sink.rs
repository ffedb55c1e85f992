//! `ClickHouseSink`: batches records into `statements`, `sessions` and
//! `gaps` and sends them with the `clickhouse` crate (HTTP, RowBinary, LZ4).
//!
//! Threads and back-pressure: `write()` runs on the audit writer thread,
//! which is inside its own tokio runtime, so it cannot block on network I/O
//! there. It converts the record to a row and puts it on a bounded channel
//! (`MAX_PENDING_BATCHES * batch_rows` rows) to a dedicated sender thread,
//! which owns a current-thread runtime and the HTTP client. The sender
//! thread forms batches (`batch_rows` rows, or `batch_ms` after the first
//! row, whichever comes first; its own clock, so a quiet proxy still
//! delivers its last rows on time) and sends them. When the channel is
//! full but ClickHouse is healthy (no failed insert since the last
//! acknowledged one, and an acknowledgement within
//! `audit.clickhouse_stall_timeout_ms`), `write()` just waits: the audit
//! queue fills behind it and statements wait (back-pressure), under either
//! policy. When ClickHouse fails or stalls with the channel full, that
//! moment closes the `AuditGate` (`ClickHouseBehind`) and is logged once
//! per episode. Then `fail_closed` makes `write()` wait for room (the gate
//! refuses new statements meanwhile; at shutdown it stops waiting and
//! counts the row lost) and `fail_open` skips the record and sends a gap
//! row for the skipped run once there is room.
//!
//! Failures: a batch that fails is kept and retried with exponential backoff
//! (100 ms doubling to 5 s, with jitter), forever, whatever the error: a
//! permanent error (schema mismatch) is logged at error level with
//! ClickHouse's message and retried too, so nothing is dropped silently. On
//! a failure the schema is checked again before the next attempt (an
//! operator may have dropped a table). Memory holds at most the channel plus
//! one batch. Without a spool, records held here are lost if pgtrail dies,
//! and at shutdown the sender gives up after `SHUTDOWN_GRACE` of failed
//! retries, logging how many rows it could not deliver (they are still in
//! `audit.file` when that is set). Retries are idempotent because the
//! tables deduplicate on `(instance_id, seq)` (see `schema`).
//!
//! With `audit.spool_dir` (`start_spooled`), there is no channel: `write()`
//! appends to the durable spool and `flush()` fsyncs it (group commit, once
//! per writer round), so the audit writer waits for the disk, never for
//! ClickHouse. The sender thread tails the spool from the acknowledged
//! position, batches the same way, and after each acknowledged batch moves
//! the spool's `acked` marker, which deletes wholly sent segments. What is
//! not acknowledged at shutdown (after `SPOOL_SHUTDOWN_GRACE`) stays in the
//! spool and is sent by the next start; replays are deduplicated by the
//! tables like retries.
//!
//! Why the crate works on 18.16: it sends `INSERT INTO t(cols) FORMAT
//! RowBinary` with `decompress=1` and ClickHouse's LZ4 block framing, both of
//! which 18.16 understands; version 0.13 does no schema validation. Two
//! adjustments: queries (`SELECT version()`, DDL, `schema_migrations`) go
//! through a client without compression, because 18.16 answers
//! `compress=1` + `FORMAT RowBinary` with an empty body; and the only
//! version-dependent setting, `async_insert=0`, is sent to servers that have
//! it (21.11+).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clickhouse::{Client, Compression};

use super::rowbinary::{encode_record, EncodedRow};
use super::sender::Sender;
use crate::audit::gate::{AuditGate, Blocked, SkippedRun};
use crate::audit::pipeline::AuditSink;
use crate::audit::record::Record;
use crate::audit::spool::{SpoolReader, SpoolWriter};
use crate::config::{ClickHouseConfig, FailurePolicy};

/// Batches the channel may hold beyond the one being sent.
const MAX_PENDING_BATCHES: usize = 4;
/// After the sink is dropped, failed sends are retried this long.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// `audit.clickhouse_stall_timeout_ms` by default.
const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// With a spool nothing is lost by stopping: retry only briefly.
const SPOOL_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long the writer sleeps before offering a row to a full backlog
/// again (back-pressure while ClickHouse acknowledges).
const BACKLOG_RETRY: Duration = Duration::from_millis(5);

/// Delivery counters.
#[derive(Debug, Default)]
pub struct ClickHouseStats {
    /// Batches ClickHouse acknowledged.
    pub batches_sent: AtomicU64,
    /// Failed attempts (each is retried).
    pub batches_failed: AtomicU64,
    /// Failed attempts whose error needs a person (see `errors`).
    pub batches_rejected: AtomicU64,
    pub rows_sent: AtomicU64,
    /// Rows given up at shutdown after `SHUTDOWN_GRACE` of failures.
    pub rows_lost: AtomicU64,
    /// Times `write()` found the in-memory backlog full and had to wait.
    pub backlog_full: AtomicU64,
    /// Time of each acknowledged batch attempt (all its INSERTs).
    pub insert_latency: crate::latency::Latency,
    /// `event_time` (micros since the epoch) of the oldest row not yet
    /// acknowledged by ClickHouse; 0 when none is waiting.
    pub oldest_unsent_micros: AtomicU64,
}

pub(super) struct Shared {
    pub stats: Arc<ClickHouseStats>,
    /// Set when the sink is dropped: retry until then, then give up.
    give_up_at: Mutex<Option<Instant>>,
    /// When ClickHouse last acknowledged a batch, and whether an attempt
    /// failed since: the backlog waits for a healthy ClickHouse.
    health: Mutex<(Instant, bool)>,
}

impl Shared {
    pub fn mark_sent(&self) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = (Instant::now(), false);
    }

    pub fn mark_failed(&self) {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
    }

    /// Whether ClickHouse failed, or acknowledged nothing for `timeout`
    /// while `waiting_since`.
    fn stalled(&self, waiting_since: Instant, timeout: Duration) -> bool {
        let (sent_at, failed) = *self.health.lock().unwrap_or_else(|p| p.into_inner());
        failed || sent_at.max(waiting_since).elapsed() >= timeout
    }

    pub fn give_up_at(&self) -> Option<Instant> {
        *self.give_up_at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct ClickHouseSink {
    url: String,
    capacity: usize,
    tx: Option<SyncSender<EncodedRow>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Whether the backlog was full at the last write (log once per episode).
    backlog_full: bool,
    /// Set in spooled mode: records go here instead of `tx`.
    spool: Option<SpoolWriter>,
    gate: Arc<AuditGate>,
    /// `fail_open` without a spool: the run being skipped, and gap rows
    /// waiting for room in the backlog.
    skipped: Option<SkippedRun>,
    pending_gaps: Vec<EncodedRow>,
    /// `audit.clickhouse_stall_timeout_ms`.
    stall_timeout: Duration,
}

impl ClickHouseSink {
    /// Starts the sender thread. The server is contacted there (version,
    /// schema), so pgtrail starts even when ClickHouse is down.
    pub fn start(url: &str, config: &ClickHouseConfig) -> io::Result<ClickHouseSink> {
        Self::start_inner(url, config, None)
    }

    /// Like `start`, but records go through the durable spool: `write()`
    /// appends to `writer`, the sender thread tails `reader`.
    pub fn start_spooled(
        url: &str,
        config: &ClickHouseConfig,
        writer: SpoolWriter,
        reader: SpoolReader,
    ) -> io::Result<ClickHouseSink> {
        Self::start_inner(url, config, Some((writer, reader)))
    }

    fn start_inner(
        url: &str,
        config: &ClickHouseConfig,
        spool: Option<(SpoolWriter, SpoolReader)>,
    ) -> io::Result<ClickHouseSink> {
        let capacity = config.batch_rows.saturating_mul(MAX_PENDING_BATCHES).max(1);
        let (tx, rx) = mpsc::sync_channel(capacity);
        let shared = Arc::new(Shared {
            stats: Arc::new(ClickHouseStats::default()),
            give_up_at: Mutex::new(None),
            health: Mutex::new((Instant::now(), false)),
        });
        let mut base = Client::default()
            .with_url(url)
            .with_user(config.user.clone());
        if !config.password.0.is_empty() {
            base = base.with_password(config.password.0.clone());
        }
        // Inserts are LZ4-compressed; answers to queries are not (18.16
        // sends an empty body for compressed RowBinary results; they are tiny).
        let admin = base.clone().with_compression(Compression::None);
        let client = base
            .with_compression(Compression::Lz4)
            .with_database(config.database.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sender = Sender {
            admin,
            client,
            options: config.schema_options(),
            batch_rows: config.batch_rows.max(1),
            batch_bytes: config.batch_bytes.max(1),
            bytes: 0,
            batch_wait: Duration::from_millis(config.batch_ms.max(1)),
            version: None,
            shared: shared.clone(),
            statements: Default::default(),
            statements_v1: Default::default(),
            sessions_v1: Default::default(),
            sessions: Default::default(),
            gaps: Default::default(),
            failures: 0,
            url: crate::secrets::masked_url(url),
            spooled: spool.is_some(),
        };
        let (writer, reader) = match spool {
            Some((w, r)) => (Some(w), Some(r)),
            None => (None, None),
        };
        let thread = std::thread::Builder::new()
            .name("pgtrail-clickhouse".into())
            .spawn(move || match reader {
                Some(reader) => sender.run_spooled(reader, runtime),
                None => sender.run(rx, runtime),
            })?;
        Ok(ClickHouseSink {
            url: crate::secrets::masked_url(url),
            capacity,
            tx: Some(tx),
            thread: Some(thread),
            shared,
            backlog_full: false,
            spool: writer,
            gate: Arc::default(),
            skipped: None,
            pending_gaps: Vec::new(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        })
    }

    /// How long a full backlog waits for an acknowledgement before the
    /// failure policy applies.
    pub fn stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// The gate to report a full backlog on; its policy says what to do.
    pub fn guard(&mut self, gate: Arc<AuditGate>) {
        self.gate = gate;
    }

    fn set_backlog_full(&mut self, full: bool) {
        if full == self.backlog_full {
            return;
        }
        self.backlog_full = full;
        self.gate.set(Blocked::ClickHouseBehind, full);
        if full {
            self.shared
                .stats
                .backlog_full
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                rows = self.capacity,
                policy = ?self.gate.policy(),
                stall_timeout_ms = self.stall_timeout.as_millis() as u64,
                "ClickHouse failing or stalled with the backlog full (records held in memory; set audit.spool_dir to hold them on disk): fail_closed refuses new statements and waits, fail_open skips records and sends a gap row"
            );
        }
    }

    /// Sends waiting gap rows while there is room.
    fn send_pending_gaps(&mut self) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(sender_gone)?;
        while let Some(gap) = self.pending_gaps.pop() {
            match tx.try_send(gap) {
                Ok(()) => {}
                Err(TrySendError::Full(gap)) => {
                    self.pending_gaps.push(gap);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return Err(sender_gone()),
            }
        }
        Ok(())
    }

    /// Memory mode: queue a row for the sender thread (see the module doc
    /// for what happens when the backlog is full).
    fn write_row(&mut self, record: &Record) -> io::Result<()> {
        self.send_pending_gaps()?;
        let tx = self.tx.as_ref().ok_or_else(sender_gone)?;
        let mut row = match tx.try_send(encode_record(record)?) {
            Ok(()) => {
                if let Some(run) = self.skipped.take() {
                    let gap = run.into_gap("ClickHouse backlog full");
                    self.pending_gaps.push(encode_record(&gap)?);
                    self.send_pending_gaps()?;
                }
                self.set_backlog_full(false);
                return Ok(());
            }
            Err(TrySendError::Full(row)) => row,
            Err(TrySendError::Disconnected(_)) => return Err(sender_gone()),
        };
        let waiting_since = Instant::now();
        loop {
            // Behind but healthy: wait (back-pressure). Failing or
            // stalled: the failure policy applies.
            if self.backlog_full || self.shared.stalled(waiting_since, self.stall_timeout) {
                self.set_backlog_full(true);
                if self.gate.policy() == FailurePolicy::FailOpen {
                    self.gate.count_dropped(1);
                    SkippedRun::note(&mut self.skipped, record);
                    return Ok(());
                }
            }
            std::thread::sleep(BACKLOG_RETRY);
            let tx = self.tx.as_ref().ok_or_else(sender_gone)?;
            row = match tx.try_send(row) {
                Ok(()) => {
                    self.set_backlog_full(false);
                    return Ok(());
                }
                Err(TrySendError::Full(row)) => row,
                Err(TrySendError::Disconnected(_)) => return Err(sender_gone()),
            };
            if self.gate.is_stopping() {
                self.shared.stats.rows_lost.fetch_add(1, Ordering::Relaxed);
                return Err(io::Error::other(
                    "stopping with the ClickHouse backlog full: record not delivered (no spool)",
                ));
            }
        }
    }

    pub fn stats(&self) -> &ClickHouseStats {
        &self.shared.stats
    }

    /// A handle on the counters that outlives the sink (for `/metrics`).
    pub fn stats_handle(&self) -> Arc<ClickHouseStats> {
        self.shared.stats.clone()
    }
}

fn sender_gone() -> io::Error {
    io::Error::other("the ClickHouse sender thread has stopped")
}

impl AuditSink for ClickHouseSink {
    fn name(&self) -> String {
        format!("clickhouse:{}", self.url)
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        match &mut self.spool {
            Some(spool) => spool.write(record),
            None => self.write_row(record),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Batching is time-driven in the sender thread; the spool is made
        // durable here, once per writer round (group commit).
        if let Some(spool) = &mut self.spool {
            spool.flush()?;
        } else {
            if let Some(run) = self.skipped.take() {
                let gap = run.into_gap("ClickHouse backlog full");
                self.pending_gaps.push(encode_record(&gap)?);
            }
            self.send_pending_gaps()?;
        }
        match &self.thread {
            Some(t) if !t.is_finished() => Ok(()),
            _ => Err(sender_gone()),
        }
    }
}

impl Drop for ClickHouseSink {
    /// Sends what is buffered (retrying for up to `SHUTDOWN_GRACE`), then
    /// stops the sender thread.
    fn drop(&mut self) {
        let grace = if self.spool.is_some() {
            SPOOL_SHUTDOWN_GRACE
        } else {
            SHUTDOWN_GRACE
        };
        *self
            .shared
            .give_up_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + grace);
        if let Some(mut spool) = self.spool.take() {
            if let Err(e) = spool.close() {
                tracing::error!(error = %e, "spool close failed");
            }
        }
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("ClickHouse sender thread panicked");
            }
        }
        let s = &self.shared.stats;
        tracing::info!(
            batches_sent = s.batches_sent.load(Ordering::Relaxed),
            batches_failed = s.batches_failed.load(Ordering::Relaxed),
            rows_sent = s.rows_sent.load(Ordering::Relaxed),
            rows_lost = s.rows_lost.load(Ordering::Relaxed),
            "ClickHouse sink stopped"
        );
    }
}
