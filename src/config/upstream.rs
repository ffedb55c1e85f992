//! `[upstream]`: where PostgreSQL is, and how pgtrail's TLS to it checks
//! the server; the URL's host and port.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// `postgres://host:port`; user, password and database in the URL are ignored.
    pub url: String,
    pub tls: UpstreamTlsMode,
    /// CA bundle for `verify-ca` and `verify-full`.
    pub ca_file: Option<PathBuf>,
    /// Name checked against the server certificate; defaults to the URL host.
    pub server_name: Option<String>,
    pub connect_timeout_ms: u64,
}

/// The URL with its password masked, like every other place it is shown.
impl fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("url", &crate::secrets::masked_url(&self.url))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("server_name", &self.server_name)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            url: "postgres://127.0.0.1:5432".into(),
            tls: UpstreamTlsMode::Disable,
            ca_file: None,
            server_name: None,
            connect_timeout_ms: 5000,
        }
    }
}

impl UpstreamConfig {
    /// Host and port from `url`.
    pub fn host_port(&self) -> Result<(String, u16), UpstreamUrlError> {
        let bad = |why| UpstreamUrlError::Form {
            url: crate::secrets::masked_url(&self.url),
            why,
        };
        let rest = self
            .url
            .strip_prefix("postgres://")
            .or_else(|| self.url.strip_prefix("postgresql://"))
            .ok_or_else(|| bad(UrlFault::Scheme))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let hostport = authority.rsplit('@').next().unwrap_or_default();
        let parse_port = |p: &str| {
            p.parse::<u16>().map_err(|source| UpstreamUrlError::Port {
                port: p.to_string(),
                source,
            })
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (h, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad(UrlFault::UnclosedBracket))?;
            match after.strip_prefix(':') {
                Some(p) => (h, parse_port(p)?),
                None if after.is_empty() => (h, 5432),
                None => return Err(bad(UrlFault::JunkAfterBracket)),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, parse_port(p)?),
                None => (hostport, 5432),
            }
        };
        if host.is_empty() {
            return Err(bad(UrlFault::NoHost));
        }
        Ok((host.to_string(), port))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

/// What is wrong with `upstream.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlFault {
    /// Not `postgres://` or `postgresql://`.
    Scheme,
    UnclosedBracket,
    JunkAfterBracket,
    NoHost,
}

/// `upstream.url` does not name a host and port; the URL is kept with its
/// password masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamUrlError {
    Form {
        url: String,
        why: UrlFault,
    },
    Port {
        port: String,
        source: std::num::ParseIntError,
    },
}

impl fmt::Display for UpstreamUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamUrlError::Form { url, why } => match why {
                UrlFault::Scheme => write!(f, "upstream.url {url:?} must start with postgres://"),
                UrlFault::UnclosedBracket => write!(f, "upstream.url {url:?}: unclosed ["),
                UrlFault::JunkAfterBracket => write!(f, "upstream.url {url:?}: junk after ]"),
                UrlFault::NoHost => write!(f, "upstream.url {url:?} has no host"),
            },
            UpstreamUrlError::Port { port, .. } => {
                write!(f, "upstream.url: invalid port {port:?}")
            }
        }
    }
}

impl std::error::Error for UpstreamUrlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamUrlError::Form { .. } => None,
            UpstreamUrlError::Port { source, .. } => Some(source),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}
