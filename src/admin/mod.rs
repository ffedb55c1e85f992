//! The admin listener (`admin_listen`): a small HTTP/1.1 server apart from
//! the proxy port.
//!
//! - `/metrics`: Prometheus text format, read from the counters the server
//!   already keeps ([`crate::context::ProxyStats`], the audit writer's
//!   [`crate::audit::writer::AuditStats`], the ClickHouse sink's counters,
//!   the classification cache).
//! - `/healthz`: 200 `ok` while the process runs.
//! - `/readyz`: 200 when the upstream server accepts a TCP connection and
//!   the audit writer is running with no failing sink; else 503 and why.
//! - anything else: 404.
//!
//! The listener cannot starve the proxy: at most [`MAX_CONNECTIONS`] admin
//! connections are served at once (further ones are closed as soon as
//! they are accepted), a request's headers must arrive within
//! [`HEADER_TIMEOUT`] and a connection lives at most [`CONNECTION_LIFETIME`].
//! `/readyz` connects to the upstream server at most once per
//! [`READY_CACHE`]; calls in between get the last answer.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::context::ProxyContext;

mod cdc_metrics;
mod chain_metrics;
mod metrics;
pub use metrics::metrics_text;

/// How long `/readyz` waits for the upstream server to accept a connection.
const READY_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Admin connections served at once; counted in the descriptor budget
/// (`crate::fdlimit`).
pub const MAX_CONNECTIONS: usize = 64;
/// Time for a request's headers to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one admin connection, idle or not (scrapers reconnect).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// How long one upstream check answers `/readyz`.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// The last upstream check of `/readyz`: when, and its answer. The lock is
/// held across a check, so concurrent calls wait for it and share it.
#[derive(Default)]
struct UpstreamCheck(tokio::sync::Mutex<Option<(Instant, Result<(), NotReady>)>>);

/// Why `/readyz` answers 503; `Display` is the body's one line.
#[derive(Debug, Clone)]
pub enum NotReady {
    /// The audit writer thread has stopped.
    WriterStopped,
    /// A sink reports failing writes.
    SinkFailing,
    /// The audit gate is closed, for the reason it gives.
    AuditBlocked(&'static str),
    /// The upstream server refused or reset the connection (the error is
    /// shared by the answers cached for [`READY_CACHE`]).
    Unreachable {
        host: String,
        port: u16,
        source: Arc<std::io::Error>,
    },
    /// No connection within [`READY_CONNECT_TIMEOUT`].
    ConnectTimeout { host: String, port: u16 },
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::WriterStopped => f.write_str("audit writer is not running"),
            NotReady::SinkFailing => f.write_str("audit sink is failing"),
            NotReady::AuditBlocked(why) => write!(f, "audit is blocked: {why}"),
            NotReady::Unreachable { host, port, source } => {
                write!(f, "upstream {host}:{port} unreachable: {source}")
            }
            NotReady::ConnectTimeout { host, port } => {
                write!(f, "upstream {host}:{port} unreachable: connect timed out")
            }
        }
    }
}

impl std::error::Error for NotReady {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotReady::Unreachable { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let check = Arc::new(UpstreamCheck::default());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let (ctx, check) = (ctx.clone(), check.clone());
                        conns.spawn(async move {
                            serve_connection(socket, ctx, check).await;
                            drop(slot);
                        });
                    }
                    // Dropping the socket closes it.
                    Err(_) => tracing::debug!(%peer, "admin connection refused: {MAX_CONNECTIONS} already open"),
                },
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

/// One admin connection, within its header timeout and lifetime.
async fn serve_connection(
    socket: tokio::net::TcpStream,
    ctx: Arc<ProxyContext>,
    check: Arc<UpstreamCheck>,
) {
    let service = hyper::service::service_fn(move |req| {
        let (ctx, check) = (ctx.clone(), check.clone());
        async move { Ok::<_, Infallible>(handle(req, &ctx, &check).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(socket), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Err(e)) => tracing::debug!(error = %e, "admin connection ended with an error"),
        Ok(Ok(())) => {}
        Err(_) => {
            tracing::debug!("admin connection closed: open longer than {CONNECTION_LIFETIME:?}")
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    ctx: &Arc<ProxyContext>,
    check: &UpstreamCheck,
) -> Response<Full<Bytes>> {
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
        "/readyz" => match readiness(ctx, check).await {
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
async fn readiness(ctx: &ProxyContext, check: &UpstreamCheck) -> Result<(), NotReady> {
    let stats = ctx.audit.stats();
    if stats.closed.load(Ordering::Relaxed) {
        return Err(NotReady::WriterStopped);
    }
    if stats.failing.load(Ordering::Relaxed) {
        return Err(NotReady::SinkFailing);
    }
    if let Some(why) = ctx.audit.gate().blocked() {
        return Err(NotReady::AuditBlocked(why));
    }
    let mut last = check.0.lock().await;
    if let Some((at, answer)) = last.as_ref() {
        if at.elapsed() < READY_CACHE {
            return answer.clone();
        }
    }
    let answer = upstream_reachable(ctx).await;
    *last = Some((Instant::now(), answer.clone()));
    answer
}

/// One TCP connect to the upstream server.
async fn upstream_reachable(ctx: &ProxyContext) -> Result<(), NotReady> {
    let (host, port) = (ctx.upstream_host.clone(), ctx.upstream_port);
    match tokio::time::timeout(
        READY_CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(NotReady::Unreachable {
            host,
            port,
            source: Arc::new(e),
        }),
        Err(_) => Err(NotReady::ConnectTimeout { host, port }),
    }
}
