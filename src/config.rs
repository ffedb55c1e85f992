//! Configuration: a TOML file, overridden by command-line flags, validated
//! once before anything starts. Secrets never appear in `Debug` output.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Nothing runs unaudited: while the audit queue is full, statements
    /// wait; while the spool is full or a sink fails, new statements of idle
    /// sessions are refused (SQLSTATE 53000).
    FailClosed,
    /// Traffic flows; gap records count what was not audited.
    FailOpen,
}

/// When a statement's result may reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Records are written and fsynced in the background, within
    /// `audit.flush_interval_ms` (plus one 2 ms writer round) of the
    /// statement's end.
    Async,
    /// The message ending a statement is held until its record is fsynced
    /// (spool or audit file), with group commit across sessions.
    BeforeAck,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// JSON Lines output; used when no ClickHouse URL is set.
    pub file: Option<PathBuf>,
    /// `file` is renamed to `<file>.<UTC time>` and started anew at this
    /// size; 0 never rotates. Rotated files are never deleted by pgtrail.
    pub file_rotate_bytes: u64,
    /// ClickHouse HTTP URL, e.g. `http://127.0.0.1:8123`; records go there
    /// (as well as to `file` when both are set).
    pub clickhouse_url: Option<String>,
    /// Identifies this pgtrail in records; generated at start when unset.
    pub instance_id: Option<String>,
    /// Events buffered between the relay and the audit writer.
    pub queue_capacity: usize,
    pub failure_policy: FailurePolicy,
    pub durability: Durability,
    /// While statements keep coming, records are handed to the sinks and
    /// fsynced at most this often (milliseconds); `before_ack` rounds with
    /// waiting statements and an emptied queue flush at once; 0 flushes
    /// every round.
    pub flush_interval_ms: u64,
    /// Record bind parameter values of extended-protocol statements.
    pub log_parameters: bool,
    /// Statement text longer than this is cut (at a character boundary) and
    /// flagged `statement_truncated`.
    pub max_statement_bytes: usize,
    /// Durable spool for records bound for ClickHouse: each record is
    /// fsynced here before it is sent, and deleted once ClickHouse has
    /// acknowledged it, so an outage or a restart loses nothing. Also keeps
    /// the generated instance id and the sequence across restarts.
    /// `None`: records wait in memory only.
    pub spool_dir: Option<PathBuf>,
    /// When the spool holds this much, `failure_policy` applies until
    /// ClickHouse has acknowledged enough to make room.
    pub spool_max_bytes: u64,
    /// Size at which a new spool segment file is started.
    pub spool_segment_bytes: u64,
    /// Without a spool: while the in-memory ClickHouse backlog is full and
    /// ClickHouse keeps acknowledging, the audit writer waits (statements
    /// slow down); only after a failed insert, or this long (milliseconds)
    /// without an acknowledgement, does `failure_policy` apply.
    pub clickhouse_stall_timeout_ms: u64,
    /// ClickHouse database, credentials, batching and schema options.
    pub clickhouse: ClickHouseConfig,
}

/// The main settings, `clickhouse_url` with its password masked.
impl fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self
            .clickhouse_url
            .as_deref()
            .map(crate::secrets::masked_url);
        f.debug_struct("AuditConfig")
            .field("file", &self.file)
            .field("clickhouse_url", &url)
            .field("instance_id", &self.instance_id)
            .field("failure_policy", &self.failure_policy)
            .field("durability", &self.durability)
            .field("spool_dir", &self.spool_dir)
            .field("clickhouse", &self.clickhouse)
            .finish_non_exhaustive()
    }
}

/// `[audit.clickhouse]`: used when `audit.clickhouse_url` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// Database holding `statements`, `sessions`, `gaps`, `schema_migrations`.
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// A batch is sent when it holds this many rows ...
    pub batch_rows: usize,
    /// ... or about this many bytes (RowBinary, before compression) ...
    pub batch_bytes: usize,
    /// ... or when its first row is this old, whichever comes first.
    pub batch_ms: u64,
    /// Row TTL on modern servers (on 18.16: drop old partitions yourself).
    pub retention_days: u32,
    /// Cluster name: tables are created `ON CLUSTER`, replicated, behind
    /// Distributed tables.
    pub cluster: Option<String>,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            database: "pgtrail".into(),
            user: "default".into(),
            password: Secret::default(),
            batch_rows: 10_000,
            batch_bytes: 16 << 20,
            batch_ms: 1000,
            retention_days: 365,
            cluster: None,
        }
    }
}

impl ClickHouseConfig {
    /// The schema options these keys imply.
    pub fn schema_options(&self) -> crate::audit::clickhouse::schema::SchemaOptions {
        crate::audit::clickhouse::schema::SchemaOptions {
            database: self.database.clone(),
            retention_days: self.retention_days,
            cluster: self.cluster.clone(),
        }
    }
}

/// A plain ClickHouse identifier (no quoting questions in DDL).
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            file: None,
            file_rotate_bytes: 1 << 30,
            clickhouse_url: None,
            instance_id: None,
            queue_capacity: 65_536,
            failure_policy: FailurePolicy::FailClosed,
            durability: Durability::Async,
            flush_interval_ms: 10,
            log_parameters: false,
            max_statement_bytes: 1 << 20,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_segment_bytes: 64 << 20,
            clickhouse_stall_timeout_ms: 10_000,
            clickhouse: ClickHouseConfig::default(),
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

    /// Checks everything that can be checked without connecting anywhere.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |s: String| Err(ConfigError(s));
        self.upstream
            .host_port()
            .map_err(|e| ConfigError(e.to_string()))?;
        if self.worker_threads == 0 {
            return err("worker_threads must be at least 1".into());
        }
        if self.max_connections == 0 {
            return err("max_connections must be at least 1".into());
        }
        if self.limits.max_message_bytes < 1024 {
            return err("limits.max_message_bytes must be at least 1024".into());
        }
        if self.audit.queue_capacity == 0 {
            return err("audit.queue_capacity must be at least 1".into());
        }
        if self.audit.clickhouse_stall_timeout_ms == 0 {
            return err("audit.clickhouse_stall_timeout_ms must be at least 1".into());
        }
        if self.audit.spool_max_bytes == 0 || self.audit.spool_segment_bytes == 0 {
            return err("audit.spool_max_bytes and spool_segment_bytes must be at least 1".into());
        }
        self.validate_durability()?;
        let ch = &self.audit.clickhouse;
        if !is_identifier(&ch.database) {
            return err(format!(
                "audit.clickhouse.database {:?} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)",
                ch.database
            ));
        }
        if let Some(c) = ch.cluster.as_deref().filter(|c| !is_identifier(c)) {
            return err(format!(
                "audit.clickhouse.cluster {c:?} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)"
            ));
        }
        if ch.batch_rows == 0 || ch.batch_bytes == 0 || ch.batch_ms == 0 || ch.retention_days == 0 {
            return err(
                "audit.clickhouse.batch_rows, batch_bytes, batch_ms and retention_days must be at least 1"
                    .into(),
            );
        }
        if self.auth.mode == AuthMode::Proxy && self.auth.users_file.is_none() {
            return err("auth.users_file is required when auth.mode = \"proxy\"".into());
        }
        let needs_ca = matches!(
            self.upstream.tls,
            UpstreamTlsMode::VerifyCa | UpstreamTlsMode::VerifyFull
        );
        if needs_ca && self.upstream.ca_file.is_none() {
            return err(
                "upstream.ca_file is required for upstream.tls = verify-ca or verify-full".into(),
            );
        }
        if self.tls.mode != ClientTlsMode::Disable
            && (self.tls.cert_file.is_none() || self.tls.key_file.is_none())
        {
            return err(
                "tls.cert_file and tls.key_file are required unless tls.mode = \"disable\"".into(),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return err(format!("log.level {:?}: {e}", self.log.level));
        }
        Ok(())
    }

    /// A fixed instance id needs the spool (it keeps `seq`); `before_ack`
    /// needs a destination that can make a record durable before ClickHouse
    /// has it: the spool, or the audit file.
    fn validate_durability(&self) -> Result<(), ConfigError> {
        let a = &self.audit;
        if a.instance_id.is_some() && a.clickhouse_url.is_some() && a.spool_dir.is_none() {
            // Only the spool carries the sequence across restarts; a fixed id
            // with seq restarting at 1 would make ClickHouse merge records of
            // different runs as duplicates of one another.
            return Err(ConfigError(
                "audit.instance_id with audit.clickhouse_url needs audit.spool_dir: without a spool seq starts again at 1 on every start, and ClickHouse would deduplicate different records that share (instance_id, seq); set audit.spool_dir, or leave audit.instance_id unset (a new id per start)".into(),
            ));
        }
        if self.audit.durability != Durability::BeforeAck {
            return Ok(());
        }
        if a.clickhouse_url.is_some() && a.spool_dir.is_none() {
            return Err(ConfigError(
                "audit.durability = \"before_ack\" with audit.clickhouse_url needs audit.spool_dir (records are made durable there)".into(),
            ));
        }
        if a.clickhouse_url.is_none() && a.file.is_none() {
            return Err(ConfigError(
                "audit.durability = \"before_ack\" needs audit.file or audit.clickhouse_url with audit.spool_dir".into(),
            ));
        }
        Ok(())
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.shutdown_timeout_ms)
    }

    pub fn startup_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.startup_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked_in_debug() {
        let mut c = Config::default();
        c.upstream.url = "postgres://u:pg-secret@db:5432".into();
        c.audit.clickhouse_url = Some("http://u:ch-secret@ch:8123".into());
        let text = format!("{c:?}");
        assert!(
            !text.contains("pg-secret") && !text.contains("ch-secret"),
            "{text}"
        );
        assert!(text.contains("postgres://u:***@db:5432"), "{text}");
    }

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::from_toml("listen = \"127.0.0.1:1\"\nlistne = 3\n").unwrap_err();
        assert!(e.0.contains("listne"), "{e}");
    }

    #[test]
    fn secrets_are_hidden() {
        let c = Config::from_toml("[auth.role_passwords]\napp = \"hunter2\"\n").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn upstream_url_forms() {
        let mut u = UpstreamConfig::default();
        for (url, host, port) in [
            ("postgres://db:5433", "db", 5433),
            ("postgresql://u:p@db/x", "db", 5432),
            ("postgres://[::1]:6000", "::1", 6000),
        ] {
            u.url = url.into();
            assert_eq!(u.host_port().unwrap(), (host.to_string(), port));
        }
        u.url = "http://x".into();
        assert!(matches!(
            u.host_port(),
            Err(UpstreamUrlError::Form {
                why: UrlFault::Scheme,
                ..
            })
        ));
        u.url = "postgres://u:pw@db:x".into();
        let e = u.host_port().unwrap_err();
        assert_eq!(e.to_string(), "upstream.url: invalid port \"x\"");
        assert!(std::error::Error::source(&e).is_some());
    }

    /// The example file documents every key with its default value.
    #[test]
    fn example_file_shows_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/pgtrail.example.toml");
        let example = Config::from_file(Path::new(path)).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let as_value = |c: &Config| toml::Value::try_from(c).unwrap();
        assert_eq!(as_value(&example), as_value(&Config::default()));
        let mut keys = Vec::new();
        collect_keys(&toml::Value::try_from(full_config()).unwrap(), &mut keys);
        for key in keys {
            assert!(
                text.contains(&format!("{key} =")),
                "pgtrail.example.toml does not mention {key}"
            );
        }
    }

    /// A config with every optional key set, so that every key is listed.
    fn full_config() -> Config {
        let mut c = Config::default();
        c.admin_listen = Some(c.listen);
        c.upstream.ca_file = Some("x".into());
        c.upstream.server_name = Some("x".into());
        c.auth.users_file = Some("x".into());
        c.auth.default_db_role = Some("x".into());
        c.tls.cert_file = Some("x".into());
        c.tls.key_file = Some("x".into());
        c.tls.client_ca_file = Some("x".into());
        c.audit.file = Some("x".into());
        c.audit.clickhouse_url = Some("x".into());
        c.audit.instance_id = Some("x".into());
        c.audit.spool_dir = Some("x".into());
        c.audit.clickhouse.cluster = Some("x".into());
        c
    }

    fn collect_keys(v: &toml::Value, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                if v.is_table() {
                    collect_keys(v, out);
                } else {
                    out.push(k.clone());
                }
            }
        }
    }

    #[test]
    fn clickhouse_names_are_identifiers() {
        let c = Config::from_toml("[audit.clickhouse]\ndatabase = \"a-b\"\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .0
            .contains("audit.clickhouse.database"));
        let c = Config::from_toml("[audit.clickhouse]\ncluster = \"x y\"\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .0
            .contains("audit.clickhouse.cluster"));
    }

    #[test]
    fn proxy_mode_needs_users_file() {
        let c = Config::from_toml("[auth]\nmode = \"proxy\"\n").unwrap();
        assert!(c.validate().unwrap_err().0.contains("users_file"));
    }

    #[test]
    fn fixed_instance_id_for_clickhouse_needs_the_spool() {
        let text = "[audit]\nclickhouse_url = \"http://ch:8123\"\ninstance_id = \"p1\"\n";
        let c = Config::from_toml(text).unwrap();
        assert!(c.validate().unwrap_err().0.contains("audit.spool_dir"));
        let c = Config::from_toml(&format!("{text}spool_dir = \"/var/lib/pgtrail\"\n")).unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn before_ack_needs_a_durable_destination() {
        let c = Config::from_toml("[audit]\ndurability = \"before_ack\"\n").unwrap();
        assert!(c.validate().unwrap_err().0.contains("before_ack"));
        let text = "[audit]\ndurability = \"before_ack\"\nclickhouse_url = \"http://ch:8123\"\n";
        let c = Config::from_toml(text).unwrap();
        assert!(c.validate().unwrap_err().0.contains("spool_dir"));
        let c = Config::from_toml("[audit]\ndurability = \"before_ack\"\nfile = \"a.jsonl\"\n")
            .unwrap();
        assert!(c.validate().is_ok());
    }
}
