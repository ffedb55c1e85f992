//! The audit path: a bounded channel from every session to one writer
//! thread, which numbers the events, turns them into records and hands them
//! to the sinks.
//!
//! Back-pressure: the channel holds `audit.queue_capacity` events. When it is
//! full, `fail_closed` makes the relay wait (statements slow down, nothing is
//! lost) and `fail_open` lets the relay go on, counting what was not queued;
//! the writer then emits a gap record with that count. A failing sink closes
//! the `AuditGate` (see `gate`).
//!
//! Durability `before_ack`: an event may carry a oneshot that the writer
//! answers once the record is flushed (fsynced) by every sink, after the
//! round's single flush, so one fsync acknowledges every session waiting at
//! that moment (group commit). Such rounds do not pause between them: the
//! fsync itself is the batching window.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::build::RecordBuilder;
use super::event::AuditEvent;
use super::sink::AuditSink;
use crate::config::FailurePolicy;
use gate::AuditGate;
use policy::WhenFull;
use thread::Writer;

pub mod class_stats;
pub mod gate;
pub mod policy;
mod thread;
mod waiting;

/// Counters shared between the senders and the writer.
#[derive(Debug, Default)]
pub struct AuditStats {
    pub written: AtomicU64,
    pub sink_errors: AtomicU64,
    /// Statement records written, by class: successes, failures and a
    /// duration histogram; counted by the writer after classification.
    pub statements: class_stats::ClassStats,
    /// Whether the last write to the sinks failed.
    pub failing: AtomicBool,
    /// Set when the writer has stopped (or could not start).
    pub closed: AtomicBool,
    /// Checkpoints of the audit chain written (`audit::chain`).
    pub checkpoints: AtomicU64,
    /// The last checkpoint's seq and time (µs since the epoch).
    pub last_checkpoint_seq: AtomicU64,
    pub last_checkpoint_micros: std::sync::atomic::AtomicI64,
    /// Whether the last write to `audit.checkpoint_file` failed.
    pub checkpoint_file_failing: AtomicBool,
}

/// Answered `true` once the record is durable, `false` (or dropped) if it
/// could not be written.
pub type DurableAck = oneshot::Receiver<bool>;

/// What travels on the channel: events, and the server's last word.
pub(super) enum Envelope {
    Event(AuditEvent, Option<oneshot::Sender<bool>>),
    /// Sent once every session is gone: write what is queued, then stop.
    Close,
}

/// The relay's handle on the audit path; cheap to clone.
#[derive(Clone)]
pub struct AuditSender {
    tx: mpsc::Sender<Envelope>,
    stats: Arc<AuditStats>,
    gate: Arc<AuditGate>,
}

impl AuditSender {
    /// Queues an event, waiting for room only under `fail_closed`.
    pub async fn send(&self, event: AuditEvent) {
        self.enqueue(Envelope::Event(event, None)).await;
    }

    /// `send` from code that cannot wait (a reload): on a task of the
    /// current runtime, else blocking this thread.
    pub fn send_soon(&self, event: AuditEvent) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let sender = self.clone();
                runtime.spawn(async move { sender.send(event).await });
            }
            Err(_) => {
                if self.tx.blocking_send(Envelope::Event(event, None)).is_err() {
                    tracing::warn!(
                        "the audit writer has stopped: a lifecycle record was not written"
                    );
                }
            }
        }
    }

    /// Like `send`, and the answer says when the record is durable.
    pub async fn send_durable(&self, event: AuditEvent) -> DurableAck {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Envelope::Event(event, Some(tx))).await;
        rx
    }

    async fn enqueue(&self, envelope: Envelope) {
        let result = match self.gate.policy().when_full() {
            WhenFull::Wait => self.tx.send(envelope).await.map_err(|_| ()),
            WhenFull::Skip => self.tx.try_send(envelope).map_err(|_| ()),
        };
        if result.is_err() {
            self.gate.count_queue_drop();
        }
    }

    /// Waits for a `before_ack` answer: `Err` with why when the record is
    /// not durable and the policy needs it to be (the session must end).
    pub async fn confirm(&self, ack: DurableAck) -> Result<(), &'static str> {
        if ack.await == Ok(true) || !self.gate.policy().needs_the_record() {
            return Ok(());
        }
        Err(self.refusal().unwrap_or("the audit writer failed"))
    }

    pub fn stats(&self) -> &Arc<AuditStats> {
        &self.stats
    }

    pub fn policy(&self) -> FailurePolicy {
        self.gate.policy()
    }

    /// Why new statements must be refused now (`fail_closed` only).
    pub fn refusal(&self) -> Option<&'static str> {
        match self.gate.policy().needs_the_record() {
            true => self.gate.blocked(),
            false => None,
        }
    }

    pub fn gate(&self) -> &Arc<AuditGate> {
        &self.gate
    }

    /// Events waiting in the queue, and the queue's capacity.
    pub fn queue_depth(&self) -> (usize, usize) {
        let max = self.tx.max_capacity();
        (max.saturating_sub(self.tx.capacity()), max)
    }

    /// Tells the writer to finish; events sent after this are not written.
    pub async fn close(&self) {
        // A writer waiting for spool room must stop waiting to see Close.
        self.gate.stop();
        let _ = self.tx.send(Envelope::Close).await;
    }
}

/// The writer thread; `join` waits until every sender is gone and the queue
/// is drained.
pub struct AuditWorker {
    thread: std::thread::JoinHandle<()>,
}

impl AuditWorker {
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("audit writer thread panicked");
        }
    }
}

/// How the writer runs; from `[audit]`.
pub struct WriterOptions {
    pub capacity: usize,
    /// While events keep coming, sinks are flushed (and fsynced) at most
    /// this often, unless a `before_ack` waiter needs it sooner.
    pub flush_interval: Duration,
    pub policy: FailurePolicy,
    /// Shared with the sinks that can close it (the spool).
    pub gate: Arc<AuditGate>,
    /// What the start found missing, written before any event.
    pub start_gaps: Vec<StartGap>,
    pub integrity: Integrity,
}

/// The chain's start, checkpoints and the writer's part in tamper evidence.
pub struct Integrity {
    pub start: crate::audit::chain::state::ChainStart,
    pub checkpoints: crate::audit::chain::checkpoint::Checkpoints,
    /// Where a clean stop leaves the chain's last value (`chain::state`).
    pub state_path: Option<std::path::PathBuf>,
    /// The configuration's digest, for lifecycle records.
    pub config_digest: String,
}

impl Integrity {
    /// A new instance's chain with unsigned checkpoints kept nowhere else
    /// (embedders and tests).
    pub fn unsigned() -> Integrity {
        Integrity {
            start: crate::audit::chain::state::ChainStart::new_instance(),
            checkpoints: crate::audit::chain::checkpoint::Checkpoints::unsigned(),
            state_path: None,
            config_digest: String::new(),
        }
    }
}

/// Records missing since the last run, found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartGap {
    /// Damage (a corrupt spool frame): `missing_events` records, why.
    Lost { missing_events: u64, reason: String },
    /// Seqs the last run reserved that no kept record holds.
    Unused { first_seq: u64, count: u64 },
}

/// Starts the writer thread.
pub fn start(
    options: WriterOptions,
    builder: RecordBuilder,
    sinks: Vec<Box<dyn AuditSink>>,
) -> io::Result<(AuditSender, AuditWorker)> {
    let (tx, rx) = mpsc::channel(options.capacity);
    options.gate.set_policy(options.policy);
    let stats = Arc::new(AuditStats::default());
    let mut writer = Writer::new(
        builder,
        sinks,
        stats.clone(),
        options.gate.clone(),
        options.flush_interval,
        options.integrity,
    );
    writer.write_start_gaps(options.start_gaps);
    let thread = std::thread::Builder::new()
        .name("pgtrail-audit".into())
        .spawn(move || writer.run(rx))?;
    let sender = AuditSender {
        tx,
        stats,
        gate: options.gate,
    };
    Ok((sender, AuditWorker { thread }))
}

#[cfg(test)]
mod tests;
