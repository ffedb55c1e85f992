//! The client's startup phase: SSLRequest (or direct TLS), GSSENCRequest,
//! CancelRequest and the StartupMessage.

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::error::SessionError;
use super::stream::{Framed, Stream};
use crate::context::ProxyContext;
use crate::protocol::frame::FrameLimits;
use crate::protocol::startup::{self, Startup, StartupPacket};

/// What the client asked for once the transport is settled.
pub enum Request {
    Startup(Startup),
    Cancel { pid: i32, secret: Vec<u8> },
}

/// First byte of a TLS handshake record: a client using direct TLS
/// (PostgreSQL 17's `sslnegotiation=direct`).
const TLS_HANDSHAKE: u8 = 0x16;

/// Settles the transport and reads the client's request. On error the
/// connection is handed back (when there still is one) so the caller can
/// answer with an ErrorResponse.
pub async fn negotiate(
    socket: TcpStream,
    ctx: &ProxyContext,
) -> (Option<Framed>, Result<Request, SessionError>) {
    let limits = FrameLimits::frontend(ctx.config.limits.max_message_bytes);
    let mut first = [0u8; 1];
    let direct_tls = matches!(socket.peek(&mut first).await, Ok(1)) && first[0] == TLS_HANDSHAKE;
    let mut conn = Framed::new(Stream::Plain(socket), BytesMut::new(), limits);
    if direct_tls {
        conn = match start_tls(conn, ctx, true).await {
            Ok(c) => c,
            Err(e) => return (None, Err(e)),
        };
    }
    loop {
        match next_packet(&mut conn).await {
            Ok(StartupPacket::Ssl) => {
                let offer = ctx.tls_acceptor().is_some() && !conn.stream.is_tls();
                if let Err(e) = conn.write(if offer { b"S" } else { b"N" }).await {
                    return (None, Err(e));
                }
                if offer {
                    conn = match start_tls(conn, ctx, false).await {
                        Ok(c) => c,
                        Err(e) => return (None, Err(e)),
                    };
                }
            }
            Ok(StartupPacket::GssEnc) => {
                if let Err(e) = conn.write(b"N").await {
                    return (None, Err(e));
                }
            }
            Ok(StartupPacket::Cancel { pid, secret }) => {
                return (Some(conn), Ok(Request::Cancel { pid, secret }))
            }
            Ok(StartupPacket::Startup(s)) => return (Some(conn), Ok(Request::Startup(s))),
            Err(e) => return (Some(conn), Err(e)),
        }
    }
}

async fn next_packet(conn: &mut Framed) -> Result<StartupPacket, SessionError> {
    let header = conn.read_exact(4).await?;
    let len = startup::packet_len([header[0], header[1], header[2], header[3]])?;
    let rest = conn.read_exact(len - 4).await?;
    let mut packet = header.to_vec();
    packet.extend_from_slice(&rest);
    Ok(startup::decode(&packet)?)
}

async fn start_tls(conn: Framed, ctx: &ProxyContext, direct: bool) -> Result<Framed, SessionError> {
    let Some(acceptor) = ctx.tls_acceptor() else {
        return Err(SessionError::Protocol(
            "TLS handshake without TLS configured".into(),
        ));
    };
    // Bytes sent after SSLRequest but before the handshake would be read as
    // if they were encrypted (CVE-2021-23214): refuse them.
    if !conn.buf.is_empty() {
        return Err(SessionError::Protocol(
            "unencrypted data after SSLRequest".into(),
        ));
    }
    let Framed { stream, buf, .. } = conn;
    let Stream::Plain(tcp) = stream else {
        return Err(SessionError::Protocol("TLS requested twice".into()));
    };
    let tls = acceptor
        .accept(tcp)
        .await
        .map_err(|e| SessionError::Tls(e.to_string()))?;
    if direct && tls.get_ref().1.alpn_protocol() != Some(b"postgresql") {
        return Err(SessionError::Tls(
            "direct TLS connection without ALPN \"postgresql\"".into(),
        ));
    }
    let limits = FrameLimits::frontend(ctx.config.limits.max_message_bytes);
    Ok(Framed::new(Stream::ServerTls(Box::new(tls)), buf, limits))
}
