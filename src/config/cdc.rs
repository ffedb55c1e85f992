//! `[cdc]`: row changes from PostgreSQL's logical decoding: what
//! `pgtrail cdc setup` prepares on the server, and, with `enabled`, the
//! decoding consumer and the markers sessions leave in transactions.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::Secret;

/// How finely the markers attribute changes (`cdc.attribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributionLevel {
    Statement,
    Transaction,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdcConfig {
    /// Consume the decoding stream into `changes` records, and mark each
    /// client transaction that wrote so its changes name their person.
    pub enabled: bool,
    /// With `enabled`: run the decoding consumer here. Several pgtrail
    /// instances in front of one server all mark transactions, but a slot
    /// has one reader: set `false` on all but one.
    pub consume: bool,
    /// `statement`: a marker before each statement that may write in a
    /// block after its first, so changes name their statement;
    /// `transaction`: one marker per block, changes name their
    /// transaction, and their statement only when it was the one that may
    /// write.
    pub attribution: AttributionLevel,
    /// The key markers are signed with (created 0600 when absent): every
    /// pgtrail instance in front of the same server must share it. Unset:
    /// `marker.key` in `audit.spool_dir`, or beside `audit.file`.
    pub marker_key_file: Option<PathBuf>,
    /// Columns, `schema.table.column`, whose values are stored as a keyed
    /// hash (equality stays visible, the value does not).
    pub redact_columns: Vec<String>,
    /// Values longer than this many bytes are cut (with a flag).
    pub max_value_bytes: usize,
    /// The role of the replication connection: it needs the REPLICATION
    /// attribute (and to own the published tables, or be superuser, for
    /// `cdc setup --apply` to create the publication).
    pub user: String,
    pub password: Secret,
    /// The database whose changes are decoded (a slot belongs to one).
    pub database: String,
    /// The logical replication slot (plugin `pgoutput`).
    pub slot: String,
    pub publication: String,
    /// Tables published, `schema.table`; empty publishes every table.
    pub tables: Vec<String>,
    /// Tables set to `REPLICA IDENTITY FULL`, so that updates and deletes
    /// carry every old value (`old_complete`), not only the key.
    pub replica_identity_full: Vec<String>,
}

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            enabled: false,
            consume: true,
            attribution: AttributionLevel::Statement,
            marker_key_file: None,
            redact_columns: Vec::new(),
            max_value_bytes: 8192,
            user: "pgtrail_cdc".into(),
            password: Secret::default(),
            database: "postgres".into(),
            slot: "pgtrail".into(),
            publication: "pgtrail".into(),
            tables: Vec::new(),
            replica_identity_full: Vec::new(),
        }
    }
}
