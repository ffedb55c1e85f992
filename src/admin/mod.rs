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
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::context::ProxyContext;

mod metrics;
pub use metrics::metrics_text;

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
    if let Some(why) = ctx.audit.gate().blocked() {
        return Err(format!("audit is blocked: {why}"));
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
