//! Why a session ended early.

use std::fmt;
use std::io;

use crate::auth::{AuthError, Side};
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

/// The client's faults in the exchange are protocol violations (08P01);
/// the upstream login's are the server's.
impl From<AuthError> for SessionError {
    fn from(e: AuthError) -> Self {
        match e.side() {
            Side::Client => SessionError::Protocol(e.to_string()),
            Side::Upstream => SessionError::Upstream(e.to_string()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_keep_their_side() {
        let client = SessionError::from(AuthError::UnsupportedMechanism);
        assert!(client.is_protocol_violation());
        assert_eq!(
            client.to_string(),
            "protocol violation: unsupported SASL mechanism"
        );
        let upstream = SessionError::from(AuthError::ShortMd5Salt);
        assert!(!upstream.is_protocol_violation());
        assert_eq!(upstream.to_string(), "upstream: short md5 salt");
    }
}
