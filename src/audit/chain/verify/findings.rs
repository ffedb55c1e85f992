//! What `pgtrail verify` reports: findings by kind, with the seqs and time
//! they concern, per instance.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A record's content does not give its chain value.
    Altered,
    /// A line of a file that is no record.
    Malformed,
    /// A line a crash cut short.
    Torn,
    /// Seqs missing, no gap record explaining them.
    Deleted,
    /// A second, different record with a seq already held.
    Inserted,
    /// Records out of order (lines moved, or seqs exchanged).
    Reordered,
    /// The trail ends before a checkpoint kept outside it.
    Truncated,
    /// A checkpoint that does not name the chain as the trail has it, or
    /// differs from its outside copy.
    CheckpointMismatch,
    /// A checkpoint signature that does not verify under the public key.
    BadSignature,
    /// A checkpoint signature already seen at an earlier seq.
    ReplayedCheckpoint,
    /// A start record claiming a clean stop the chain does not continue.
    BrokenRestart,
    /// A start after a run that did not stop cleanly.
    Crash,
    /// Checkpoint signatures were not checked (no public key).
    Unsigned,
    /// The trail does not end with a stop record.
    NoCleanStop,
    /// The chain value before a record is not known here (the trail starts
    /// after seq 1, or after a gap whose chain value is not known).
    Unverified,
    /// Seqs or events a gap record tells were not kept.
    Gap,
    /// The same record twice (an idempotent retry).
    Duplicate,
}

impl Kind {
    pub fn severity(self) -> Severity {
        match self {
            Kind::Altered
            | Kind::Malformed
            | Kind::Deleted
            | Kind::Inserted
            | Kind::Reordered
            | Kind::Truncated
            | Kind::CheckpointMismatch
            | Kind::BadSignature
            | Kind::ReplayedCheckpoint
            | Kind::BrokenRestart => Severity::Error,
            Kind::Crash | Kind::Torn | Kind::Unsigned | Kind::NoCleanStop | Kind::Unverified => {
                Severity::Warning
            }
            Kind::Gap | Kind::Duplicate => Severity::Info,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Altered => "altered",
            Kind::Malformed => "malformed",
            Kind::Torn => "torn",
            Kind::Deleted => "deleted",
            Kind::Inserted => "inserted",
            Kind::Reordered => "reordered",
            Kind::Truncated => "truncated",
            Kind::CheckpointMismatch => "checkpoint_mismatch",
            Kind::BadSignature => "bad_signature",
            Kind::ReplayedCheckpoint => "replayed_checkpoint",
            Kind::BrokenRestart => "broken_restart",
            Kind::Crash => "crash",
            Kind::Unsigned => "unsigned",
            Kind::NoCleanStop => "no_clean_stop",
            Kind::Unverified => "unverified",
            Kind::Gap => "gap",
            Kind::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub seq: u64,
    pub to_seq: u64,
    /// The record's time (RFC 3339), when there is a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: Kind, seq: u64, to_seq: u64, time: Option<i64>, detail: String) -> Self {
        Finding {
            kind,
            severity: kind.severity(),
            seq,
            to_seq,
            time: time.map(crate::audit::record::format_micros),
            detail,
        }
    }
}

/// One instance's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InstanceReport {
    pub instance_id: String,
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub checkpoints: u64,
    pub findings: Vec<Finding>,
}

impl InstanceReport {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Every instance's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub instances: Vec<InstanceReport>,
}

impl Report {
    pub fn new(instances: Vec<InstanceReport>) -> Report {
        Report {
            ok: !instances.is_empty() && instances.iter().all(|i| i.errors() == 0),
            instances,
        }
    }

    /// For a person: one line per finding, then a summary per instance.
    pub fn human(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for i in &self.instances {
            let _ = writeln!(
                out,
                "instance {}: {} records, seqs {}..{}, {} checkpoints",
                i.instance_id, i.records, i.first_seq, i.last_seq, i.checkpoints
            );
            for f in &i.findings {
                let seqs = if f.to_seq > f.seq {
                    format!("{}..{}", f.seq, f.to_seq)
                } else {
                    f.seq.to_string()
                };
                let sev = match f.severity {
                    Severity::Error => "ERROR",
                    Severity::Warning => "WARNING",
                    Severity::Info => "INFO",
                };
                let time = f.time.as_deref().unwrap_or("-");
                let _ = writeln!(
                    out,
                    "  {sev} {} seq {seqs} {time}: {}",
                    f.kind.name(),
                    f.detail
                );
            }
            let errors = i.errors();
            let _ = writeln!(
                out,
                "  {}",
                if errors == 0 {
                    "chain intact".to_string()
                } else {
                    format!("{errors} error(s)")
                }
            );
        }
        if self.instances.is_empty() {
            out.push_str("no records found\n");
        }
        let _ = writeln!(out, "{}", if self.ok { "OK" } else { "FAILED" });
        out
    }
}
