//! `[cdc]`: row changes from PostgreSQL's logical decoding. For now it
//! names what `pgtrail cdc setup` prepares on the server; the decoding
//! consumer reads the same section.

use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdcConfig {
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
