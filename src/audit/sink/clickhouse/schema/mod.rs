//! ClickHouse DDL for the record contract, per server version.
//!
//! Two dialects, one set of columns (the same Rust row types feed both):
//!
//! - **Modern** (20.1 and later; production target 24.x+): `event_time` is
//!   `DateTime64(6, 'UTC')`, repeated strings are `LowCardinality(String)`,
//!   columns carry ZSTD/Delta/T64 codecs, tables are partitioned by month,
//!   expire after `retention_days` (TTL), and have skip indexes for
//!   statement search (`tokenbf_v1`) and for "what happened to this table"
//!   (`bloom_filter` on the object arrays). With a cluster name every table
//!   is created `ON CLUSTER` as `Replicated*MergeTree` named `<table>_local`,
//!   behind a `Distributed` table `<table>` sharded by
//!   `cityHash64(instance_id, seq)`, so that a replayed record reaches the
//!   shard that holds its first copy.
//! - **Old** (18.16, the server installable here): `event_time` is `Int64`
//!   microseconds since the epoch (the RowBinary encoding of
//!   `DateTime64(6)` is the same Int64, so one row type serves both),
//!   `event_date Date` is computed from it for partitioning, plain `String`
//!   and `UInt8` types, no codecs, TTL or skip indexes: retention is by
//!   dropping old partitions (`ALTER TABLE ... DROP PARTITION 202401`).
//!
//! Deduplication: every table is a `ReplacingMergeTree` whose sorting key
//! ends in `(instance_id, seq)`; the columns before them (`user`,
//! `event_time`) are fixed for a given record, so a record written twice has
//! one sorting key and merges collapse the copies. Merges happen in the
//! background, so exact queries read with `FINAL`
//! (`SELECT ... FROM pgtrail.statements FINAL`) or group by
//! `(instance_id, seq)` with `argMax`/`any`. On a cluster, `FINAL` on the
//! Distributed table is exact because copies share a shard. On top of
//! that, servers from 22.2 get an `insert_deduplication_token` per INSERT
//! (instance, table, seq range), and tables that are not replicated get
//! `non_replicated_deduplication_window = 1000` (20.10+; replicated tables
//! have a window by default), so an exact retry of a stored batch is
//! dropped at insert time and never shows as a duplicate even before a
//! merge. 18.16 has neither: there, `FINAL` (the compliance views use it)
//! is how duplicates are hidden.
//!
//! Compliance views on top of the tables: see `views`.
//!
//! `schema_migrations` records which schema versions were applied; every
//! statement is `CREATE ... IF NOT EXISTS` or an `ALTER ... MODIFY SETTING`
//! to the same value, so applying twice is harmless.
//! A view that exists is not replaced: a later version that changes a view
//! must drop it first (18.16 has no `CREATE OR REPLACE VIEW`; `DROP TABLE`
//! drops a view there), which `ensure` does before the DDL when the
//! schema version is new (`migrations::view_drops`).
//! No statement contains `?` (the `clickhouse` crate treats it as a bind
//! placeholder).
//!
//! Files: `version` (the server version and what it has), `tables` (the
//! contract's columns, sorting keys and skip indexes), `ddl` (the DDL text
//! per dialect, and the script `pgtrail schema` prints), `columns`
//! (columns added since a table was made), `views` (the compliance views),
//! `migrations` (schema versions, `schema_migrations`, the one-time view
//! upgrade); `ensure` here applies them all on a server.

mod columns;
mod ddl;
mod migrations;
mod tables;
mod version;
mod views;

use clickhouse::Client;

pub use columns::{column_additions, ColumnAddition};
pub use ddl::{script, statements};
pub use migrations::{
    applied_migrations_query, migrations_table_query, record_migrations, view_drops, view_upgrade,
    MIGRATIONS, SCHEMA_VERSION,
};
pub use tables::{column_names, table_columns, table_names, Ty, END_USER_COLUMNS};
pub use version::ServerVersion;
pub use views::VIEW_NAMES;

use super::errors::SendError;

/// What the DDL depends on besides the server version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaOptions {
    /// Database name (a plain identifier; `config` checks it).
    pub database: String,
    /// TTL of rows on modern servers.
    pub retention_days: u32,
    /// Cluster for `ON CLUSTER`, replicated tables and Distributed tables.
    pub cluster: Option<String>,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            database: "pgtrail".into(),
            retention_days: 365,
            cluster: None,
        }
    }
}

/// Reads the server version and creates what is missing: the columns old
/// servers' tables lack (`column_additions`), the `view_drops` when
/// `SCHEMA_VERSION` is not yet applied (so that every `statements` DDL
/// after them creates the changed views anew, before the views that read
/// them), every `statements` DDL, and the versions `schema_migrations`
/// lacks. Returns the version and the text the server gave for it.
/// `admin` is a client without a database selected (the DDL names it).
pub(super) async fn ensure(
    admin: &Client,
    options: &SchemaOptions,
) -> Result<(ServerVersion, String), SendError> {
    let text: String = admin
        .query("SELECT version()")
        .fetch_one()
        .await
        .map_err(|e| SendError::new("SELECT version()", &e))?;
    let version = ServerVersion::parse(&text).ok_or_else(|| {
        SendError::other(format!("unrecognised ClickHouse version {text:?}"), true)
    })?;
    add_missing_columns(admin, options, version).await?;
    let made_earlier: u8 = admin
        .query(&migrations_table_query(options))
        .fetch_one()
        .await
        .map_err(|e| SendError::new("system.tables", &e))?;
    let applied: Vec<u32> = if made_earlier == 1 {
        admin
            .query(&applied_migrations_query(options))
            .fetch_all()
            .await
            .map_err(|e| SendError::new("schema_migrations", &e))?
    } else {
        Vec::new()
    };
    if !applied.contains(&SCHEMA_VERSION) {
        for ddl in view_drops(version, options) {
            execute_ddl(admin, &ddl).await?;
        }
    }
    for ddl in statements(version, options) {
        execute_ddl(admin, &ddl).await?;
    }
    if let Some(insert) = record_migrations(options, &applied) {
        admin
            .query(&insert)
            .execute()
            .await
            .map_err(|e| SendError::new("schema_migrations", &e))?;
    }
    Ok((version, text))
}

/// Columns of a later schema version on old servers' tables (see
/// `column_additions`).
async fn add_missing_columns(
    admin: &Client,
    options: &SchemaOptions,
    version: ServerVersion,
) -> Result<(), SendError> {
    for a in column_additions(version, options) {
        let needed: u8 = admin
            .query(&a.needed_query)
            .fetch_one()
            .await
            .map_err(|e| SendError::new("system.columns", &e))?;
        if needed == 1 {
            execute_ddl(admin, &a.ddl).await?;
        }
    }
    Ok(())
}

async fn execute_ddl(admin: &Client, ddl: &str) -> Result<(), SendError> {
    admin
        .query(ddl)
        .execute()
        .await
        .map_err(|e| SendError::new(&format!("schema DDL\n{ddl}\n"), &e))
}
