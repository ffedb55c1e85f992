//! The decoding consumer (`cdc.enabled`): a tokio task that `Server` starts
//! and stops, which reads the slot's pgoutput stream (protocol 1: whole
//! transactions after they commit; `messages` for the markers) and writes
//! one `changes` record per changed row, attributed by the signed marker a
//! pgtrail session left in the transaction.
//!
//! - `buffer`: a transaction's changes until its Commit, spilled to a
//!   temporary file past 10,000 changes or 8 MiB.
//! - `shape`: decoded rows into `ChangeEvent`s (text values, NULL apart
//!   from absent, redaction, truncation).
//! - `attribution`: markers verified, forged ones flagged.
//! - `position`: the durable position that makes a replay after a crash
//!   write nothing twice.
//! - `run`: one connection: decode, hand over, confirm once durable.
//! - `stats`: the counters `/metrics` reads.
//!
//! A dropped connection is retried with backoff (1 s doubling to 30 s). A
//! slot that is missing or was invalidated is never recreated: it is
//! logged as an ERROR, counted, and told once in a `gaps` record (changes
//! made meanwhile are lost to the trail), then looked for again every
//! minute, until a person runs `pgtrail cdc setup --apply`.

mod attribution;
pub mod buffer;
mod position;
mod run;
mod shape;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::audit::event::AuditEvent;
use crate::audit::AuditSender;
use crate::cdc::marker::MarkerSigner;
use crate::cdc::replication::{
    ReplicationClient, ReplicationConfig, ReplicationError, ServerErrorKind, StartOptions,
};
use crate::cdc::Lsn;
use crate::config::Config;
pub use buffer::SpillLimits;
pub use position::PositionFile;
pub use stats::CdcStats;

/// What every connection of the consumer uses.
pub(crate) struct Shared {
    audit: AuditSender,
    signer: Arc<MarkerSigner>,
    shaper: shape::Shaper,
    stats: Arc<CdcStats>,
    limits: SpillLimits,
    spill_dir: PathBuf,
}

/// Why a connection ended.
#[derive(Debug)]
pub enum ConsumerError {
    Replication(ReplicationError),
    /// The stream broke pgoutput's order (a change outside Begin/Commit).
    Protocol(&'static str),
    Shape(crate::cdc::relation::ColumnCountMismatch),
    /// The spill file of a large transaction.
    Spill(std::io::Error),
    Position(std::io::Error),
    /// The writer could not make a transaction's records durable and the
    /// failure policy needs them: decode it again.
    NotDurable,
    Internal(&'static str),
}

impl std::fmt::Display for ConsumerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsumerError::Replication(e) => e.fmt(f),
            ConsumerError::Protocol(what) => write!(f, "replication stream: {what}"),
            ConsumerError::Shape(e) => e.fmt(f),
            ConsumerError::Spill(e) => write!(f, "transaction spill file: {e}"),
            ConsumerError::Position(e) => write!(f, "cdc position file: {e}"),
            ConsumerError::NotDurable => f.write_str("change records not durable"),
            ConsumerError::Internal(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ConsumerError {}

/// How often the consumer tells the server what is durable.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// The running consumer; `stop` ends it.
pub struct ConsumerHandle {
    stop: watch::Sender<bool>,
    /// Answered (or dropped) when the consumer's thread is done.
    done: oneshot::Receiver<()>,
}

impl ConsumerHandle {
    /// Stops decoding, confirms what became durable, and waits for the
    /// consumer's thread.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if self.done.await.is_err() {
            tracing::error!("cdc consumer thread ended without finishing (a panic)");
        }
    }
}

/// Starts the consumer for `config.cdc` (which must be enabled).
pub fn start(
    config: Arc<Config>,
    audit: AuditSender,
    signer: Arc<MarkerSigner>,
    stats: Arc<CdcStats>,
    durable_change: Option<(u64, u32)>,
) -> ConsumerHandle {
    let cdc = &config.cdc;
    let shaper = shape::Shaper::new(
        &cdc.database,
        &cdc.redact_columns,
        cdc.max_value_bytes,
        signer.clone(),
    );
    let spill_dir = spill_dir(&config);
    let shared = Shared {
        audit,
        signer,
        shaper,
        stats,
        limits: SpillLimits::default(),
        spill_dir,
    };
    let (stop, stopped) = watch::channel(false);
    let (finished, done) = oneshot::channel();
    // A thread and runtime of its own: decoding a burst of WAL never
    // stalls the sessions on the relay threads.
    let thread = std::thread::Builder::new()
        .name("pgtrail-cdc".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(serve(config, shared, durable_change, stopped)),
                Err(e) => tracing::error!(error = %e, "cdc: no runtime for the consumer"),
            }
            let _ = finished.send(());
        });
    if let Err(e) = thread {
        tracing::error!(error = %e, "cdc: the consumer's thread did not start");
    }
    ConsumerHandle { stop, done }
}

/// Where large transactions spill: the spool directory, the audit file's
/// directory, or the system's temporary directory.
fn spill_dir(config: &Config) -> PathBuf {
    if let Some(dir) = &config.audit.spool_dir {
        return dir.clone();
    }
    match config.audit.file.as_ref().and_then(|f| f.parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::env::temp_dir(),
    }
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a missing slot is looked for again.
const SLOT_LOST_RETRY: Duration = Duration::from_secs(60);

async fn serve(
    config: Arc<Config>,
    shared: Shared,
    durable_change: Option<(u64, u32)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut position = open_position(&config);
    if let (Some(p), Some(change)) = (position.as_mut(), durable_change) {
        p.trail_holds(change);
    }
    let mut backoff = FIRST_BACKOFF;
    let mut slot_lost_told = false;
    loop {
        let result = connect_and_run(&config, &shared, position.as_mut(), &mut stop).await;
        shared
            .stats
            .connected
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let wait = match result {
            Ok(()) => return,
            Err(e) => {
                if slot_lost(&e) {
                    if !slot_lost_told {
                        slot_lost_told = true;
                        tell_slot_lost(&config, &shared, &e).await;
                    }
                    SLOT_LOST_RETRY
                } else {
                    slot_lost_told = false;
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cdc: replication connection failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            }
        };
        shared
            .stats
            .reconnects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

fn open_position(config: &Config) -> Option<PositionFile> {
    let Some(path) = PositionFile::path_for(config) else {
        tracing::warn!("cdc: no audit.spool_dir or audit.file to keep the decoding position in: after a crash, changes may be recorded twice (ClickHouse's `changes` collapses them)");
        return None;
    };
    match PositionFile::open(&path) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cdc: cannot open the position file: after a crash, changes may be recorded twice");
            None
        }
    }
}

async fn connect_and_run(
    config: &Config,
    shared: &Shared,
    position: Option<&mut PositionFile>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let cdc = &config.cdc;
    let mut rc = ReplicationConfig::new(config.upstream.clone(), &cdc.user, &cdc.database);
    rc.password = Some(cdc.password.0.clone()).filter(|p| !p.is_empty());
    // The slot's confirmed position is what PostgreSQL keeps WAL for and
    // what its lag views show: tell it each second, not each ten.
    rc.status_interval = STATUS_INTERVAL;
    let options = StartOptions {
        slot: cdc.slot.clone(),
        publications: vec![cdc.publication.clone()],
        start: Lsn::INVALID,
        // Protocol 1: the server spills large transactions itself and
        // sends them whole after their commit.
        streaming: false,
        messages: true,
    };
    let open = async {
        let client = ReplicationClient::connect(&rc).await?;
        client.start(&options).await
    };
    // A stop must not wait for a connect timeout.
    let stream = tokio::select! {
        stream = open => stream.map_err(ConsumerError::Replication)?,
        _ = stop.changed() => return Ok(()),
    };
    shared
        .stats
        .connected
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(slot = %cdc.slot, publication = %cdc.publication, "cdc: decoding");
    let conn = run::Connection {
        shared,
        position,
        stream,
    };
    conn.run(stop).await
}

/// The slot is gone (42704 naming a replication slot) or can no longer
/// give changes (55000: invalidated, its WAL removed).
fn slot_lost(e: &ConsumerError) -> bool {
    let ConsumerError::Replication(ReplicationError::Server(s)) = e else {
        return false;
    };
    match s.kind() {
        ServerErrorKind::UndefinedObject => s.message.contains("replication slot"),
        ServerErrorKind::NotInPrerequisiteState => true,
        _ => false,
    }
}

async fn tell_slot_lost(config: &Config, shared: &Shared, e: &ConsumerError) {
    let slot = &config.cdc.slot;
    tracing::error!(slot = %slot, error = %e, "cdc: the replication slot is missing or invalidated: row changes are NOT being recorded; pgtrail never recreates it (changes made before a new slot are lost to the trail): run `pgtrail cdc setup --apply`");
    shared
        .stats
        .slot_lost
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reason = format!(
        "cdc: replication slot {slot:?} is missing or invalidated ({e}): row changes from here until a new slot exists are not recorded"
    );
    shared
        .audit
        .send(AuditEvent::Gap {
            missing_events: 0,
            reason,
        })
        .await;
}
