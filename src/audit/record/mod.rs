//! Audit records as written to sinks. Field names follow the record contract
//! of the design brief; JSON Lines and ClickHouse use the same names.

pub mod json;
mod time;

pub use time::{format_micros, format_time, micros_since_epoch, parse_time_micros, write_micros};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;
use uuid::Uuid;

use super::event::{Protocol, SessionEventType, TransactionOutcome};
pub use crate::identity::EndUser;

/// Columns shared by every record: identity and order of the record itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordHeader {
    /// UUIDv7; hyphenated text in JSON.
    #[serde(serialize_with = "uuid_text", deserialize_with = "uuid_of_text")]
    pub event_id: Uuid,
    pub instance_id: String,
    /// Per-instance sequence, shared by every record type, so a gap shows.
    pub seq: u64,
    /// Microseconds since the epoch, UTC; RFC 3339 text in JSON (and
    /// ClickHouse's `DateTime64(6)` or Int64 as it is).
    #[serde(serialize_with = "time_text", deserialize_with = "time_of_text")]
    pub event_time: i64,
    /// The chain value after this record (`audit::chain`): hex text, empty
    /// when unknown (records of earlier builds). In a gap record that stands
    /// for skipped seqs, the value after the last of them.
    #[serde(default, with = "crate::audit::chain::hex_text")]
    pub chain: Option<crate::audit::chain::ChainValue>,
}

/// A value from a small fixed set (kind, class, parser, ...): borrowed from
/// the program, so a record costs no allocation for it; read back as owned.
pub type Label = std::borrow::Cow<'static, str>;

/// One row of `statements`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub duration_us: u64,
    pub session_id: String,
    /// The server's process id (`pg_stat_activity.pid`, the server log's
    /// `%p`); the client was handed the same pid. 0 in records of earlier
    /// builds.
    #[serde(default)]
    pub backend_pid: u32,
    pub user: String,
    pub db_role: String,
    /// The acting role (`current_user`) when the statement ran: `db_role`
    /// changed by roles set at startup and by SET ROLE / SET SESSION
    /// AUTHORIZATION (`audit::role`). Empty in records of earlier builds.
    #[serde(default)]
    pub effective_role: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub application_name: String,
    pub protocol: Protocol,
    pub statement: String,
    pub statement_truncated: bool,
    /// The text held bytes that are not UTF-8; they are escaped as `\xNN`.
    pub statement_escaped: bool,
    /// Stable hash of the normalized statement (see `sql`).
    pub fingerprint: u64,
    pub normalized: String,
    pub kind: Label,
    pub class: Label,
    pub crud: Label,
    pub audit_class: Label,
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    pub functions: Vec<String>,
    pub parser: Label,
    pub command_tag: String,
    pub rows: u64,
    pub success: bool,
    pub sqlstate: String,
    pub error_message: String,
    pub txn_status: Label,
    /// The transaction the statement ran in (`transactions`); the nil UUID
    /// in records of earlier builds.
    #[serde(
        default,
        serialize_with = "uuid_text",
        deserialize_with = "uuid_of_text"
    )]
    pub transaction_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Option<String>>>,
    /// The columns it touched (schema version 8); empty in records of
    /// earlier builds.
    #[serde(flatten)]
    pub columns: ColumnAccess,
    /// The end user the application claimed (schema version 9); empty in
    /// records of earlier builds and when nothing was claimed.
    #[serde(flatten)]
    pub end_user: Arc<EndUser>,
}

/// The columns a statement read and wrote, resolved with the catalog
/// (`crate::catalog::resolve`), and their sensitivity labels.
/// In JSON each is left out when empty (0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnAccess {
    /// `schema.table.column` when resolved; as written otherwise
    /// (`table.column`, `table.*`, `?.column`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_read: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_written: Vec<String>,
    /// The `[labels]` of those columns, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// What the columns were reached through: `view s.v`, `function s.f`,
    /// `DO block`, `prepared statement p`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// Why the columns may be incomplete (dynamic SQL, no catalog, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_unresolved: Vec<String>,
    /// The catalog version they were resolved with; 0: none.
    #[serde(skip_serializing_if = "is_zero")]
    pub catalog_version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ColumnAccess {
    pub fn is_empty(&self) -> bool {
        *self == ColumnAccess::default()
    }
}

/// One row of `transactions`: a transaction that ended, after its last
/// statement's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransactionRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    #[serde(serialize_with = "uuid_text", deserialize_with = "uuid_of_text")]
    pub transaction_id: Uuid,
    pub session_id: String,
    pub backend_pid: u32,
    pub user: String,
    pub db_role: String,
    /// The acting role when it ended.
    pub effective_role: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub application_name: String,
    pub outcome: TransactionOutcome,
    pub statements: u64,
    /// Seqs of its first and last statement records (0 when none was
    /// kept: a `fail_open` gap took them).
    pub first_seq: u64,
    pub last_seq: u64,
    /// When its first statement started (RFC 3339 in JSON).
    #[serde(serialize_with = "time_text", deserialize_with = "time_of_text")]
    pub started_at: i64,
    pub duration_us: u64,
    /// Rows its writing statements reported (INSERT, UPDATE, DELETE,
    /// MERGE, COPY FROM), less those undone by ROLLBACK TO SAVEPOINT; 0
    /// unless it committed.
    pub rows_changed: u64,
    /// The server's transaction id when it wrote; known with `[cdc]`, else
    /// null.
    pub xid: Option<u64>,
    /// Seq ranges (inclusive, pairwise) of its statements undone by
    /// ROLLBACK TO SAVEPOINT.
    pub undone_from_seq: Vec<u64>,
    pub undone_to_seq: Vec<u64>,
    /// The end user claimed when it ended (schema version 9).
    #[serde(flatten)]
    pub end_user: Arc<EndUser>,
}

/// One row of `sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub event_type: SessionEventType,
    pub session_id: String,
    /// The server's process id, which the client also holds: 0 on the
    /// connect record and on logins that never reached the server.
    #[serde(default)]
    pub backend_pid: u32,
    pub user: String,
    pub db_role: String,
    /// The acting role: as set at startup on connect and auth records, as
    /// the session left it on the disconnect record.
    #[serde(default)]
    pub effective_role: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub application_name: String,
    pub tls: bool,
    pub auth_method: String,
    pub reason: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub statements: u64,
    pub duration_us: u64,
}

/// Events that could not be audited (`fail_open` with a full queue).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GapRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub missing_events: u64,
    pub reason: String,
    /// Seqs `[seq, seq + skipped_seqs)` a sink did not keep: the record
    /// stands in their place and is no link of the chain (its `chain` is
    /// the value after them). 0 for events that never got a seq.
    #[serde(default)]
    pub skipped_seqs: u64,
}

/// One row of `checkpoints`: the chain value so far, signed, also written
/// outside ClickHouse (`audit.checkpoint_file`, the log).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    /// The chain value before this record (after seq - 1), hex.
    pub previous_chain: String,
    /// Records this run has chained, this one included.
    pub records: u64,
    /// The first 16 hex digits of SHA-256 of the public key; empty when
    /// unsigned.
    pub key_id: String,
    /// Ed25519 over the record's canonical bytes with `signature` empty,
    /// hex; empty when no signing key is configured.
    pub signature: String,
}

/// The kinds of lifecycle record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleEvent {
    Start,
    Stop,
    Reload,
    Users,
}

impl LifecycleEvent {
    pub fn name(self) -> &'static str {
        match self {
            LifecycleEvent::Start => "start",
            LifecycleEvent::Stop => "stop",
            LifecycleEvent::Reload => "reload",
            LifecycleEvent::Users => "users",
        }
    }
}

/// One row of `lifecycle`: pgtrail itself started, stopped, reloaded its
/// configuration or its users file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub event_type: LifecycleEvent,
    pub version: String,
    /// SHA-256 of the configuration with secrets left out, hex.
    pub config_digest: String,
    /// What changed (reload, users) or how the run ended (stop), as text.
    pub detail: String,
    /// On start: the last seq of the previous run this chain continues
    /// from (0 for a new instance); on stop: this run's last seq before it.
    pub previous_seq: u64,
    /// On start: the chain value this record continues from, hex.
    pub previous_chain: String,
    /// On start: whether the previous run stopped cleanly (its stop record
    /// is the last of its records).
    pub clean: bool,
}

/// One row of `changes`: a row change decoded from PostgreSQL's logical
/// decoding; `event_time` is its transaction's commit time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    #[serde(flatten)]
    pub change: crate::audit::change_event::ChangeEvent,
    /// The end user of the statement (or transaction) the change is
    /// attributed to (schema version 9).
    #[serde(flatten)]
    pub end_user: Arc<EndUser>,
}

/// What a sink writes; `record` in JSON names the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    #[serde(rename = "statements")]
    Statement(Box<StatementRecord>),
    #[serde(rename = "sessions")]
    Session(Box<SessionRecord>),
    #[serde(rename = "gaps")]
    Gap(GapRecord),
    #[serde(rename = "transactions")]
    Transaction(Box<TransactionRecord>),
    #[serde(rename = "changes")]
    Change(Box<ChangeRecord>),
    #[serde(rename = "checkpoints")]
    Checkpoint(Box<CheckpointRecord>),
    #[serde(rename = "lifecycle")]
    Lifecycle(Box<LifecycleRecord>),
}

impl Record {
    pub fn header(&self) -> &RecordHeader {
        match self {
            Record::Statement(s) => &s.header,
            Record::Session(s) => &s.header,
            Record::Gap(g) => &g.header,
            Record::Transaction(t) => &t.header,
            Record::Change(c) => &c.header,
            Record::Checkpoint(c) => &c.header,
            Record::Lifecycle(l) => &l.header,
        }
    }

    pub fn header_mut(&mut self) -> &mut RecordHeader {
        match self {
            Record::Statement(s) => &mut s.header,
            Record::Session(s) => &mut s.header,
            Record::Gap(g) => &mut g.header,
            Record::Transaction(t) => &mut t.header,
            Record::Change(c) => &mut c.header,
            Record::Checkpoint(c) => &mut c.header,
            Record::Lifecycle(l) => &mut l.header,
        }
    }

    /// Its table's name (`record` in JSON).
    pub fn table(&self) -> &'static str {
        match self {
            Record::Statement(_) => "statements",
            Record::Session(_) => "sessions",
            Record::Gap(_) => "gaps",
            Record::Transaction(_) => "transactions",
            Record::Change(_) => "changes",
            Record::Checkpoint(_) => "checkpoints",
            Record::Lifecycle(_) => "lifecycle",
        }
    }

    /// Whether it is a link of the chain: all are but a gap record standing
    /// for skipped seqs.
    pub fn is_link(&self) -> bool {
        !matches!(self, Record::Gap(g) if g.skipped_seqs > 0)
    }

    pub fn seq(&self) -> u64 {
        self.header().seq
    }
}

fn uuid_text<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    s.serialize_str(id.hyphenated().encode_lower(&mut text))
}

/// Text that is no UUID reads as the nil UUID: a damaged id must not make
/// a spooled record unreadable.
fn uuid_of_text<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
    let text = String::deserialize(d)?;
    Ok(Uuid::parse_str(&text).unwrap_or_default())
}

pub(crate) fn time_text<S: Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_micros(*micros))
}

/// Text that is no time reads as 0 (1970-01-01), for the same reason.
pub(crate) fn time_of_text<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let text = String::deserialize(d)?;
    Ok(parse_time_micros(&text).unwrap_or(0))
}
