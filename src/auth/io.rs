//! What the authentication exchanges need from a connection, and what can
//! go wrong in them. `auth` knows nothing of sessions: the session's framed
//! stream implements [`AuthIo`] and turns an [`AuthError`] into its own
//! error (`session::login`).

use std::fmt;
use std::future::Future;

use bytes::Bytes;

use crate::protocol::frame::tag_name;
use crate::protocol::Malformed;

/// PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`: the largest PasswordMessage,
/// SASLInitialResponse or SASLResponse it reads (length word included).
pub const MAX_AUTH_MESSAGE: usize = 65_535;

/// A connection speaking the protocol's framed messages.
pub trait AuthIo {
    /// The connection's own error; the exchanges' errors become it.
    type Error: From<AuthError> + From<Malformed>;

    /// One whole message of the client's authentication phase (header
    /// included), refused before its body is buffered when it is longer
    /// than [`MAX_AUTH_MESSAGE`].
    fn read_auth_message(&mut self) -> impl Future<Output = Result<Bytes, Self::Error>> + Send;

    /// One whole message from the server (header included).
    fn read_message(&mut self) -> impl Future<Output = Result<Bytes, Self::Error>> + Send;

    fn write_message(
        &mut self,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Which peer an [`AuthError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client broke the exchange (a protocol violation, 08P01).
    Client,
    /// The server, or pgtrail's login as the mapped role.
    Upstream,
}

/// An exchange that could not go on.
#[derive(Debug)]
pub enum AuthError {
    /// The client sent another message where a PasswordMessage belongs.
    NotPassword { got: u8 },
    /// SASLInitialResponse names a mechanism other than SCRAM-SHA-256.
    UnsupportedMechanism,
    /// SASLInitialResponse with a negative length.
    MissingSaslData,
    /// The client-first-message is not SCRAM.
    ScramStart(super::scram::ScramError),
    /// The client-final-message is not SCRAM.
    ScramFinal(&'static str),
    /// No randomness for a salt.
    Random(getrandom::Error),
    /// The server wants a password and `auth.role_passwords` has none.
    NoRolePassword { role: String },
    /// AuthenticationMD5Password without its 4-byte salt.
    ShortMd5Salt,
    /// The server offers SASL without SCRAM-SHA-256.
    NoScramOffered,
    /// SASLContinue or SASLFinal (named) before SASL.
    OutOfOrder(&'static str),
    /// The server's SCRAM message is invalid.
    UpstreamScram(std::io::Error),
    /// The server's SCRAM signature does not verify.
    ServerSignature(std::io::Error),
    /// An authentication request pgtrail does not answer (GSS, SSPI, ...).
    UnsupportedRequest(i32),
    /// A message that does not belong in the login.
    UnexpectedMessage(u8),
}

impl AuthError {
    pub fn side(&self) -> Side {
        match self {
            AuthError::NotPassword { .. }
            | AuthError::UnsupportedMechanism
            | AuthError::MissingSaslData
            | AuthError::ScramStart(_)
            | AuthError::ScramFinal(_)
            | AuthError::Random(_) => Side::Client,
            AuthError::NoRolePassword { .. }
            | AuthError::ShortMd5Salt
            | AuthError::NoScramOffered
            | AuthError::OutOfOrder(_)
            | AuthError::UpstreamScram(_)
            | AuthError::ServerSignature(_)
            | AuthError::UnsupportedRequest(_)
            | AuthError::UnexpectedMessage(_) => Side::Upstream,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NotPassword { got } => {
                write!(f, "expected a password message, got {}", tag_name(*got))
            }
            AuthError::UnsupportedMechanism => f.write_str("unsupported SASL mechanism"),
            AuthError::MissingSaslData => f.write_str("missing SASL data"),
            AuthError::ScramStart(e) => write!(f, "SCRAM: {e:?}"),
            AuthError::ScramFinal(m) => write!(f, "SCRAM: {m}"),
            AuthError::Random(e) => e.fmt(f),
            AuthError::NoRolePassword { role } => write!(
                f,
                "server asks for a password and none is configured for role \"{role}\""
            ),
            AuthError::ShortMd5Salt => f.write_str("short md5 salt"),
            AuthError::NoScramOffered => {
                f.write_str("server offers no SASL mechanism pgtrail supports")
            }
            AuthError::OutOfOrder(what) => write!(f, "{what} out of order"),
            AuthError::UpstreamScram(e) => write!(f, "SCRAM: {e}"),
            AuthError::ServerSignature(e) => write!(f, "SCRAM server signature: {e}"),
            AuthError::UnsupportedRequest(code) => {
                write!(f, "unsupported authentication request {code}")
            }
            AuthError::UnexpectedMessage(tag) => {
                write!(f, "unexpected message {} during login", tag_name(*tag))
            }
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::Random(e) => Some(e),
            AuthError::UpstreamScram(e) | AuthError::ServerSignature(e) => Some(e),
            _ => None,
        }
    }
}
