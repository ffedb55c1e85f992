//! The writer thread: numbers events, turns them into records and hands
//! them to every destination (see `policy`), flushing in rounds (group
//! commit for `before_ack`).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::gate::{AuditGate, Blocked};
use super::policy::Destination;
#[path = "thread_chain.rs"]
mod chain;

use super::waiting::{WaitingChanges, CHANGE_POLL};
use super::{AuditStats, Envelope, Integrity};
use crate::audit::build::RecordBuilder;
use crate::audit::chain::checkpoint::Checkpoints;
use crate::audit::chain::state::{self, ChainStart};
use crate::audit::chain::Chainer;
use crate::audit::event::AuditEvent;
use crate::audit::record::Record;
use crate::audit::sink::AuditSink;

pub(super) struct Writer {
    builder: RecordBuilder,
    destinations: Vec<Destination>,
    stats: Arc<AuditStats>,
    gate: Arc<AuditGate>,
    /// Whether the last write failed, so an outage is logged once, not per record.
    failing: bool,
    /// Of the gate's queue drops, those a gap record has told.
    queue_drops_told: u64,
    /// `before_ack` waiters of this round, answered after its flush.
    acks: Vec<oneshot::Sender<bool>>,
    flush_interval: Duration,
    chainer: Chainer,
    checkpoints: Checkpoints,
    /// Where the chain starts this run, for the start record.
    chain_start: ChainStart,
    /// Where a clean stop leaves the chain's last value.
    chain_state: Option<std::path::PathBuf>,
    config_digest: String,
    /// Row changes waiting for their statement's record (`waiting`).
    waiting_changes: WaitingChanges,
}

const FLUSH_EVERY: usize = 4096;
/// How often sinks are flushed while no events come.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// Pause between drain rounds while events keep coming.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

impl Writer {
    pub(super) fn new(
        builder: RecordBuilder,
        sinks: Vec<Box<dyn AuditSink>>,
        stats: Arc<AuditStats>,
        gate: Arc<AuditGate>,
        flush_interval: Duration,
        integrity: Integrity,
    ) -> Writer {
        let Integrity {
            start,
            checkpoints,
            state_path,
            config_digest,
        } = integrity;
        Writer {
            chainer: Chainer::new(start.value()),
            checkpoints,
            chain_start: start,
            chain_state: state_path,
            config_digest,
            waiting_changes: WaitingChanges::default(),
            builder,
            destinations: sinks.into_iter().map(Destination::new).collect(),
            stats,
            gate,
            failing: false,
            queue_drops_told: 0,
            acks: Vec::new(),
            flush_interval,
        }
    }

    pub(super) fn run(self, rx: mpsc::Receiver<Envelope>) {
        let stats = self.stats.clone();
        // A small runtime of its own gives the writer a timer to batch with.
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt.block_on(self.serve(rx)),
            Err(e) => {
                tracing::error!(error = %e, "audit writer cannot start: no records will be written")
            }
        }
        stats.closed.store(true, Ordering::Relaxed);
    }

    /// Waits for an event, then drains in rounds `BATCH_PAUSE` apart until a
    /// round finds nothing. While the writer pauses, senders queue without
    /// waking it, so under load it wakes once per round, not once per event.
    /// Sinks are flushed when the queue runs empty, when a round has
    /// `before_ack` waiters, and otherwise every `flush_interval`: an fsync
    /// per 2 ms round cost more CPU than encoding the records.
    async fn serve(mut self, mut rx: mpsc::Receiver<Envelope>) {
        let mut open = true;
        while open {
            let tick = if self.waiting_changes.is_empty() {
                IDLE_TICK
            } else {
                CHANGE_POLL
            };
            let first = match tokio::time::timeout(tick, rx.recv()).await {
                Ok(Some(first)) => first,
                Ok(None) => break,
                Err(_) => {
                    self.release_changes(false);
                    // Quiet: let the sinks catch up on their own work (the
                    // spool writes a pending gap record once it has room).
                    self.flush();
                    self.checkpoint_if_due();
                    continue;
                }
            };
            open = self.handle(first);
            let mut flushed_at = Instant::now();
            while open {
                let mut handled = 0usize;
                while let Ok(envelope) = rx.try_recv() {
                    open = self.handle(envelope);
                    handled += 1;
                    if handled.is_multiple_of(FLUSH_EVERY) {
                        self.flush();
                    }
                    if !open {
                        break;
                    }
                }
                self.write_gap();
                self.release_changes(false);
                let waiters = !self.acks.is_empty();
                if handled == 0 || waiters || flushed_at.elapsed() >= self.flush_interval {
                    self.flush();
                    flushed_at = Instant::now();
                }
                self.checkpoint_if_due();
                if handled == 0 {
                    break;
                }
                if waiters {
                    // Sessions wait for this round's fsync: start the next
                    // round now; what arrived during the fsync is its batch.
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(BATCH_PAUSE).await;
                }
            }
        }
        self.write_gap();
        self.close();
    }

    /// Writes one event; `false` once the server has said it is closing.
    fn handle(&mut self, envelope: Envelope) -> bool {
        match envelope {
            Envelope::Event(AuditEvent::Change(change), ack)
                if self.waiting_changes.must_wait(&change, &self.builder) =>
            {
                self.waiting_changes.push(AuditEvent::Change(change), ack);
                true
            }
            Envelope::Event(event, ack) => {
                let statement = matches!(event, AuditEvent::Statement(_));
                self.emit_acked(event, ack);
                if statement {
                    self.release_changes(false);
                }
                true
            }
            Envelope::Close => false,
        }
    }

    fn emit_acked(&mut self, event: AuditEvent, ack: Option<oneshot::Sender<bool>>) {
        let ok = self.emit(event);
        if let Some(ack) = ack {
            if ok {
                self.acks.push(ack);
            } else {
                let _ = ack.send(false);
            }
        }
    }

    /// Numbers the waiting changes whose statement has come, or whose
    /// wait is over (`all`: every one, at the end), in order.
    fn release_changes(&mut self, all: bool) {
        while let Some((event, ack)) = self.waiting_changes.next_ready(&self.builder, all) {
            self.emit_acked(event, ack);
        }
    }

    /// Whether every sink took the record.
    fn emit(&mut self, event: AuditEvent) -> bool {
        let record = self.builder.build(event);
        if let Record::Statement(s) = &record {
            self.stats
                .statements
                .count(&s.class, s.success, s.duration_us);
        }
        self.write_linked(record)
    }

    /// Chains `record` and writes it, then a checkpoint if this record
    /// makes `audit.checkpoint_records`; whether every sink took it.
    fn write_linked(&mut self, mut record: Record) -> bool {
        self.chainer.link(&mut record);
        self.checkpoints.counted();
        let end_seq = record.seq() + 1;
        let ok = self.write(&record, end_seq);
        if self.checkpoints.due_by_records() {
            self.checkpoint();
        }
        ok
    }

    /// The events the full queue did not take since the last gap record.
    fn write_gap(&mut self) {
        let dropped = self.gate.queue_drops();
        let missing = dropped - self.queue_drops_told;
        if missing > 0 {
            self.queue_drops_told = dropped;
            tracing::warn!(
                missing,
                "audit queue full: events were not audited (fail_open)"
            );
            let record = self.builder.gap(missing, "audit queue full (fail_open)");
            self.write_linked(record);
        }
    }

    /// Writes `record` to every destination (see `policy` for what a full
    /// or failing one does); whether all of them took it.
    fn write(&mut self, record: &Record, end_seq: u64) -> bool {
        let mut error = None;
        for dest in &mut self.destinations {
            if let Err(e) = dest.write(record, end_seq, &self.gate, &self.builder) {
                self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
                error.get_or_insert((dest.name(), e));
            }
        }
        if error.is_none() {
            self.stats.written.fetch_add(1, Ordering::Relaxed);
        }
        let ok = error.is_none();
        self.set_failing(error, "write");
        self.keep_told_gaps_outside();
        ok
    }

    /// Records whether the last write or flush failed: logged once per
    /// outage, shown in `/metrics`, and closing the gate (`SinkFailing`).
    fn set_failing(&mut self, error: Option<(String, io::Error)>, what: &str) {
        match (&error, self.failing) {
            (Some((sink, e)), false) => {
                tracing::error!(sink = %sink, error = %e, "audit sink {what} failed")
            }
            (None, true) => tracing::info!("audit sinks are writing again"),
            _ => {}
        }
        self.failing = error.is_some();
        self.stats.failing.store(self.failing, Ordering::Relaxed);
        self.gate.set(Blocked::SinkFailing, self.failing);
    }

    /// Flushes every sink (sinks retry what failed at flush: a full disk
    /// that has room again; no new record may come to clear the failure
    /// while the gate refuses statements), then answers the round's
    /// `before_ack` waiters.
    fn flush(&mut self) {
        let error = self.flush_each(Destination::flush);
        let ok = error.is_none();
        self.set_failing(error, "flush");
        for ack in self.acks.drain(..) {
            let _ = ack.send(ok);
        }
    }

    fn flush_each(
        &mut self,
        flush: fn(&mut Destination, &AuditGate, &RecordBuilder) -> io::Result<()>,
    ) -> Option<(String, io::Error)> {
        let mut error = None;
        for dest in &mut self.destinations {
            if let Err(e) = flush(dest, &self.gate, &self.builder) {
                self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
                error.get_or_insert((dest.name(), e));
            }
        }
        self.keep_told_gaps_outside();
        error
    }

    /// The stop record, a last checkpoint and the last flush (gap records
    /// still owed go past size limits); then, when all of it was written,
    /// where the chain stands, for the next start.
    fn close(&mut self) {
        self.release_changes(true);
        self.write_stop();
        let error = self.flush_each(Destination::close);
        let ok = error.is_none();
        self.set_failing(error, "flush");
        for ack in self.acks.drain(..) {
            let _ = ack.send(ok);
        }
        self.builder.finish();
        if let (true, Some(path)) = (ok, &self.chain_state) {
            let last_seq = self.builder.next_seq() - 1;
            let chain = self.chainer.last();
            if let Err(e) = state::save(path, self.builder.instance_id(), last_seq, &chain) {
                tracing::warn!(file = %path.display(), error = %e, "the chain's last value was not saved: the next start records an unclean stop");
            }
        }
    }
}
