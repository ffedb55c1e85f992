//! Client and upstream connections, plain or TLS, and framed reading for the
//! startup phase.

use bytes::{Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::error::SessionError;
use crate::protocol::frame::{frame_len, FrameError, FrameLimits};

/// A connection to a client or to the server.
pub enum Stream {
    Plain(TcpStream),
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// Read and write halves; plain TCP splits without a lock.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            other => {
                let (r, w) = tokio::io::split(other);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $e,
            Stream::ServerTls($s) => $e,
            Stream::ClientTls($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

pub enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<Stream>),
}

pub enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<Stream>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Smallest free space kept in a read buffer before each read.
pub const READ_CHUNK: usize = 16 * 1024;

pub use crate::auth::MAX_AUTH_MESSAGE;

/// A stream with a read buffer, for the message-at-a-time startup phase.
/// The buffer (with anything read ahead) passes on to the relay.
pub struct Framed {
    pub stream: Stream,
    pub buf: BytesMut,
    limits: FrameLimits,
    /// Bytes read from and written to the stream, for the records of
    /// sessions that end before the relay.
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl Framed {
    pub fn new(stream: Stream, buf: BytesMut, limits: FrameLimits) -> Self {
        Framed {
            stream,
            buf,
            limits,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// Whether a whole frame is in the buffer (or a malformed one, which
    /// `buffered_frame` reports).
    pub fn frame_buffered(&self) -> bool {
        !matches!(frame_len(&self.buf, &self.limits), Ok(Err(_)))
    }

    /// A whole tagged frame already in the buffer, without reading.
    pub fn buffered_frame(&mut self) -> Result<Option<Bytes>, SessionError> {
        Ok(frame_len(&self.buf, &self.limits)?
            .ok()
            .map(|len| self.buf.split_to(len).freeze()))
    }

    /// Reads one whole tagged frame (header included).
    pub async fn read_frame(&mut self) -> Result<Bytes, SessionError> {
        loop {
            match frame_len(&self.buf, &self.limits)? {
                Ok(len) => return Ok(self.buf.split_to(len).freeze()),
                Err(missing) => self.fill(missing).await?,
            }
        }
    }

    /// Reads one authentication-phase message. Its length is checked
    /// against [`MAX_AUTH_MESSAGE`] before the body is buffered, so an
    /// unauthenticated client cannot make pgtrail hold more than that; the
    /// buffer is shrunk afterwards, because it goes on to the relay.
    pub async fn read_auth_frame(&mut self) -> Result<Bytes, SessionError> {
        let limits = FrameLimits {
            max_message: MAX_AUTH_MESSAGE,
            max_small: self.limits.max_small,
        };
        let frame = loop {
            match frame_len(&self.buf, &limits) {
                Ok(Ok(len)) => break self.buf.split_to(len).freeze(),
                Ok(Err(missing)) => self.fill(missing).await?,
                Err(FrameError::TooLarge { len, .. }) => {
                    return Err(SessionError::Protocol(format!(
                        "authentication message of {len} bytes is over the limit of {MAX_AUTH_MESSAGE} bytes"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.shrink();
        Ok(frame)
    }

    /// Gives back buffer memory beyond one read chunk (what is buffered stays).
    fn shrink(&mut self) {
        if self.buf.capacity() > 2 * READ_CHUNK && self.buf.len() <= READ_CHUNK {
            let mut small = BytesMut::with_capacity(READ_CHUNK);
            small.extend_from_slice(&self.buf);
            self.buf = small;
        }
    }

    /// Reads exactly `n` bytes (untagged startup packets).
    pub async fn read_exact(&mut self, n: usize) -> Result<Bytes, SessionError> {
        while self.buf.len() < n {
            self.fill(n - self.buf.len()).await?;
        }
        Ok(self.buf.split_to(n).freeze())
    }

    async fn fill(&mut self, missing: usize) -> Result<(), SessionError> {
        self.buf.reserve(missing.max(READ_CHUNK));
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(SessionError::Closed);
        }
        self.bytes_read += n as u64;
        Ok(())
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.stream.write_all(bytes).await?;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}
