//! `/metrics` for the audit chain's checkpoints (`audit::chain`), read
//! from the writer's `AuditStats` at scrape time, and for the catalog the
//! records' columns are resolved with (`catalog`), and for end-user
//! claims (`identity`).

use std::fmt;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

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

pub(super) fn catalog(e: &mut DescriptorEncoder, c: &crate::catalog::Catalog) -> fmt::Result {
    let (loaded, failed) = c.load_counts();
    counter(
        e,
        "catalog_loads",
        "Catalog snapshots loaded ([catalog]): at start, on DDL, each refresh_interval_s.",
        loaded,
    )?;
    counter(
        e,
        "catalog_load_failures",
        "Catalog loads that failed (the last snapshot stays in use; retried every 5 s).",
        failed,
    )?;
    gauge(
        e,
        "catalog_databases_unresolved",
        "Databases with no catalog snapshot because their loads fail: their records say `columns_unresolved`.",
        as_i64(c.failing_databases() as u64),
    )?;
    Ok(())
}

pub(super) fn identity(e: &mut DescriptorEncoder, id: &crate::identity::Identity) -> fmt::Result {
    let s = &id.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    {
        let mut f = e.encode_descriptor(
            "end_user_claims",
            "Statements with an end-user claim, by state: verified, unsigned, or rejected with the reason (a bad signature, an expired token, ...).",
            None,
            MetricType::Counter,
        )?;
        let states = [("verified", &s.verified), ("unsigned", &s.unsigned)];
        for (state, c) in states {
            let labels = [("state", state), ("reason", "")];
            ConstCounter::new(load(c)).encode(f.encode_family(&labels)?)?;
        }
        for (reason, c) in crate::identity::verify::Rejection::KINDS
            .iter()
            .zip(&s.rejected)
        {
            let labels = [("state", "rejected"), ("reason", *reason)];
            ConstCounter::new(load(c)).encode(f.encode_family(&labels)?)?;
        }
    }
    counter(
        e,
        "end_user_refused_statements",
        "Statements refused (28000) because their role must name a verified end user ([identity.roles] require_verified_end_user).",
        load(&s.refused),
    )
}
