//! Columns added after a table was first created. Modern servers get them
//! with `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` among the `statements`;
//! 18.16 has no `IF NOT EXISTS` there, so each is added after a
//! `system.columns` check (`column_additions`). Skip indexes added since
//! (modern servers only) come the same way (`add_indexes`).

use super::ddl::{q, ty};
use super::tables::{TableSpec, Ty, TABLES};
use super::{SchemaOptions, ServerVersion};

/// Columns added after a table was first created, each placed after the
/// column before it in the table's spec. Tables of earlier versions get
/// them with `ADD COLUMN IF NOT EXISTS`.
const ADDED_COLUMNS: &[&str] = &[
    "backend_pid",
    "effective_role",
    "transaction_id",
    "skipped_seqs",
    "chain",
    "columns_read",
    "columns_written",
    "labels",
    "via",
    "columns_unresolved",
    "catalog_version",
    "end_user",
    "end_user_source",
    "end_user_verified",
    "end_user_reason",
    "request_id",
    "trace_id",
];

/// Skip indexes (modern servers) added after a table was first created:
/// `ALTER TABLE ... ADD INDEX IF NOT EXISTS` on the local table (parts
/// written before it are not indexed; `MATERIALIZE INDEX` would do that,
/// at the cost of rewriting them, which is left to the operator).
const ADDED_INDEXES: &[&str] = &["end_user_idx"];

/// `name`'s type in `t` and the column before it.
fn placed(t: &TableSpec, name: &str) -> Option<(Ty, &'static str)> {
    let at = t.columns.iter().position(|(n, _)| *n == name)?;
    let (_, ty_) = t.columns[at];
    let (after, _) = t.columns[at.checked_sub(1)?];
    Some((ty_, after))
}

/// A column that tables of an earlier schema version lack, for servers
/// without `ADD COLUMN IF NOT EXISTS` (18.16): run `ddl` when
/// `needed_query` answers 1 (the table exists without the column). Run
/// before `statements`, because 18.16 checks the columns of a
/// `CREATE VIEW IF NOT EXISTS` even when the view exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnAddition {
    pub needed_query: String,
    pub ddl: String,
}

/// The `ADDED_COLUMNS` checks for old servers; empty on modern ones, whose
/// `statements` add them with `IF NOT EXISTS`.
pub fn column_additions(v: ServerVersion, opts: &SchemaOptions) -> Vec<ColumnAddition> {
    if v.is_modern() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in TABLES {
        for name in ADDED_COLUMNS {
            let Some((ty_, after)) = placed(t, name) else {
                continue;
            };
            out.push(ColumnAddition {
                needed_query: format!(
                    "SELECT toUInt8(countIf(name = '{after}') = 1 AND countIf(name = '{name}') = 0) FROM system.columns WHERE database = '{}' AND table = '{}'",
                    opts.database, t.name
                ),
                ddl: format!(
                    "ALTER TABLE {}.{} ADD COLUMN {} {} AFTER {}",
                    q(&opts.database),
                    q(t.name),
                    q(name),
                    ty(ty_, v),
                    q(after)
                ),
            });
        }
    }
    out
}

/// `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` for the columns of
/// `ADDED_COLUMNS` that `t` has; `target` is `db.table[ ON CLUSTER c]`.
pub(super) fn add_columns(out: &mut Vec<String>, t: &TableSpec, target: &str, v: ServerVersion) {
    for name in ADDED_COLUMNS {
        if let Some((ty_, after)) = placed(t, name) {
            out.push(format!(
                "ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {} {} AFTER {}",
                q(name),
                ty(ty_, v),
                q(after)
            ));
        }
    }
}

/// `ALTER TABLE ... ADD INDEX IF NOT EXISTS` for the skip indexes of
/// `ADDED_INDEXES` that `t` has; `target` is the local table
/// (`db.table[ ON CLUSTER c]`), never a Distributed one. Modern servers
/// only, as the indexes themselves.
pub(super) fn add_indexes(out: &mut Vec<String>, t: &TableSpec, target: &str) {
    for (name, expr, kind, gran) in t.indexes {
        if ADDED_INDEXES.contains(name) {
            out.push(format!(
                "ALTER TABLE {target} ADD INDEX IF NOT EXISTS {name} {expr} TYPE {kind} GRANULARITY {gran}"
            ));
        }
    }
}
