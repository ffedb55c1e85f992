//! The ClickHouse sinks: records go into `statements`, `sessions` and
//! `gaps`, sent with the `clickhouse` crate (HTTP, RowBinary, LZ4) by a
//! sender thread (`SenderThread`, started here for both). Two sinks feed
//! it: `ClickHouseSink` through memory (`memory.rs`) and
//! `SpooledClickHouseSink` through the durable spool (`spooled.rs`).
//!
//! Threads and back-pressure: `offer()` runs on the audit writer thread,
//! which is inside its own tokio runtime, so it cannot block on network I/O
//! there. It converts the record to a row and puts it on a bounded channel
//! (`MAX_PENDING_BATCHES * batch_rows` rows) to a dedicated sender thread,
//! which owns a current-thread runtime and the HTTP client. The sender
//! thread forms batches (`batch_rows` rows, or `batch_ms` after the first
//! row, whichever comes first; its own clock, so a quiet proxy still
//! delivers its last rows on time) and sends them. When the channel is
//! full but ClickHouse is healthy (no failed insert since the last
//! acknowledged one, and an acknowledgement within
//! `audit.clickhouse_stall_timeout_ms`), `offer()` just waits: the audit
//! queue fills behind it and statements wait (back-pressure), under either
//! policy. When ClickHouse fails or stalls with the channel full, that
//! moment closes the `AuditGate` (`ClickHouseBehind`), is logged once per
//! episode, and the record is reported not taken (`Offer::Full`):
//! `audit::policy` waits for room (the gate refuses new statements
//! meanwhile; at shutdown it stops waiting and the row is counted lost) or
//! skips it, told by a gap row once there is room.
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
//! With `audit.spool_dir` (`SpooledClickHouseSink`), there is no channel: `offer()`
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
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clickhouse::{Client, Compression};

use super::rowbinary::EncodedRow;
use super::sender::Sender;
use crate::audit::spool::SpoolReader;
use crate::config::ClickHouseConfig;

pub use super::memory::ClickHouseSink;
pub use super::spooled::SpooledClickHouseSink;

/// Batches the channel may hold beyond the one being sent.
const MAX_PENDING_BATCHES: usize = 4;

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
    /// Spooled frames this build could not read (an unknown tag, JSON that
    /// does not parse): each was sent as a gap row telling it.
    pub rows_undecodable: AtomicU64,
    /// Times `offer()` found the in-memory backlog full and had to wait.
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
    pub(super) fn stalled(&self, waiting_since: Instant, timeout: Duration) -> bool {
        let (sent_at, failed) = *self.health.lock().unwrap_or_else(|p| p.into_inner());
        failed || sent_at.max(waiting_since).elapsed() >= timeout
    }

    pub fn give_up_at(&self) -> Option<Instant> {
        *self.give_up_at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sender thread, as a sink holds it.
pub(super) struct SenderThread {
    /// Masked.
    pub url: String,
    thread: Option<JoinHandle<()>>,
    pub shared: Arc<Shared>,
}

impl SenderThread {
    /// Starts the thread: it tails `spool` when given (its reader and the
    /// instance id of its records), else takes rows from the returned
    /// channel (`MAX_PENDING_BATCHES * batch_rows`). The
    /// server is contacted there (version, schema), so pgtrail starts even
    /// when ClickHouse is down.
    pub fn start(
        url: &str,
        config: &ClickHouseConfig,
        spool: Option<(SpoolReader, String)>,
    ) -> io::Result<(SenderThread, SyncSender<EncodedRow>, usize)> {
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
        let spooled = spool.is_some();
        let sender = Sender::new(admin, client, config, shared.clone(), url, spooled);
        let thread = std::thread::Builder::new()
            .name("pgtrail-clickhouse".into())
            .spawn(move || match spool {
                Some((reader, instance_id)) => sender.run_spooled(reader, &instance_id, runtime),
                None => sender.run(rx, runtime),
            })?;
        let handle = SenderThread {
            url: crate::secrets::masked_url(url),
            thread: Some(thread),
            shared,
        };
        Ok((handle, tx, capacity))
    }

    /// `Err` once the thread has stopped.
    pub fn alive(&self) -> io::Result<()> {
        match &self.thread {
            Some(t) if !t.is_finished() => Ok(()),
            _ => Err(sender_gone()),
        }
    }

    /// Lets the thread retry for `grace` more, then waits for it to end
    /// (the caller has closed its input first).
    pub fn stop(&mut self, grace: Duration) {
        *self
            .shared
            .give_up_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + grace);
    }

    /// Waits for the thread to end, then logs what it delivered.
    pub fn join(&mut self) {
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
            rows_undecodable = s.rows_undecodable.load(Ordering::Relaxed),
            "ClickHouse sink stopped"
        );
    }
}

pub(super) fn sender_gone() -> io::Error {
    io::Error::other("the ClickHouse sender thread has stopped")
}
