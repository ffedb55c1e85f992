//! `/metrics`: the server's counters in Prometheus text format, read at
//! scrape time (nothing is counted twice, no registry to keep in step).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::audit::sink::clickhouse::ClickHouseStats;
use crate::audit::spool::SpoolUsage;
use crate::context::{AuthFailureReason, ProxyContext, CANCEL_RESULTS};
use crate::sql::CacheStats;

/// The `/metrics` body: every metric of `ctx`, Prometheus text format.
pub fn metrics_text(ctx: &Arc<ProxyContext>) -> Result<String, fmt::Error> {
    let mut registry = Registry::with_prefix("pgtrail");
    registry.register_collector(Box::new(Metrics(ctx.clone())));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

/// Reads the server's counters at scrape time.
struct Metrics(Arc<ProxyContext>);

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

pub(super) fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

pub(super) fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// Seconds since `micros` (since the epoch); 0 for 0.
fn age_seconds(micros: u64) -> f64 {
    if micros == 0 {
        return 0.0;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now.saturating_sub(micros) as f64 / 1e6
}

pub(super) fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for Metrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let ctx = &self.0;
        connections(&mut e, ctx)?;
        statements_and_audit(&mut e, ctx)?;
        super::chain_metrics::chain(&mut e, ctx.audit.stats())?;
        let observed = &ctx.observed;
        if let Some(ch) = &observed.clickhouse {
            clickhouse(&mut e, ch)?;
        }
        if let Some(spool) = &observed.spool {
            spool_usage(&mut e, spool)?;
        }
        if let Some(cache) = observed.classifier.cache_stats() {
            classification(&mut e, &cache)?;
        }
        if let Some(cdc) = &observed.cdc {
            super::cdc_metrics::cdc(&mut e, cdc, &self.0.stats.markers)?;
        }
        if let Some(catalog) = &observed.catalog {
            super::chain_metrics::catalog(&mut e, catalog)?;
        }
        if let Some(identity) = &ctx.identity {
            super::chain_metrics::identity(&mut e, identity)?;
        }
        Ok(())
    }
}

/// Build, sessions, logins, upstream connects, reloads and cancels.
fn connections(e: &mut DescriptorEncoder, ctx: &ProxyContext) -> fmt::Result {
    let s = &ctx.stats;
    {
        let mut f = e.encode_descriptor(
            "build_info",
            "1, labelled with the version and the instance_id its audit records carry.",
            None,
            MetricType::Gauge,
        )?;
        let labels = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("instance_id", ctx.observed.instance_id.as_str()),
        ];
        ConstGauge::new(1).encode(f.encode_family(&labels)?)?;
    }
    counter(
        e,
        "sessions",
        "Client connections accepted.",
        load(&s.sessions_total),
    )?;
    gauge(
        e,
        "sessions_active",
        "Client connections open now.",
        as_i64(load(&s.sessions_active)),
    )?;
    {
        let mut f = e.encode_descriptor(
            "auth_failures",
            "Failed logins, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (reason, c) in AuthFailureReason::ALL
            .iter()
            .zip(&s.auth_failures_by_reason)
        {
            let labels = [("reason", reason.label())];
            ConstCounter::new(load(c)).encode(f.encode_family(&labels)?)?;
        }
    }
    gauge(
        e,
        "max_connections",
        "Client connections allowed (max_connections); more wait in the accept queue.",
        as_i64(ctx.config.max_connections as u64),
    )?;
    counter(
        e,
        "upstream_connect_failures",
        "Connects to PostgreSQL that failed (refused, timed out, TLS).",
        load(&s.upstream_connect_failures),
    )?;
    gauge(
        e,
        "upstream_last_connect_failed",
        "1 when the last connect to PostgreSQL failed, 0 when it succeeded (or none was tried).",
        i64::from(s.upstream_last_connect_failed.load(Ordering::Relaxed)),
    )?;
    {
        let mut f = e.encode_descriptor(
            "reloads",
            "SIGHUP reloads, by result (applied, rejected).",
            None,
            MetricType::Counter,
        )?;
        for (result, c) in ["applied", "rejected"].iter().zip(&s.reloads) {
            ConstCounter::new(load(c)).encode(f.encode_family(&[("result", *result)])?)?;
        }
    }
    {
        let mut f = e.encode_descriptor(
            "cancels",
            "CancelRequests, by result (forwarded, failed, unmatched).",
            None,
            MetricType::Counter,
        )?;
        for (result, c) in CANCEL_RESULTS.iter().zip(&s.cancels) {
            ConstCounter::new(load(c)).encode(f.encode_family(&[("result", *result)])?)?;
        }
    }
    {
        let m = e.encode_descriptor(
            "upstream_connect_seconds",
            "Time to connect to PostgreSQL (TCP and TLS), successful connects.",
            None,
            MetricType::Histogram,
        )?;
        s.upstream_connect.0.encode(m)?;
    }
    counter(
        e,
        "statements_relayed",
        "Statement results seen by the relay (before classification).",
        load(&s.statements),
    )?;
    Ok(())
}

/// Statements by class, bytes, and the audit path up to the sinks.
fn statements_and_audit(e: &mut DescriptorEncoder, ctx: &ProxyContext) -> fmt::Result {
    let s = &ctx.stats;
    let audit = ctx.audit.stats();
    let by_class = audit.statements.snapshot();
    {
        let mut f = e.encode_descriptor(
            "statements",
            "Statements audited, by class and success.",
            None,
            MetricType::Counter,
        )?;
        for (class, per) in &by_class {
            for (success, n) in [("true", per.succeeded), ("false", per.failed)] {
                let labels = [("class", class.as_str()), ("success", success)];
                ConstCounter::new(n).encode(f.encode_family(&labels)?)?;
            }
        }
    }
    {
        let mut f = e.encode_descriptor(
            "statement_duration_seconds",
            "Statement durations as recorded (duration_us), by class.",
            None,
            MetricType::Histogram,
        )?;
        for (class, per) in &by_class {
            per.duration
                .encode(f.encode_family(&[("class", class.as_str())])?)?;
        }
    }
    counter(e, "bytes_in", "Bytes read from clients.", load(&s.bytes_in))?;
    counter(
        e,
        "bytes_out",
        "Bytes written to clients.",
        load(&s.bytes_out),
    )?;
    gauge(
        e,
        "buffered_bytes",
        "Bytes held in session buffers now.",
        as_i64(load(&s.buffered_bytes)),
    )?;
    let (depth, capacity) = ctx.audit.queue_depth();
    gauge(
        e,
        "audit_queue_depth",
        "Events waiting in the audit queue.",
        as_i64(depth as u64),
    )?;
    gauge(
        e,
        "audit_queue_capacity",
        "Capacity of the audit queue.",
        as_i64(capacity as u64),
    )?;
    counter(
        e,
        "audit_records_written",
        "Audit records every sink accepted.",
        load(&audit.written),
    )?;
    let gate = ctx.audit.gate();
    counter(
            e,
            "audit_records_dropped",
            "Records not audited under fail_open (audit queue full, spool full or failed); gap records name them.",
            gate.dropped(),
        )?;
    gauge(
            e,
            "audit_blocked",
            "1 while the audit path cannot take records (spool full or failed, a sink failing); fail_closed then refuses new statements.",
            i64::from(gate.blocked().is_some()),
        )?;
    counter(
        e,
        "statements_refused",
        "Statements refused with SQLSTATE 53000 because they could not be audited (fail_closed).",
        load(&s.statements_refused),
    )?;
    counter(
        e,
        "audit_sink_errors",
        "Failed audit sink writes and flushes.",
        load(&audit.sink_errors),
    )?;
    gauge(
        e,
        "audit_sink_failing",
        "1 while the last audit sink write failed.",
        i64::from(audit.failing.load(Ordering::Relaxed)),
    )?;
    Ok(())
}

/// Delivery to ClickHouse.
fn clickhouse(e: &mut DescriptorEncoder, ch: &ClickHouseStats) -> fmt::Result {
    counter(
        e,
        "clickhouse_batches_sent",
        "Batches ClickHouse acknowledged.",
        load(&ch.batches_sent),
    )?;
    counter(
        e,
        "clickhouse_batches_failed",
        "Failed batch attempts (each is retried).",
        load(&ch.batches_failed),
    )?;
    counter(
            e,
            "clickhouse_batches_rejected",
            "Failed attempts whose error needs a person (schema, data, credentials); the batch is kept.",
            load(&ch.batches_rejected),
        )?;
    counter(
        e,
        "clickhouse_rows_sent",
        "Rows ClickHouse acknowledged.",
        load(&ch.rows_sent),
    )?;
    counter(
        e,
        "clickhouse_rows_lost",
        "Rows given up at shutdown.",
        load(&ch.rows_lost),
    )?;
    counter(
        e,
        "clickhouse_rows_undecodable",
        "Spooled frames this build could not read (unknown tag, JSON that does not parse); each was sent as a gap row.",
        load(&ch.rows_undecodable),
    )?;
    let m = e.encode_descriptor(
        "clickhouse_insert_seconds",
        "Time of each acknowledged batch (its INSERTs).",
        None,
        MetricType::Histogram,
    )?;
    ch.insert_latency.0.encode(m)?;
    let oldest = load(&ch.oldest_unsent_micros);
    let m = e.encode_descriptor(
        "audit_oldest_unshipped_seconds",
        "Age of the oldest audit record ClickHouse has not acknowledged; 0 when none waits.",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(age_seconds(oldest)).encode(m)?;
    Ok(())
}

/// The durable spool's size and backlog.
fn spool_usage(e: &mut DescriptorEncoder, spool: &SpoolUsage) -> fmt::Result {
    let (bytes, segments) = spool.get();
    gauge(
        e,
        "spool_bytes",
        "Durable bytes in the spool.",
        as_i64(bytes),
    )?;
    gauge(
        e,
        "spool_segments",
        "Segment files in the spool.",
        as_i64(segments as u64),
    )?;
    gauge(
        e,
        "spool_unacked_records",
        "Records in the spool ClickHouse has not acknowledged yet.",
        as_i64(spool.unacked()),
    )?;
    Ok(())
}

/// The analyzer's cache and its fallback parsers.
fn classification(e: &mut DescriptorEncoder, cache: &CacheStats) -> fmt::Result {
    counter(
        e,
        "classification_cache_hits",
        "Classification cache hits.",
        cache.hits,
    )?;
    counter(
        e,
        "classification_cache_misses",
        "Classification cache misses.",
        cache.misses,
    )?;
    gauge(
        e,
        "classification_cache_entries",
        "Entries in the classification cache.",
        as_i64(cache.entries),
    )?;
    let mut f = e.encode_descriptor(
        "classification_fallback_parses",
        "Statements parsed by a path other than sqlparser (cache hits not counted).",
        None,
        MetricType::Counter,
    )?;
    for (parser, n) in [
        ("pg_query", cache.fallback_pg_query),
        ("lexer", cache.fallback_lexer),
    ] {
        ConstCounter::new(n).encode(f.encode_family(&[("parser", parser)])?)?;
    }
    Ok(())
}
