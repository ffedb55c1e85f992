//! `[catalog]`: the optional read-only connection pgtrail learns tables,
//! columns, views and function bodies from, to resolve the columns
//! statements touch; `[labels]`: sensitivity labels of columns.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// `postgres://role:password@host:port/database` (host and port
    /// default to `[upstream]`'s, TLS follows `[upstream] tls`). The role
    /// needs no privilege beyond connecting: the catalog tables are
    /// readable by every role. The database is loaded at start; every
    /// other database is loaded when a session first uses it, with the
    /// same role. Empty: no catalog (columns are recorded as written).
    pub url: Secret,
    /// Also loaded at start.
    pub databases: Vec<String>,
    /// Seconds between reloads of each loaded database (DDL seen through
    /// pgtrail reloads its database at once).
    pub refresh_interval_s: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            url: Secret::default(),
            databases: Vec::new(),
            refresh_interval_s: 300,
        }
    }
}

impl CatalogConfig {
    pub fn enabled(&self) -> bool {
        !self.url.0.is_empty()
    }
}

/// `[labels]`: label name → column patterns, `schema.table.column` or
/// `table.column` (any schema), each part a name or `*`
/// (`pci = ["public.customers.card_number", "*.cards.number"]`).
pub type LabelsConfig = BTreeMap<String, Vec<String>>;
