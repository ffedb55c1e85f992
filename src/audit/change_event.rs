//! A row change decoded from PostgreSQL's logical decoding (`cdc`), as the
//! consumer hands it to the audit path: one per inserted, updated or
//! deleted row, one per truncated table. The writer numbers it like every
//! record (`changes`).

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl ChangeOp {
    pub const ALL: [ChangeOp; 4] = [
        ChangeOp::Insert,
        ChangeOp::Update,
        ChangeOp::Delete,
        ChangeOp::Truncate,
    ];

    /// The name records use (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
            ChangeOp::Truncate => "truncate",
        }
    }
}

/// How a change was tied to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// To one statement (not yet: needs the statement's own marker).
    Statement,
    /// A verified pgtrail marker in its transaction named the session.
    Transaction,
    /// No verified marker: a write that did not pass through pgtrail.
    None,
}

impl Attribution {
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Statement => "statement",
            Attribution::Transaction => "transaction",
            Attribution::None => "none",
        }
    }
}

/// Column name → value as text, in column order; `None` is SQL NULL. A
/// column that is not in the list is absent (for `new`: an unchanged
/// TOASTed value the server did not send). JSON: an object.
pub type Columns = Vec<(Arc<str>, Option<String>)>;

/// One decoded change, with its transaction's attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The transaction's commit record (`pg_lsn` as a number).
    pub commit_lsn: u64,
    /// The change's own WAL record (rows of one multi-insert share it).
    pub lsn: u64,
    /// 0-based position of the change in its transaction: with
    /// `commit_lsn`, unique, so a replayed change is recognised.
    pub change_index: u32,
    pub xid: u32,
    /// Microseconds since the epoch, UTC (also the record's `event_time`).
    #[serde(
        serialize_with = "super::record::time_text",
        deserialize_with = "super::record::time_of_text"
    )]
    pub commit_time: i64,
    /// Names are shared with the relation cache (and the session fields
    /// below with the transaction's marker): a change allocates only its
    /// values.
    pub database: Arc<str>,
    pub schema: Arc<str>,
    pub table: Arc<str>,
    pub op: ChangeOp,
    /// The replica identity columns (every column under `REPLICA IDENTITY
    /// FULL`) and their values: new values for inserts and updates, old
    /// ones for deletes; empty for truncate.
    #[serde(with = "columns")]
    pub key: Columns,
    /// The old row as the server sent it: the key columns, or every column
    /// under `REPLICA IDENTITY FULL`; empty for inserts and for updates
    /// that kept the key of a table without FULL identity.
    #[serde(with = "columns")]
    pub old: Columns,
    #[serde(with = "columns")]
    pub new: Columns,
    /// `old` holds the whole old row.
    pub old_complete: bool,
    /// For updates whose old row is complete: the columns whose value
    /// changed; empty otherwise.
    pub changed_columns: Vec<Arc<str>>,
    /// Columns whose value was cut at `cdc.max_value_bytes`.
    pub truncated_columns: Vec<Arc<str>>,
    #[serde(with = "opt_uuid")]
    pub transaction_id: Option<uuid::Uuid>,
    /// The statement that made the change, when its marker says exactly
    /// which one (`attribution = statement`).
    pub statement_seq: Option<u64>,
    /// That statement's index within its transaction, from the marker; the
    /// writer turns it into `statement_seq` (not a record field).
    #[serde(skip)]
    pub statement_index: Option<u32>,
    /// `statement_index` is a `Before` marker's claim on the changes after
    /// it: the writer keeps it only if the transaction's end confirms it
    /// (`TransactionEvent::tail_statement`), else the change is the
    /// transaction's (not a record field).
    #[serde(skip)]
    pub statement_claimed: bool,
    pub session_id: Arc<str>,
    pub user: Arc<str>,
    pub db_role: Arc<str>,
    pub client_addr: Arc<str>,
    pub application_name: Arc<str>,
    pub attribution: Attribution,
    /// A `pgtrail` message in the transaction failed verification.
    pub forged_marker: bool,
}

/// `Columns` as a JSON object, order kept both ways.
pub(crate) mod columns {
    use super::*;

    pub fn serialize<S: Serializer>(cols: &Columns, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(cols.len()))?;
        for (name, value) in cols {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Columns, D::Error> {
        d.deserialize_map(InOrder)
    }

    struct InOrder;

    impl<'de> Visitor<'de> for InOrder {
        type Value = Columns;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of column names to text or null")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Columns, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry::<Arc<str>, Option<String>>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
}

/// An optional UUID as hyphenated text or `null` (the `uuid` crate is
/// built without serde).
mod opt_uuid {
    use super::*;

    pub fn serialize<S: Serializer>(id: &Option<uuid::Uuid>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => {
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                s.serialize_some(id.hyphenated().encode_lower(&mut text) as &str)
            }
            None => s.serialize_none(),
        }
    }

    /// Text that is no UUID reads as null, as in the other records.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<uuid::Uuid>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.and_then(|t| uuid::Uuid::parse_str(&t).ok()))
    }
}
