//! The admin listener (`admin_listen`): a small HTTP/1.1 server apart from
//! the proxy port.
//!
//! - `/metrics`: Prometheus text format, read from the counters the server
//!   already keeps ([`crate::context::ProxyStats`], the audit writer's
//!   [`crate::audit::pipeline::AuditStats`], the ClickHouse sink's counters,
//!   the classification cache).
//! - `/healthz`: 200 `ok` while the process runs.
//! - `/readyz`: 200 when the upstream server accepts a TCP connection and
//!   the audit writer is running with no failing sink; else 503 and why.
//! - anything else: 404.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::context::{ProxyContext, AUTH_FAILURE_REASONS};

/// How long `/readyz` waits for the upstream server to accept a connection.
const READY_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves admin requests until `shutdown` resolves; open connections are
/// closed then.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ProxyContext>,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(admin_listen = %addr, "admin listener: /metrics /healthz /readyz");
    }
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => {
                    let ctx = ctx.clone();
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let ctx = ctx.clone();
                            async move { Ok::<_, Infallible>(handle(req, &ctx).await) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(socket), service);
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "admin connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn handle(req: Request<Incoming>, ctx: &Arc<ProxyContext>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/metrics" => match metrics_text(ctx) {
            Ok(body) => {
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                resp.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                );
                resp
            }
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not encode metrics\n",
            ),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match readiness(ctx).await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{why}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `Ok` when the upstream server accepts a TCP connection and the audit
/// writer is running with every sink writing; else the one-line reason.
pub async fn readiness(ctx: &ProxyContext) -> Result<(), String> {
    let stats = ctx.audit.stats();
    if stats.closed.load(Ordering::Relaxed) {
        return Err("audit writer is not running".into());
    }
    if stats.failing.load(Ordering::Relaxed) {
        return Err("audit sink is failing".into());
    }
    let target = (ctx.upstream_host.as_str(), ctx.upstream_port);
    match tokio::time::timeout(
        READY_CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(target),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "upstream {}:{} unreachable: {e}",
            ctx.upstream_host, ctx.upstream_port
        )),
        Err(_) => Err(format!(
            "upstream {}:{} unreachable: connect timed out",
            ctx.upstream_host, ctx.upstream_port
        )),
    }
}

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

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for Metrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let ctx = &self.0;
        let s = &ctx.stats;
        counter(
            &mut e,
            "sessions",
            "Client connections accepted.",
            load(&s.sessions_total),
        )?;
        gauge(
            &mut e,
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
            for (reason, c) in AUTH_FAILURE_REASONS.iter().zip(&s.auth_failures_by_reason) {
                let labels = [("reason", *reason)];
                ConstCounter::new(load(c)).encode(f.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "statements_relayed",
            "Statement results seen by the relay (before classification).",
            load(&s.statements),
        )?;
        let audit = ctx.audit.stats();
        {
            let mut f = e.encode_descriptor(
                "statements",
                "Statements audited, by class and success.",
                None,
                MetricType::Counter,
            )?;
            for ((class, success), n) in audit.statements_by_class() {
                let labels = [
                    ("class", class.as_str()),
                    ("success", if success { "true" } else { "false" }),
                ];
                ConstCounter::new(n).encode(f.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "bytes_in",
            "Bytes read from clients.",
            load(&s.bytes_in),
        )?;
        counter(
            &mut e,
            "bytes_out",
            "Bytes written to clients.",
            load(&s.bytes_out),
        )?;
        gauge(
            &mut e,
            "buffered_bytes",
            "Bytes held in session buffers now.",
            as_i64(load(&s.buffered_bytes)),
        )?;
        let (depth, capacity) = ctx.audit.queue_depth();
        gauge(
            &mut e,
            "audit_queue_depth",
            "Events waiting in the audit queue.",
            as_i64(depth as u64),
        )?;
        gauge(
            &mut e,
            "audit_queue_capacity",
            "Capacity of the audit queue.",
            as_i64(capacity as u64),
        )?;
        counter(
            &mut e,
            "audit_records_written",
            "Audit records every sink accepted.",
            load(&audit.written),
        )?;
        counter(
            &mut e,
            "audit_records_dropped",
            "Events not queued because the audit queue was full (fail_open).",
            load(&audit.dropped_total),
        )?;
        counter(
            &mut e,
            "audit_sink_errors",
            "Failed audit sink writes and flushes.",
            load(&audit.sink_errors),
        )?;
        gauge(
            &mut e,
            "audit_sink_failing",
            "1 while the last audit sink write failed.",
            i64::from(audit.failing.load(Ordering::Relaxed)),
        )?;
        if let Some(ch) = &ctx.clickhouse_stats {
            counter(
                &mut e,
                "clickhouse_batches_sent",
                "Batches ClickHouse acknowledged.",
                load(&ch.batches_sent),
            )?;
            counter(
                &mut e,
                "clickhouse_batches_failed",
                "Failed batch attempts (each is retried).",
                load(&ch.batches_failed),
            )?;
            counter(
                &mut e,
                "clickhouse_rows_sent",
                "Rows ClickHouse acknowledged.",
                load(&ch.rows_sent),
            )?;
            counter(
                &mut e,
                "clickhouse_rows_lost",
                "Rows given up at shutdown.",
                load(&ch.rows_lost),
            )?;
        }
        if let Some(spool) = &ctx.spool_usage {
            let (bytes, segments) = spool.get();
            gauge(
                &mut e,
                "spool_bytes",
                "Durable bytes in the spool.",
                as_i64(bytes),
            )?;
            gauge(
                &mut e,
                "spool_segments",
                "Segment files in the spool.",
                as_i64(segments as u64),
            )?;
        }
        if let Some(cache) = ctx.classifier.cache_stats() {
            counter(
                &mut e,
                "classification_cache_hits",
                "Classification cache hits.",
                cache.hits,
            )?;
            counter(
                &mut e,
                "classification_cache_misses",
                "Classification cache misses.",
                cache.misses,
            )?;
            gauge(
                &mut e,
                "classification_cache_entries",
                "Entries in the classification cache.",
                as_i64(cache.entries),
            )?;
        }
        Ok(())
    }
}
