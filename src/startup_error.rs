//! Why a server could not start, by what failed: the binary prints it;
//! an embedder or a test can tell a port in use from a bad file.

use std::fmt;
use std::net::SocketAddr;

use crate::auth::users::UsersError;
use crate::tls::TlsError;

#[derive(Debug)]
pub enum StartupError {
    /// The configuration does not validate (including `upstream.url`).
    Config(String),
    /// A TLS certificate, key or CA file.
    Tls(TlsError),
    /// The users file (proxy mode).
    Users(UsersError),
    /// The audit destinations: file, spool, ClickHouse, the writer thread.
    Audit(crate::audit::start::AuditStartError),
    /// `[cdc]`'s marker key file.
    MarkerKey(crate::cdc::marker::MarkerKeyError),
    /// An `[[identity.keys]]` key.
    IdentityKey(crate::identity::verify::KeyError),
    /// A listener could not be bound; `what` names the setting.
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Config(m) => f.write_str(m),
            StartupError::Audit(e) => e.fmt(f),
            StartupError::Tls(e) => e.fmt(f),
            StartupError::Users(e) => e.fmt(f),
            StartupError::MarkerKey(e) => e.fmt(f),
            StartupError::IdentityKey(e) => e.fmt(f),
            StartupError::Listen { what, addr, source } => write!(f, "{what} on {addr}: {source}"),
        }
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartupError::Listen { source, .. } => Some(source),
            StartupError::Tls(e) => Some(e),
            StartupError::Users(e) => Some(e),
            StartupError::Audit(e) => Some(e),
            StartupError::MarkerKey(e) => Some(e),
            StartupError::IdentityKey(e) => Some(e),
            StartupError::Config(_) => None,
        }
    }
}

/// `upstream.url` is part of the configuration.
impl From<crate::config::UpstreamUrlError> for StartupError {
    fn from(e: crate::config::UpstreamUrlError) -> Self {
        StartupError::Config(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_busy_port_keeps_its_io_error() {
        let e = StartupError::Listen {
            what: "listen",
            addr: SocketAddr::from(([127, 0, 0, 1], 6432)),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert!(e.to_string().starts_with("listen on 127.0.0.1:6432: "));
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse));
    }
}
