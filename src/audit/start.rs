//! Assembling the audit path from `[audit]`: the sinks (audit file,
//! ClickHouse through memory or the spool), where the seq continues, the
//! instance id, the record builder and the writer thread.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::build::{Classifier, RecordBuilder};
use super::chain::{
    self,
    checkpoint::{CheckpointOptions, Checkpoints},
    signing::SigningKey,
};
use super::disk::seqmark::{self, SeqMark};
use super::sink::clickhouse::{spool_rows, ClickHouseSink, ClickHouseStats, SpooledClickHouseSink};
use super::sink::jsonl::{FileSync, JsonlSink};
use super::sink::AuditSink;
use super::spool::{self, Spool, SpoolOptions, SpoolReader, SpoolUsage, SpoolWriter};
use super::writer::{self, AuditSender, AuditWorker, StartGap};
use super::AuditGate;
use crate::config::{AuditConfig, Config, Durability};

/// What could not be opened or started, with its setting.
#[derive(Debug)]
pub enum AuditStartError {
    File {
        path: PathBuf,
        source: io::Error,
    },
    /// The audit file's seq mark (a fixed `instance_id` without a spool).
    FileSeqMark {
        path: PathBuf,
        source: io::Error,
    },
    Spool {
        dir: PathBuf,
        source: io::Error,
    },
    /// `url` is masked.
    ClickHouse {
        url: String,
        source: io::Error,
    },
    Writer(io::Error),
    /// `audit.signing_key_file`.
    SigningKey(crate::audit::chain::signing::KeyError),
    /// `audit.checkpoint_file`.
    CheckpointFile(io::Error),
}

impl fmt::Display for AuditStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, source } => write!(f, "audit.file {}: {source}", path.display()),
            Self::FileSeqMark { path, source } => {
                write!(f, "audit.file {}: seq mark: {source}", path.display())
            }
            Self::Spool { dir, source } => write!(f, "audit.spool_dir {}: {source}", dir.display()),
            Self::ClickHouse { url, source } => write!(f, "audit.clickhouse_url {url}: {source}"),
            Self::Writer(source) => write!(f, "audit writer: {source}"),
            Self::SigningKey(e) => write!(f, "audit.signing_key_file {e}"),
            Self::CheckpointFile(source) => write!(f, "audit.checkpoint_file {source}"),
        }
    }
}

impl std::error::Error for AuditStartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::File { source, .. }
            | Self::FileSeqMark { source, .. }
            | Self::Spool { source, .. }
            | Self::ClickHouse { source, .. }
            | Self::Writer(source)
            | Self::CheckpointFile(source) => Some(source),
            Self::SigningKey(e) => Some(e),
        }
    }
}

/// What `/metrics` reads of the audit path: the instance id its records
/// carry, and the sinks' counters.
#[derive(Default)]
pub struct AuditGauges {
    pub instance_id: String,
    pub clickhouse: Option<Arc<ClickHouseStats>>,
    pub spool: Option<SpoolUsage>,
    /// `(commit_lsn, change_index)` of the last row change every durable
    /// destination holds (the least of theirs): the decoding consumer does
    /// not record again what a crash made it decode twice.
    pub durable_change: Option<(u64, u32)>,
}

/// Where the record sequence continues, and what start found missing.
struct SeqStart {
    next_seq: u64,
    mark: Option<SeqMark>,
    /// Seqs reserved by the previous run that no kept record holds.
    unused: Option<(u64, u64)>,
    /// Spool corruption found at start.
    gaps: Vec<spool::Gap>,
    /// The spool's instance id, when none is configured.
    spool_instance_id: Option<String>,
    /// The instance, seq and chain value of the last record the spool holds.
    spool_last_chain: Option<(String, u64, crate::audit::chain::ChainValue)>,
    /// `(commit_lsn, change_index)` of the last row change the spool holds.
    spool_last_change: Option<(u64, u32)>,
}

impl Default for SeqStart {
    fn default() -> Self {
        SeqStart {
            next_seq: 1,
            mark: None,
            unused: None,
            gaps: Vec::new(),
            spool_instance_id: None,
            spool_last_chain: None,
            spool_last_change: None,
        }
    }
}

/// Opens the configured sinks after `sinks` (an embedder's), and starts
/// the writer thread.
pub fn start(
    config: &Config,
    classifier: Arc<dyn Classifier>,
    mut sinks: Vec<Box<dyn AuditSink>>,
    columns: crate::audit::build::ColumnPolicy,
) -> Result<(AuditSender, AuditWorker, AuditGauges), AuditStartError> {
    let audit = &config.audit;
    let gate = Arc::new(AuditGate::default());
    if let Some(path) = &audit.file {
        sinks.push(file_sink(
            audit,
            path,
            &gate,
            config.cdc.enabled && config.cdc.consume,
        )?);
    }
    let mut gauges = AuditGauges::default();
    let mut seq = SeqStart::default();
    if let Some(url) = &audit.clickhouse_url {
        let (sink, start) = clickhouse_sink(audit, url, &gate, &mut gauges)?;
        sinks.push(sink);
        seq = start;
    } else if let Some(dir) = &audit.spool_dir {
        tracing::warn!(dir = %dir.display(), "audit.spool_dir is set but audit.clickhouse_url is not: the spool is not used");
    }
    if sinks.is_empty() {
        tracing::warn!("no audit destination configured (audit.file, audit.clickhouse_url): audit records are discarded");
    }
    if seq.mark.is_none() && audit.instance_id.is_some() {
        if let Some(path) = &audit.file {
            seq = file_seq_start(path)?;
        }
    }
    let instance_id = audit
        .instance_id
        .clone()
        .or(seq.spool_instance_id.take())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    gauges.instance_id = instance_id.clone();
    let mut builder = RecordBuilder::new(instance_id, audit.max_statement_bytes, classifier)
        .starting_at(seq.next_seq)
        .with_columns(columns);
    if config.cdc.enabled && config.cdc.consume {
        builder = builder.with_statement_seqs(STATEMENT_SEQS_KEPT);
    }
    if let Some(mark) = seq.mark.take() {
        builder = builder.reserving(mark);
    }
    let integrity = integrity(config, &builder, seq.spool_last_chain.take())?;
    gauges.durable_change = durable_change(audit, &seq);
    let options = writer::WriterOptions {
        capacity: audit.queue_capacity,
        flush_interval: Duration::from_millis(audit.flush_interval_ms),
        policy: audit.failure_policy,
        gate,
        start_gaps: start_gaps(seq),
        integrity,
    };
    let (sender, worker) =
        writer::start(options, builder, sinks).map_err(AuditStartError::Writer)?;
    Ok((sender, worker, gauges))
}

/// Where the chain continues, the checkpoints' key and outside copy.
fn integrity(
    config: &Config,
    builder: &RecordBuilder,
    spool_last: Option<(String, u64, chain::ChainValue)>,
) -> Result<writer::Integrity, AuditStartError> {
    let spool_last = spool_last
        .filter(|(instance, _, _)| instance == builder.instance_id())
        .map(|(_, seq, chain)| (seq, chain));
    let audit = &config.audit;
    let state_path = chain::state::path(audit.spool_dir.as_deref(), audit.file.as_deref());
    let start = chain::state::start(
        state_path.as_deref(),
        audit.file.as_deref(),
        builder.instance_id(),
        builder.next_seq(),
        spool_last,
    );
    let key = match &audit.signing_key_file {
        Some(path) => Some(SigningKey::load(path).map_err(AuditStartError::SigningKey)?),
        None => {
            tracing::warn!("audit.signing_key_file is not set: checkpoints are not signed, so whoever can rewrite the trail can also rewrite its checkpoints (pgtrail keygen makes a key)");
            None
        }
    };
    let file = audit
        .checkpoint_file
        .clone()
        .or_else(|| match (&audit.spool_dir, &audit.file) {
            (Some(dir), _) => Some(dir.join("checkpoints.jsonl")),
            (None, Some(f)) => {
                let mut name = f.as_os_str().to_owned();
                name.push(".checkpoints");
                Some(PathBuf::from(name))
            }
            (None, None) => None,
        });
    let checkpoints = Checkpoints::new(CheckpointOptions {
        every_records: audit.checkpoint_records.max(1),
        every: Duration::from_millis(audit.checkpoint_interval_ms),
        key,
        file,
    })
    .map_err(AuditStartError::CheckpointFile)?;
    Ok(writer::Integrity {
        start,
        checkpoints,
        state_path,
        config_digest: crate::secrets::config_digest(config),
    })
}

/// The last row change every durable destination holds: the spool's and
/// the audit file's, the lesser; unknown if either does not say (a change
/// one of them lacks must be recorded again, for it).
fn durable_change(audit: &AuditConfig, seq: &SeqStart) -> Option<(u64, u32)> {
    let spool = (audit.clickhouse_url.is_some() && audit.spool_dir.is_some())
        .then_some(seq.spool_last_change);
    let file = audit
        .file
        .as_ref()
        .map(|f| super::sink::jsonl::last_change(f));
    match (spool, file) {
        (Some(a), Some(b)) => a.zip(b).map(|(a, b)| a.min(b)),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => None,
    }
}

/// Statement seqs kept for changes' markers: about 20 MB, half a minute
/// at 10,000 statements a second, where the consumer normally runs well
/// under a second behind.
const STATEMENT_SEQS_KEPT: usize = 300_000;

fn file_sink(
    audit: &AuditConfig,
    path: &Path,
    gate: &Arc<AuditGate>,
    cdc_enabled: bool,
) -> Result<Box<dyn AuditSink>, AuditStartError> {
    // before_ack without a spool makes the file the durable copy; so does
    // the decoding consumer for its row changes, as it confirms its slot
    // only once they are durable.
    let sync = match (audit.spool_dir.is_some(), audit.durability, cdc_enabled) {
        (true, _, _) => FileSync::Never,
        (false, Durability::BeforeAck, _) => FileSync::EachWrite,
        (false, _, true) => FileSync::Changes,
        (false, _, false) => FileSync::Never,
    };
    let mut sink = JsonlSink::open(path, sync, audit.file_rotate_bytes).map_err(|source| {
        AuditStartError::File {
            path: path.to_path_buf(),
            source,
        }
    })?;
    sink.guard(gate.clone());
    Ok(Box::new(sink))
}

/// The ClickHouse sink: through the spool when `audit.spool_dir` is set
/// (which also says where the seq continues), else through memory.
fn clickhouse_sink(
    audit: &AuditConfig,
    url: &str,
    gate: &Arc<AuditGate>,
    gauges: &mut AuditGauges,
) -> Result<(Box<dyn AuditSink>, SeqStart), AuditStartError> {
    let fail = |source| AuditStartError::ClickHouse {
        url: crate::secrets::masked_url(url),
        source,
    };
    let Some(dir) = &audit.spool_dir else {
        tracing::warn!("audit.clickhouse_url without audit.spool_dir: records for ClickHouse wait in memory and a crash loses them; set audit.spool_dir");
        let mut sink = ClickHouseSink::start(url, &audit.clickhouse).map_err(fail)?;
        sink.guard(gate.clone());
        sink.stall_timeout(Duration::from_millis(audit.clickhouse_stall_timeout_ms));
        gauges.clickhouse = Some(sink.stats_handle());
        return Ok((Box::new(sink), SeqStart::default()));
    };
    let (writer, reader, start) =
        open_spool(audit, dir, gate).map_err(|source| AuditStartError::Spool {
            dir: dir.clone(),
            source,
        })?;
    gauges.spool = Some(writer.usage());
    // The id `start` gives the record builder: the configured one, else
    // the spool's (always known here).
    let instance_id = audit
        .instance_id
        .clone()
        .or_else(|| start.spool_instance_id.clone())
        .unwrap_or_default();
    let sink = SpooledClickHouseSink::start(url, &audit.clickhouse, writer, reader, instance_id)
        .map_err(fail)?;
    gauges.clickhouse = Some(sink.stats_handle());
    Ok((Box::new(sink), start))
}

/// Opens the spool (lock, recovery, marks); where the seq continues.
fn open_spool(
    audit: &AuditConfig,
    dir: &Path,
    gate: &Arc<AuditGate>,
) -> io::Result<(SpoolWriter, SpoolReader, SeqStart)> {
    let options = SpoolOptions {
        max_bytes: audit.spool_max_bytes,
        segment_bytes: audit.spool_segment_bytes,
    };
    let Spool {
        mut writer,
        reader,
        next_seq,
        gaps,
        seq_mark,
        unused_seqs,
        last_frames,
    } = Spool::open(dir, options)?;
    let spool_instance_id = match audit.instance_id {
        None => Some(spool::marker::instance_id(dir)?),
        Some(_) => None,
    };
    writer.guard(gate.clone());
    let start = SeqStart {
        next_seq,
        mark: Some(SeqMark::new(seq_mark, next_seq - 1)),
        unused: unused_seqs,
        gaps,
        spool_instance_id,
        spool_last_chain: last_frames
            .iter()
            .max_by_key(|(seq, _)| *seq)
            .and_then(|(seq, f)| {
                let chain = spool_rows::chain_of(f)?;
                let (instance, _, _) = super::sink::clickhouse::rowbinary::row_header(&f.body)?;
                Some((String::from_utf8_lossy(instance).into_owned(), *seq, chain))
            }),
        spool_last_change: last_frames
            .iter()
            .filter_map(|(seq, f)| spool_rows::change_position(f).map(|c| (*seq, c)))
            .max()
            .map(|(_, c)| c),
    };
    Ok((writer, reader, start))
}

/// A fixed instance id without a spool: the audit file's own mark keeps
/// seqs from being used again after a restart.
fn file_seq_start(path: &Path) -> Result<SeqStart, AuditStartError> {
    let (slot, mark, last) =
        seqmark::for_audit_file(path).map_err(|source| AuditStartError::FileSeqMark {
            path: path.to_path_buf(),
            source,
        })?;
    let seen = last.unwrap_or(0);
    let next_seq = mark.max(seen) + 1;
    if last.is_none() && mark > 0 {
        tracing::warn!(file = %path.display(), next_seq, "the audit file has no record to show where the last run stopped (rotated or empty): seqs continue above the mark, without a gap record");
    }
    Ok(SeqStart {
        next_seq,
        mark: Some(SeqMark::new(slot, next_seq - 1)),
        unused: (last.is_some() && mark > seen).then(|| (seen + 1, mark - seen)),
        ..SeqStart::default()
    })
}

/// Corruption found in the spool at start is itself part of the trail,
/// and so are seqs the last run reserved but left no record of.
fn start_gaps(seq: SeqStart) -> Vec<StartGap> {
    let mut gaps: Vec<_> = seq
        .gaps
        .into_iter()
        .map(|gap| StartGap::Lost {
            missing_events: gap.missing_events,
            reason: gap.reason,
        })
        .collect();
    if let Some((first_seq, count)) = seq.unused {
        tracing::warn!(first_seq, count, "seqs reserved by the previous run hold no kept record (a crash lost unflushed records, or they were never used): a gap record says so");
        gaps.push(StartGap::Unused { first_seq, count });
    }
    gaps
}
