//! `/metrics` for the audit chain's checkpoints (`audit::chain`), read
//! from the writer's `AuditStats` at scrape time.

use std::fmt;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::DescriptorEncoder;

use super::metrics::{as_i64, counter, gauge};
use crate::audit::writer::AuditStats;

pub(super) fn chain(e: &mut DescriptorEncoder, s: &AuditStats) -> fmt::Result {
    counter(
        e,
        "audit_checkpoints",
        "Signed checkpoints of the audit chain written (audit.checkpoint_records, audit.checkpoint_interval_ms, start, stop).",
        s.checkpoints.load(Ordering::Relaxed),
    )?;
    gauge(
        e,
        "audit_last_checkpoint_seq",
        "Seq of the last checkpoint: records after it are not yet covered by a signature kept outside the trail.",
        as_i64(s.last_checkpoint_seq.load(Ordering::Relaxed)),
    )?;
    gauge(
        e,
        "audit_last_checkpoint_timestamp_seconds",
        "When the last checkpoint was written (Unix time).",
        s.last_checkpoint_micros.load(Ordering::Relaxed) / 1_000_000,
    )?;
    gauge(
        e,
        "audit_checkpoint_file_failing",
        "1 while writes to audit.checkpoint_file fail (the log still has each checkpoint).",
        i64::from(s.checkpoint_file_failing.load(Ordering::Relaxed)),
    )?;
    Ok(())
}
