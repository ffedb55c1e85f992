//! When checkpoints are made, how they are signed, and the copy kept
//! outside ClickHouse: `audit.checkpoint_file`, appended and fsynced, one
//! JSON line per checkpoint (the same line as in the audit file) and per
//! gap record standing for skipped seqs, and the log (target
//! `pgtrail::checkpoint`), for a shipper to take elsewhere.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::signing::SigningKey;
use crate::audit::record::{CheckpointRecord, Record};

/// `[audit]`'s checkpoint settings.
#[derive(Debug)]
pub struct CheckpointOptions {
    /// A checkpoint after this many records ...
    pub every_records: u64,
    /// ... or this long after the last one, whichever first.
    pub every: Duration,
    pub key: Option<SigningKey>,
    /// The append-only copy; none: the log only.
    pub file: Option<PathBuf>,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            every_records: 10_000,
            every: Duration::from_secs(60),
            key: None,
            file: None,
        }
    }
}

/// The writer's checkpoint schedule and outside copy.
pub struct Checkpoints {
    options: CheckpointOptions,
    /// Records chained since the last checkpoint.
    since_last: u64,
    last_at: Instant,
    /// Records chained by this run.
    run_records: u64,
    file: Option<File>,
    /// The outside copy failed last time (logged once).
    file_failing: bool,
}

impl Checkpoints {
    pub fn new(options: CheckpointOptions) -> io::Result<Checkpoints> {
        let file = match &options.file {
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
            ),
            None => None,
        };
        Ok(Checkpoints {
            options,
            since_last: 0,
            last_at: Instant::now(),
            run_records: 0,
            file,
            file_failing: false,
        })
    }

    /// Unsigned, kept in the trail and the log only.
    pub fn unsigned() -> Checkpoints {
        Checkpoints {
            options: CheckpointOptions::default(),
            since_last: 0,
            last_at: Instant::now(),
            run_records: 0,
            file: None,
            file_failing: false,
        }
    }

    /// A record was chained.
    pub fn counted(&mut self) {
        self.since_last += 1;
        self.run_records += 1;
    }

    /// Whether records since the last checkpoint call for one now.
    pub fn due(&self) -> bool {
        self.due_by_records()
            || (self.since_last > 0 && self.last_at.elapsed() >= self.options.every)
    }

    /// Whether `audit.checkpoint_records` records came since the last one
    /// (checked after each record; the time only after each round).
    pub fn due_by_records(&self) -> bool {
        self.since_last >= self.options.every_records
    }

    /// How long until a checkpoint falls due by time (records pending).
    pub fn due_in(&self) -> Option<Duration> {
        (self.since_last > 0).then(|| self.options.every.saturating_sub(self.last_at.elapsed()))
    }

    /// Records this run has chained, the checkpoint about to be made included.
    pub fn run_records(&self) -> u64 {
        self.run_records + 1
    }

    /// Signs `checkpoint` (when a key is configured).
    pub fn sign(&self, checkpoint: &mut CheckpointRecord) {
        if let Some(key) = &self.options.key {
            checkpoint.key_id = key.key_id().into();
            checkpoint.signature = key.sign_hex(&super::canonical::checkpoint_message(checkpoint));
        }
    }

    /// A gap record a destination wrote in place of records it did not
    /// keep, appended to the outside copy too (verify tells a real gap
    /// from one written to hide a deletion by it).
    pub fn keep_gap_outside(&mut self, gap: &Record) {
        let Some(file) = &mut self.file else {
            return;
        };
        let mut line = Vec::with_capacity(512);
        crate::audit::record::json::write_record(gap, &mut line);
        line.push(b'\n');
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            tracing::error!(error = %e, seq = gap.seq(), "audit.checkpoint_file: a gap record was not written (the log has it)");
            self.file_failing = true;
        }
    }

    /// The chained checkpoint was made: the schedule starts again, and the
    /// copies outside the trail are written (the file fsynced). Whether the
    /// file, when there is one, took it.
    pub fn keep_outside(&mut self, record: &Record) -> bool {
        self.since_last = 0;
        self.last_at = Instant::now();
        let mut line = Vec::with_capacity(512);
        crate::audit::record::json::write_record(record, &mut line);
        tracing::info!(
            target: "pgtrail::checkpoint",
            seq = record.seq(),
            checkpoint = %String::from_utf8_lossy(&line),
            "audit checkpoint"
        );
        line.push(b'\n');
        if let Some(file) = &mut self.file {
            let result = file.write_all(&line).and_then(|()| file.sync_data());
            match (result, self.file_failing) {
                (Err(e), false) => {
                    tracing::error!(error = %e, "audit.checkpoint_file: checkpoint not written (the log has it)");
                    self.file_failing = true;
                }
                (Ok(()), true) => {
                    tracing::info!("audit.checkpoint_file is written again");
                    self.file_failing = false;
                }
                _ => {}
            }
        }
        !self.file_failing
    }
}
