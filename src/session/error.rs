//! Why a session ended early.

use std::fmt;
use std::io;

use crate::protocol::{FrameError, Malformed};

#[derive(Debug)]
pub enum SessionError {
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    Frame(FrameError),
    Malformed(Malformed),
    /// A well-formed message that is not allowed here.
    Protocol(String),
    Tls(String),
    /// The upstream server could not be reached or refused us.
    Upstream(String),
    /// A statement's audit record could not be made durable (`before_ack`).
    Audit(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "i/o error: {e}"),
            SessionError::Closed => f.write_str("connection closed by peer"),
            SessionError::Frame(e) => e.fmt(f),
            SessionError::Malformed(e) => e.fmt(f),
            SessionError::Protocol(s) => write!(f, "protocol violation: {s}"),
            SessionError::Tls(s) => write!(f, "TLS: {s}"),
            SessionError::Upstream(s) => write!(f, "upstream: {s}"),
            SessionError::Audit(s) => write!(f, "audit: {s}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SessionError::Closed
        } else {
            SessionError::Io(e)
        }
    }
}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Frame(e)
    }
}

impl From<Malformed> for SessionError {
    fn from(e: Malformed) -> Self {
        SessionError::Malformed(e)
    }
}

impl SessionError {
    /// Errors that mean the peer sent something invalid (SQLSTATE 08P01).
    pub fn is_protocol_violation(&self) -> bool {
        matches!(
            self,
            SessionError::Frame(_) | SessionError::Malformed(_) | SessionError::Protocol(_)
        )
    }
}
