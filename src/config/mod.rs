//! Configuration: a TOML file, overridden by command-line flags, validated
//! once before anything starts. Secrets never appear in `Debug` output.
//! `upstream` and `audit` hold those sections (re-exported here),
//! `validate` the checks of [`Config::validate`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod audit;
mod catalog;
mod cdc;
mod identity;
mod upstream;
mod validate;
pub use audit::{AuditConfig, ClickHouseConfig, Durability, FailurePolicy};
pub use catalog::{CatalogConfig, LabelsConfig};
pub use cdc::{AttributionLevel, CdcConfig};
pub use identity::{IdentityConfig, IdentityKey, RoleIdentity};
pub use upstream::{UpstreamConfig, UpstreamTlsMode, UpstreamUrlError, UrlFault};

/// A string that must not reach logs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address clients connect to.
    pub listen: SocketAddr,
    /// Admin HTTP listener (metrics, health); off when absent.
    pub admin_listen: Option<SocketAddr>,
    /// Client connections served at once; more are refused with 53300.
    pub max_connections: usize,
    /// Threads relaying traffic: 1 runs every session on one thread (no
    /// cross-thread wake-ups); more spreads sessions over that many.
    pub worker_threads: usize,
    pub upstream: UpstreamConfig,
    pub auth: AuthConfig,
    pub tls: ClientTlsConfig,
    pub limits: LimitsConfig,
    pub audit: AuditConfig,
    pub analysis: AnalysisConfig,
    pub log: LogConfig,
    pub cdc: CdcConfig,
    pub catalog: CatalogConfig,
    pub labels: LabelsConfig,
    pub identity: IdentityConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
            admin_listen: None,
            max_connections: 1000,
            worker_threads: 1,
            upstream: UpstreamConfig::default(),
            auth: AuthConfig::default(),
            tls: ClientTlsConfig::default(),
            limits: LimitsConfig::default(),
            audit: AuditConfig::default(),
            analysis: AnalysisConfig::default(),
            log: LogConfig::default(),
            cdc: CdcConfig::default(),
            catalog: CatalogConfig::default(),
            labels: LabelsConfig::default(),
            identity: IdentityConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The authentication exchange is relayed to PostgreSQL.
    Passthrough,
    /// pgtrail authenticates people itself and logs in upstream for them.
    Proxy,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Users file for `proxy` mode (see `pgtrail user add`).
    pub users_file: Option<PathBuf>,
    /// Upstream role for people whose entry names none.
    pub default_db_role: Option<String>,
    /// Passwords of the upstream roles pgtrail logs in as, by role name.
    pub role_passwords: BTreeMap<String, Secret>,
    /// The method an unknown user is asked for (proxy mode): make it the
    /// one most entries of the users file use, so the offer does not tell
    /// unknown names from known ones.
    pub unknown_user_method: crate::auth::users::Method,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Passthrough,
            users_file: None,
            default_db_role: None,
            role_passwords: BTreeMap::new(),
            unknown_user_method: crate::auth::users::Method::ScramSha256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientTlsMode {
    /// Answer SSLRequest with 'N'.
    Disable,
    /// Offer TLS; plain connections are accepted too.
    Allow,
    /// Refuse clients that do not use TLS.
    Require,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTlsConfig {
    pub mode: ClientTlsMode,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca_file: Option<PathBuf>,
}

impl Default for ClientTlsConfig {
    fn default() -> Self {
        ClientTlsConfig {
            mode: ClientTlsMode::Disable,
            cert_file: None,
            key_file: None,
            client_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest protocol message accepted from either side.
    pub max_message_bytes: usize,
    /// Time allowed from connect to the end of authentication.
    pub startup_timeout_ms: u64,
    /// On SIGTERM, how long sessions may finish before they are closed.
    pub shutdown_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: crate::protocol::frame::LARGE_MESSAGE_LIMIT,
            startup_timeout_ms: 60_000,
            shutdown_timeout_ms: 30_000,
        }
    }
}

/// Statement analysis (kind, objects, fingerprint, redaction) on the audit path.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// `none`: statements are recorded as sent, except credentials
    /// (passwords in CREATE/ALTER ROLE, USER MAPPING, dblink connection
    /// strings), which are always replaced. `literals`: every literal too.
    pub redaction: crate::sql::Redaction,
    /// Statements larger than this are classified by the lexer only.
    pub max_parse_bytes: usize,
    /// Analyses kept for repeated statement texts (0: no cache).
    pub cache_entries: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        let d = crate::sql::AnalyzerConfig::default();
        AnalysisConfig {
            redaction: d.redaction,
            max_parse_bytes: d.max_parse_bytes,
            cache_entries: d.cache_entries,
        }
    }
}

impl AnalysisConfig {
    pub fn analyzer_config(&self) -> crate::sql::AnalyzerConfig {
        crate::sql::AnalyzerConfig {
            redaction: self.redaction,
            max_parse_bytes: self.max_parse_bytes,
            cache_entries: self.cache_entries,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `pgtrail=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A configuration problem, with the key it concerns.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and parses a TOML file (not yet validated).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.shutdown_timeout_ms)
    }

    pub fn startup_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.startup_timeout_ms)
    }
}

#[cfg(test)]
mod tests;
