//! The console's own configuration file (`pgtrail console --config`): it
//! runs apart from the proxy, so it does not read the proxy's file.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! clickhouse_url = "http://127.0.0.1:8123"
//! database = "pgtrail"
//! clickhouse_user = "console"          # password: CLICKHOUSE_PASSWORD
//! users_file = "console-users.toml"    # pgtrail console user add
//! session_minutes = 480
//! public_key = "checkpoint.pub"        # for the chain check
//! [tls]
//! cert_file = "console.crt"
//! key_file = "console.key"
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub listen: SocketAddr,
    /// ClickHouse HTTP URL the audit trail is read from.
    pub clickhouse_url: Option<String>,
    /// The database pgtrail writes to (`audit.clickhouse.database`).
    pub database: String,
    /// ClickHouse user; the password comes from `CLICKHOUSE_PASSWORD`.
    pub clickhouse_user: Option<String>,
    /// Console people and their roles (`pgtrail console user add`).
    pub users_file: PathBuf,
    /// A login lasts this long, then the person logs in again.
    pub session_minutes: u64,
    /// Served over TLS when set (the cookie is then `Secure`).
    pub tls: Option<ConsoleTls>,
    /// Rows per page of a list (at most `MAX_PAGE_ROWS`).
    pub page_rows: u32,
    /// The Ed25519 public key checkpoints are signed with, for the
    /// console's chain check (as `pgtrail verify --public-key`).
    pub public_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The most rows a page or an export shows, whatever the configuration.
pub const MAX_PAGE_ROWS: u32 = 1000;
/// The most rows a CSV export holds.
pub const MAX_EXPORT_ROWS: u32 = 100_000;

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            clickhouse_url: None,
            database: "pgtrail".into(),
            clickhouse_user: None,
            users_file: PathBuf::from("console-users.toml"),
            session_minutes: 480,
            tls: None,
            page_rows: 200,
            public_key: None,
        }
    }
}

#[derive(Debug)]
pub enum ConsoleConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Parse {
        path: PathBuf,
        message: String,
    },
    Invalid(String),
}

impl fmt::Display for ConsoleConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleConfigError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            ConsoleConfigError::Parse { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
            ConsoleConfigError::Invalid(why) => write!(f, "console configuration: {why}"),
        }
    }
}

impl std::error::Error for ConsoleConfigError {}

impl ConsoleConfig {
    pub fn load(path: &Path) -> Result<ConsoleConfig, ConsoleConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConsoleConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConsoleConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// What the console cannot start without.
    pub fn validate(&self) -> Result<(), ConsoleConfigError> {
        if self.clickhouse_url.is_none() {
            return Err(ConsoleConfigError::Invalid(
                "clickhouse_url is required (the console reads the trail from ClickHouse)".into(),
            ));
        }
        if !plain_identifier(&self.database) {
            return Err(ConsoleConfigError::Invalid(format!(
                "database {:?} is not a plain identifier",
                self.database
            )));
        }
        if self.session_minutes == 0 || self.page_rows == 0 {
            return Err(ConsoleConfigError::Invalid(
                "session_minutes and page_rows must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn page_rows(&self) -> u32 {
        self.page_rows.min(MAX_PAGE_ROWS)
    }
}

/// Letters, digits and `_`, not starting with a digit: safe to backquote
/// into SQL (the only identifier from configuration that is).
pub fn plain_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let c: ConsoleConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nclickhouse_url = \"http://x:8123\"\n[tls]\ncert_file = \"a\"\nkey_file = \"b\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(c.tls.is_some());
        c.validate().unwrap();
        assert!(toml::from_str::<ConsoleConfig>("nope = 1").is_err());
        let bad = ConsoleConfig {
            clickhouse_url: Some("http://x".into()),
            database: "a`b".into(),
            ..ConsoleConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(ConsoleConfig::default().validate().is_err());
    }
}
