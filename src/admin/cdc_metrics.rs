//! `/metrics` for the decoding consumer (`cdc.enabled`), read from its
//! `CdcStats` at scrape time.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::metrics::{as_i64, counter, gauge};
use crate::audit::event::ChangeOp;
use crate::cdc::consumer::CdcStats;
use crate::session::tracker::InternalStats;

pub(super) fn cdc(e: &mut DescriptorEncoder, s: &CdcStats, markers: &InternalStats) -> fmt::Result {
    {
        let mut f = e.encode_descriptor(
            "cdc_changes",
            "Row changes recorded from logical decoding, by op.",
            None,
            MetricType::Counter,
        )?;
        for op in ChangeOp::ALL {
            ConstCounter::new(s.changes_of(op)).encode(f.encode_family(&[("op", op.name())])?)?;
        }
    }
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    counter(
        e,
        "cdc_unattributed_changes",
        "Row changes whose transaction carried no verified pgtrail marker: writes that bypassed pgtrail.",
        load(&s.unattributed),
    )?;
    counter(
        e,
        "cdc_forged_markers",
        "pgtrail logical messages that failed verification.",
        load(&s.forged_markers),
    )?;
    counter(
        e,
        "cdc_markers_sent",
        "Attribution markers sessions sent on clients' connections.",
        load(&markers.markers_sent),
    )?;
    counter(
        e,
        "cdc_markers_refused",
        "Attribution markers the server answered with an error (the client's transaction was aborted by it): should stay 0.",
        load(&markers.markers_failed),
    )?;
    counter(
        e,
        "cdc_sessions_without_markers",
        "Sessions whose role may not call pg_logical_emit_message: they send no markers, and their row changes read attribution = none.",
        load(&markers.sessions_without_markers),
    )?;
    counter(
        e,
        "cdc_untransactional_messages",
        "Non-transactional logical messages (ignored).",
        load(&s.untransactional_messages),
    )?;
    counter(
        e,
        "cdc_replayed_transactions",
        "Transactions decoded again after a restart and skipped (already recorded).",
        load(&s.replayed_transactions),
    )?;
    counter(
        e,
        "cdc_spilled_transactions",
        "Transactions held partly on disk while waiting for their commit.",
        load(&s.spilled_transactions),
    )?;
    counter(
        e,
        "cdc_slot_lost",
        "Times the replication slot was found missing or invalidated.",
        load(&s.slot_lost),
    )?;
    counter(
        e,
        "cdc_reconnects",
        "Replication connections retried.",
        load(&s.reconnects),
    )?;
    gauge(
        e,
        "cdc_connected",
        "1 while the replication stream is open.",
        i64::from(s.connected.load(Ordering::Relaxed)),
    )?;
    gauge(
        e,
        "cdc_slot_lag_bytes",
        "WAL the server has sent or announced that pgtrail has not yet confirmed.",
        as_i64(s.lag_bytes()),
    )?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let m = e.encode_descriptor(
        "cdc_slot_lag_seconds",
        "Seconds since the commit of the last confirmed transaction while WAL waits to be confirmed; 0 when caught up.",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(s.lag_seconds(now)).encode(m)
}
