//! `[audit]` and `[audit.clickhouse]`: where records go, how durable they
//! are before a result reaches the client, and what happens when they
//! cannot be written.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

use super::Secret;

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
    /// A signed checkpoint of the audit chain after this many records ...
    pub checkpoint_records: u64,
    /// ... or this long (milliseconds) after the last one with records
    /// since, whichever first; also at start and at a clean stop.
    pub checkpoint_interval_ms: u64,
    /// Ed25519 private key (PKCS#8 PEM, `pgtrail keygen`) checkpoints are
    /// signed with; without one they are written unsigned.
    pub signing_key_file: Option<PathBuf>,
    /// Append-only copy of every checkpoint, outside ClickHouse (default:
    /// `checkpoints.jsonl` in `spool_dir`, else `<file>.checkpoints`).
    pub checkpoint_file: Option<PathBuf>,
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
            .field("signing_key_file", &self.signing_key_file)
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
    pub fn schema_options(&self) -> crate::audit::sink::clickhouse::schema::SchemaOptions {
        crate::audit::sink::clickhouse::schema::SchemaOptions {
            database: self.database.clone(),
            retention_days: self.retention_days,
            cluster: self.cluster.clone(),
        }
    }
}

/// A plain ClickHouse identifier (no quoting questions in DDL).
pub(super) fn is_identifier(s: &str) -> bool {
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
            checkpoint_records: 10_000,
            checkpoint_interval_ms: 60_000,
            signing_key_file: None,
            checkpoint_file: None,
        }
    }
}
