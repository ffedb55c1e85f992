//! Why a replication connection failed: the server's own errors by
//! SQLSTATE, with its message, and pgtrail's.

use std::fmt;
use std::time::Duration;

use crate::cdc::pgoutput::DecodeError;
use crate::config::UpstreamUrlError;
use crate::protocol::backend::ErrorFields;
use crate::protocol::Malformed;
use crate::session::error::SessionError;
use crate::tls::TlsError;

/// What an ErrorResponse's SQLSTATE means for the replication client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    /// 42704: the slot (or, at the first change, a publication) does not exist.
    UndefinedObject,
    /// 55000: the slot was invalidated (its WAL is gone), or is not usable
    /// as asked (a physical slot, another plugin).
    NotInPrerequisiteState,
    /// 55006: another connection is using the slot.
    ObjectInUse,
    /// 42501: the role may not replicate, or may not read a published table.
    InsufficientPrivilege,
    /// 28000 / 28P01: the login was refused.
    LoginRefused,
    /// 42710: `CREATE_REPLICATION_SLOT` for a name that exists.
    DuplicateObject,
    /// Anything else: see the SQLSTATE.
    Other,
}

/// An ErrorResponse from the server, at login, for a command or mid-stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    pub sqlstate: String,
    pub message: String,
}

impl ServerError {
    pub fn from_fields(f: ErrorFields) -> Self {
        ServerError {
            severity: f.severity,
            sqlstate: f.code,
            message: f.message,
        }
    }

    pub fn kind(&self) -> ServerErrorKind {
        match self.sqlstate.as_str() {
            "42704" => ServerErrorKind::UndefinedObject,
            "55000" => ServerErrorKind::NotInPrerequisiteState,
            "55006" => ServerErrorKind::ObjectInUse,
            "42501" => ServerErrorKind::InsufficientPrivilege,
            "28000" | "28P01" => ServerErrorKind::LoginRefused,
            "42710" => ServerErrorKind::DuplicateObject,
            _ => ServerErrorKind::Other,
        }
    }
}

#[derive(Debug)]
pub enum ReplicationError {
    /// `upstream.url` does not parse.
    Url(UpstreamUrlError),
    /// The upstream TLS settings do not load.
    Tls(TlsError),
    /// Connecting, TLS, reading or writing, or the login exchange.
    Connection(SessionError),
    /// The server answered with an ErrorResponse.
    Server(ServerError),
    /// A message of the replication protocol that does not decode.
    Malformed(Malformed),
    /// A pgoutput message that does not decode.
    Decode(DecodeError),
    /// A message that does not belong where it came (its tag).
    Unexpected { tag: u8, during: &'static str },
    /// A command's answer lacks what it must hold.
    BadAnswer(&'static str),
    /// Nothing from the server for this long (keepalives included).
    ServerSilent(Duration),
    /// The server ended the COPY stream (CopyDone), e.g. at shutdown.
    StreamEnded,
}

impl fmt::Display for ReplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicationError::Url(e) => e.fmt(f),
            ReplicationError::Tls(e) => e.fmt(f),
            ReplicationError::Connection(e) => e.fmt(f),
            ReplicationError::Server(e) => {
                write!(f, "server: {} {}: {}", e.severity, e.sqlstate, e.message)
            }
            ReplicationError::Malformed(e) => e.fmt(f),
            ReplicationError::Decode(e) => e.fmt(f),
            ReplicationError::Unexpected { tag, during } => write!(
                f,
                "unexpected message {} during {during}",
                crate::protocol::frame::tag_name(*tag)
            ),
            ReplicationError::BadAnswer(what) => write!(f, "invalid answer: {what}"),
            ReplicationError::ServerSilent(d) => {
                write!(f, "nothing from the server for {} ms", d.as_millis())
            }
            ReplicationError::StreamEnded => f.write_str("the server ended the replication stream"),
        }
    }
}

impl std::error::Error for ReplicationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplicationError::Url(e) => Some(e),
            ReplicationError::Tls(e) => Some(e),
            ReplicationError::Connection(e) => Some(e),
            ReplicationError::Malformed(e) => Some(e),
            ReplicationError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SessionError> for ReplicationError {
    fn from(e: SessionError) -> Self {
        ReplicationError::Connection(e)
    }
}

impl From<Malformed> for ReplicationError {
    fn from(e: Malformed) -> Self {
        ReplicationError::Malformed(e)
    }
}

impl From<DecodeError> for ReplicationError {
    fn from(e: DecodeError) -> Self {
        ReplicationError::Decode(e)
    }
}
