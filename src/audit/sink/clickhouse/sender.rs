//! The ClickHouse sender thread: forms batches (rows, bytes or time,
//! whichever comes first), sends them, retries (see `errors` for how
//! failures are told apart), and in spooled mode moves the spool's marker
//! after each acknowledged batch. A spooled frame this build cannot read
//! is sent as a gap row telling it (`spool_rows::Undecodable`), counted in
//! `rows_undecodable`.
//!
//! Idempotence: the tables deduplicate on `(instance_id, seq)` when they
//! merge. On servers with `insert_deduplication_token` (22.2+) each INSERT
//! also carries a token made of the instance, the table and the seq range
//! of its rows, so a retried batch whose first attempt was in fact stored
//! (the answer was lost) is dropped by the server at once, within the
//! tables' deduplication window.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickhouse::Client;

use super::batch::Batch;
use super::errors::SendError;
use super::retry::{self, Retry};
use super::rowbinary::{row_header, EncodedRow, Table};
use super::schema::{self, SchemaOptions, ServerVersion};
use super::sink::Shared;
use super::spool_rows::{self, Undecodable};
use crate::audit::record::micros_since_epoch;
use crate::audit::spool::SpoolReader;
use crate::config::ClickHouseConfig;

/// How long an idle memory-mode sender sleeps between looks at the channel
/// (a row wakes it at once).
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// How long an idle spool reader waits before it looks at the spool again
/// (the writer's fsync wakes it sooner), and the pause after a failed read.
const SPOOL_POLL: Duration = Duration::from_secs(1);
/// Records taken from the spool per read, so a batch overshoots its byte
/// limit by little.
const SPOOL_READ_CHUNK: usize = 1024;

/// The sender thread's state.
pub(super) struct Sender {
    /// No database selected (DDL names it).
    admin: Client,
    client: Client,
    options: SchemaOptions,
    batch_wait: Duration,
    /// Known once the schema is in place; cleared after a failed send.
    version: Option<ServerVersion>,
    shared: Arc<Shared>,
    batch: Batch,
    retry: Retry,
    /// Masked (no password).
    url: String,
    /// Records come from the spool: giving up at shutdown loses nothing.
    spooled: bool,
}

impl Sender {
    /// `admin` has no database selected, `client` inserts into
    /// `config.database`; `url` is masked here before it is logged.
    pub fn new(
        admin: Client,
        client: Client,
        config: &ClickHouseConfig,
        shared: Arc<Shared>,
        url: &str,
        spooled: bool,
    ) -> Sender {
        Sender {
            admin,
            client,
            options: config.schema_options(),
            batch_wait: Duration::from_millis(config.batch_ms.max(1)),
            version: None,
            shared,
            batch: Batch::new(config.batch_rows.max(1), config.batch_bytes.max(1)),
            retry: Retry::default(),
            url: crate::secrets::masked_url(url),
            spooled,
        }
    }

    pub fn run(mut self, rx: Receiver<EncodedRow>, rt: tokio::runtime::Runtime) {
        if let Err(e) = rt.block_on(self.ensure_schema()) {
            self.shared.mark_failed();
            tracing::error!(url = %self.url, error = %e, "ClickHouse is not ready; records are held and retried");
        }
        let mut first_row_at: Option<Instant> = None;
        loop {
            let wait = first_row_at.map_or(IDLE_WAIT, |t| {
                (t + self.batch_wait).saturating_duration_since(Instant::now())
            });
            match rx.recv_timeout(wait) {
                Ok(row) => {
                    let at = *first_row_at.get_or_insert_with(Instant::now);
                    self.push(row.table, &row.row);
                    if self.batch.is_full() || at.elapsed() >= self.batch_wait {
                        self.send(&rt);
                        first_row_at = None;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.batch.len() > 0 {
                        self.send(&rt);
                    }
                    first_row_at = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if self.batch.len() > 0 {
                        self.send(&rt);
                    }
                    return;
                }
            }
        }
    }

    /// Spooled mode: tails the spool, sends batches, moves the marker after
    /// each acknowledged one. Ends when the writer has closed the spool and
    /// everything is sent, or when shutdown gives up (rest stays spooled).
    /// `instance_id` is the spool's: the gap rows for frames this build
    /// cannot read carry it.
    pub fn run_spooled(
        mut self,
        mut reader: SpoolReader,
        instance_id: &str,
        rt: tokio::runtime::Runtime,
    ) {
        if let Err(e) = rt.block_on(self.ensure_schema()) {
            tracing::error!(url = %self.url, error = %e, "ClickHouse is not ready; records stay in the spool and are retried");
        }
        let mut first_row_at: Option<Instant> = None;
        let mut last_seq = 0u64;
        let mut records = Vec::new();
        loop {
            let room = self
                .batch
                .max_rows()
                .saturating_sub(self.batch.len())
                .clamp(1, SPOOL_READ_CHUNK);
            let n = match reader.read(room, &mut records) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "spool read failed; retrying (records are not skipped)");
                    std::thread::sleep(SPOOL_POLL);
                    continue;
                }
            };
            for (seq, frame) in records.drain(..) {
                let row = match spool_rows::decode(seq, frame) {
                    Ok(row) => row,
                    Err(bad) => match self.undecodable(&bad, instance_id) {
                        Some(row) => row,
                        None => continue,
                    },
                };
                first_row_at.get_or_insert_with(Instant::now);
                self.push(row.table, &row.row);
                last_seq = seq;
            }
            let at_end = n == 0 && reader.is_closed();
            let due = self.batch.is_full()
                || first_row_at.is_some_and(|t| t.elapsed() >= self.batch_wait)
                || (at_end && self.batch.len() > 0);
            if due {
                if !self.send(&rt) {
                    return;
                }
                first_row_at = None;
                if let Err(e) = reader.ack(last_seq) {
                    tracing::error!(error = %e, seq = last_seq, "spool: moving the acked marker failed; these records will be sent again (deduplicated)");
                }
                continue;
            }
            if at_end {
                return;
            }
            if n == 0 {
                if self.batch.len() == 0 {
                    // Caught up: nothing waits for ClickHouse.
                    let oldest = &self.shared.stats.oldest_unsent_micros;
                    oldest.store(0, Ordering::Relaxed);
                }
                let wait = first_row_at.map_or(SPOOL_POLL, |t| {
                    (t + self.batch_wait).saturating_duration_since(Instant::now())
                });
                reader.wait(wait);
            }
        }
    }

    /// A spooled frame this build cannot read: counted, logged, and told by
    /// the gap row returned, sent in its place.
    fn undecodable(&self, bad: &Undecodable, instance_id: &str) -> Option<EncodedRow> {
        let stats = &self.shared.stats;
        stats.rows_undecodable.fetch_add(1, Ordering::Relaxed);
        let now = micros_since_epoch(std::time::SystemTime::now());
        match bad.gap_row(instance_id, uuid::Uuid::now_v7(), now) {
            Ok(row) => {
                tracing::error!(seq = bad.seq, tag = bad.tag, reason = %bad, "spool frame not readable as a ClickHouse row: a gap row is sent in its place");
                Some(row)
            }
            Err(e) => {
                tracing::error!(seq = bad.seq, tag = bad.tag, reason = %bad, error = %e, "spool frame not readable as a ClickHouse row, and its gap row could not be made: its record is not delivered");
                None
            }
        }
    }

    fn push(&mut self, table: Table, row: &[u8]) {
        if self.batch.len() == 0 {
            // Rows reach the batch in seq order: the first is the oldest.
            let time = row_header(row).map_or(0, |h| h.2);
            let at = u64::try_from(time).unwrap_or(0).max(1);
            let oldest = &self.shared.stats.oldest_unsent_micros;
            oldest.store(at, Ordering::Relaxed);
        }
        self.batch.push(table, row);
    }

    /// Sends the batch, retrying until it is acknowledged (`true`) or,
    /// after the sink was dropped, until the shutdown grace has passed.
    fn send(&mut self, rt: &tokio::runtime::Runtime) -> bool {
        let stats = &self.shared.clone();
        let stats = &stats.stats;
        loop {
            let rows = self.batch.len() as u64;
            let started = Instant::now();
            match rt.block_on(self.try_send()) {
                Ok(()) => {
                    self.shared.mark_sent();
                    stats.insert_latency.observe(started.elapsed());
                    if !self.spooled {
                        // Rows still in the channel are newer than any
                        // sent; the spooled loop resets when caught up.
                        stats.oldest_unsent_micros.store(0, Ordering::Relaxed);
                    }
                    stats.batches_sent.fetch_add(1, Ordering::Relaxed);
                    stats.rows_sent.fetch_add(rows, Ordering::Relaxed);
                    let failures = self.retry.succeeded();
                    if failures > 0 {
                        tracing::info!(failed_attempts = failures, "ClickHouse delivery resumed");
                    }
                    return true;
                }
                Err(e) => {
                    self.shared.mark_failed();
                    stats.batches_failed.fetch_add(1, Ordering::Relaxed);
                    self.retry.failed();
                    self.version = None;
                    self.log_failure(&e);
                    if self
                        .shared
                        .give_up_at()
                        .is_some_and(|t| Instant::now() >= t)
                    {
                        let lost = self.batch.len() as u64;
                        if self.spooled {
                            tracing::warn!(
                                rows = lost,
                                "pgtrail is stopping and ClickHouse still fails: the undelivered rows stay in the spool and are sent at the next start"
                            );
                            return false;
                        }
                        stats.rows_lost.fetch_add(lost, Ordering::Relaxed);
                        tracing::error!(
                            rows = lost,
                            "pgtrail is stopping and ClickHouse still fails: these audit rows were NOT delivered (they are in audit.file if it is set; set audit.spool_dir to keep them across restarts)"
                        );
                        self.batch.clear();
                        return false;
                    }
                    if e.permanent {
                        stats.batches_rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    let shared = &self.shared;
                    retry::sleep(self.retry.pause(e.permanent), || {
                        shared.give_up_at().is_some()
                    });
                }
            }
        }
    }

    /// Retryable errors: the first, then every 20th, at error level;
    /// errors that need a person: every one.
    fn log_failure(&self, e: &SendError) {
        let (rows, attempts) = (self.batch.len(), self.retry.failures());
        if e.permanent {
            tracing::error!(url = %self.url, error = %e, code = ?e.code, rows, attempts, "ClickHouse rejected the batch for a reason that needs a person (schema, data, credentials); the batch is kept and retried every 30 s");
        } else if attempts == 1 || attempts.is_multiple_of(20) {
            tracing::error!(url = %self.url, error = %e, code = ?e.code, rows, attempts, "ClickHouse insert failed; the batch is kept and retried");
        } else {
            tracing::debug!(error = %e, "ClickHouse insert failed again");
        }
    }

    /// One attempt: the schema first if it is not known to be in place,
    /// then the batch (see `Batch::insert`).
    async fn try_send(&mut self) -> Result<(), SendError> {
        let version = match self.version {
            Some(v) => v,
            None => self.ensure_schema().await?,
        };
        self.batch.insert(&self.client, version).await
    }

    /// Reads the server version and creates what is missing (see
    /// `schema::ensure`).
    async fn ensure_schema(&mut self) -> Result<ServerVersion, SendError> {
        let (version, text) = schema::ensure(&self.admin, &self.options).await?;
        if self.version.is_none() && self.retry.failures() == 0 {
            tracing::info!(
                version = %text,
                modern = version.is_modern(),
                database = %self.options.database,
                schema_version = schema::SCHEMA_VERSION,
                "ClickHouse schema ready"
            );
        }
        self.version = Some(version);
        Ok(version)
    }
}
