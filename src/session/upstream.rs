//! Connecting to the PostgreSQL server, with TLS per `upstream.tls`.

use bytes::BytesMut;
use std::net::SocketAddr;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::error::SessionError;
use super::stream::{Framed, Stream};
use crate::config::UpstreamTlsMode;
use crate::context::ProxyContext;
use crate::protocol::build;
use crate::protocol::frame::FrameLimits;

/// Opens a connection to the server and settles TLS; returns the server's address too.
pub async fn connect(ctx: &ProxyContext) -> Result<(Framed, SocketAddr), SessionError> {
    let result = open(ctx).await;
    ctx.stats.upstream_connected(result.is_ok());
    result
}

async fn open(ctx: &ProxyContext) -> Result<(Framed, SocketAddr), SessionError> {
    let cfg = &ctx.config.upstream;
    let started = std::time::Instant::now();
    let target = (ctx.upstream_host.as_str(), ctx.upstream_port);
    let tcp = tokio::time::timeout(cfg.connect_timeout(), TcpStream::connect(target))
        .await
        .map_err(|_| {
            SessionError::Upstream(format!("connect to {}:{} timed out", target.0, target.1))
        })?
        .map_err(|e| {
            SessionError::Upstream(format!("connect to {}:{}: {e}", target.0, target.1))
        })?;
    tcp.set_nodelay(true)?;
    let addr = tcp.peer_addr()?;
    let limits = FrameLimits::backend(ctx.config.limits.max_message_bytes);
    let stream = match &ctx.upstream_tls {
        None => Stream::Plain(tcp),
        Some((connector, name)) => negotiate_tls(tcp, connector, name, cfg.tls).await?,
    };
    // Only connects that succeed: a refused or timed-out connect says
    // nothing about latency and would pile up in the top bucket.
    ctx.stats.upstream_connect.observe(started.elapsed());
    Ok((Framed::new(stream, BytesMut::new(), limits), addr))
}

pub(crate) async fn negotiate_tls(
    mut tcp: TcpStream,
    connector: &tokio_rustls::TlsConnector,
    name: &rustls::pki_types::ServerName<'static>,
    mode: UpstreamTlsMode,
) -> Result<Stream, SessionError> {
    use tokio::io::AsyncWriteExt;
    tcp.write_all(&build::ssl_request()).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match (answer[0], mode) {
        (b'S', _) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| SessionError::Upstream(format!("TLS handshake: {e}")))?;
            Ok(Stream::ClientTls(Box::new(tls)))
        }
        (b'N', UpstreamTlsMode::Prefer) => Ok(Stream::Plain(tcp)),
        (b'N', _) => Err(SessionError::Upstream(
            "server does not support TLS, which upstream.tls requires".into(),
        )),
        (other, _) => Err(SessionError::Upstream(format!(
            "invalid answer {other:#x} to SSLRequest"
        ))),
    }
}
