//! Schema versions: what each introduced, which ones `schema_migrations`
//! lists, and what runs once when a new version is first applied.

use super::ddl::{on_cluster, q};
use super::views::VIEW_NAMES;
use super::{SchemaOptions, ServerVersion};

/// The schema version this build writes (recorded in `schema_migrations`).
///
/// 1: `statements`, `sessions`, `gaps`; 2: the compliance views; 3: the
/// deduplication window; 4: `backend_pid` and `effective_role` in
/// `statements` and `sessions`; 5: `transactions`, `transaction_id` in
/// `statements`, the views `transaction_log` and `rolled_back_statements`;
/// 6: `changes` (row changes from logical decoding), the views `row_history`
/// and `changes_outside_pgtrail`; 7: `chain` on every table, `skipped_seqs`
/// on `gaps`, the `checkpoints` and `lifecycle` tables (tamper evidence);
/// 8: the columns statements read and wrote (`columns_read` ...
/// `catalog_version`) and the `sensitive_access` view; 9: the end user a
/// record names (`end_user` ... `trace_id` on `statements`,
/// `transactions` and `changes`), the `end_user_activity` view.
pub const SCHEMA_VERSION: u32 = 9;

/// Every schema version and what it introduced, oldest first; the last is
/// `SCHEMA_VERSION`. `schema_migrations` gets a row for each one applied.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (1, "statements, sessions and gaps tables"),
    (2, "compliance views"),
    (3, "deduplication window for insert tokens"),
    (4, "backend_pid and effective_role columns"),
    (
        5,
        "transactions table, transaction_id column, rolled_back_statements view",
    ),
    (
        6,
        "changes table, row_history and changes_outside_pgtrail views",
    ),
    (7, "chain columns, checkpoints and lifecycle tables"),
    (8, "columns read and written, labels, sensitive_access view"),
    (9, "end user columns, end_user_activity view"),
];

/// Views changed since schema version 6, replaced when a version after it
/// is first applied: `statement_log` and `session_log` carry every column
/// of their tables, so they gain `chain` (7) and the columns of 8 and 9;
/// `transaction_log` too (`chain`, 7; the end-user columns, 9);
/// `audit_sequence` gains the seqs of `changes`, `checkpoints` and
/// `lifecycle` (7); `row_history` the end user of each change (9), and
/// `changes_outside_pgtrail`, which selects all of it, with it.
const VIEWS_CHANGED: &[&str] = &[
    "statement_log",
    "session_log",
    "audit_sequence",
    "transaction_log",
    "row_history",
    "changes_outside_pgtrail",
];

/// Drops the views of `VIEWS_CHANGED` (`DROP TABLE`, as 18.16 has no
/// `DROP VIEW`; `CREATE VIEW IF NOT EXISTS` keeps an existing one): run
/// when `SCHEMA_VERSION` is not yet in `schema_migrations`, before
/// `statements`, which then creates them anew, each before the views that
/// read it. A view of a new version that reads a new column of
/// `statement_log` (`sensitive_access`) cannot be created while the old
/// `statement_log` stands: both servers check a view's columns at
/// `CREATE VIEW IF NOT EXISTS`.
pub fn view_drops(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    let on_cluster = on_cluster(v, opts);
    VIEW_NAMES
        .iter()
        .filter(|name| VIEWS_CHANGED.contains(name))
        .map(|name| {
            format!(
                "DROP TABLE IF EXISTS {}.{}{on_cluster}",
                q(&opts.database),
                q(name)
            )
        })
        .collect()
}

/// Replaces the views of `VIEWS_CHANGED`: each dropped and created again,
/// for a schema whose other views already read the new columns (`ensure`
/// uses `view_drops` before `statements` instead). The views that read
/// them keep working: they name their columns.
pub fn view_upgrade(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    let on_cluster = on_cluster(v, opts);
    let creates = super::views::views(v, opts, &on_cluster);
    let mut out = Vec::new();
    for (name, create) in VIEW_NAMES.iter().zip(creates) {
        if VIEWS_CHANGED.contains(name) {
            out.push(format!(
                "DROP TABLE IF EXISTS {}.{}{on_cluster}",
                q(&opts.database),
                q(name)
            ));
            out.push(create);
        }
    }
    out
}

/// Marks every version of `MIGRATIONS` that `applied` lacks as applied
/// (run after `statements`, which brought the schema up to date); `None`
/// when nothing is missing. Builds before this recorded only the version
/// they wrote, so a schema made by one of them gets its earlier versions
/// listed here, with the time they are listed.
pub fn record_migrations(opts: &SchemaOptions, applied: &[u32]) -> Option<String> {
    let missing: Vec<String> = MIGRATIONS
        .iter()
        .filter(|(v, _)| !applied.contains(v))
        .map(|(v, what)| format!("({v}, '{what}')"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "INSERT INTO {}.schema_migrations (version, description) VALUES {}",
            q(&opts.database),
            missing.join(", ")
        )
    })
}

/// 1 when `schema_migrations` exists (a schema made earlier), else 0.
pub fn migrations_table_query(opts: &SchemaOptions) -> String {
    format!(
        "SELECT toUInt8(count() > 0) FROM system.tables WHERE database = '{}' AND name = 'schema_migrations'",
        opts.database
    )
}

/// The versions `schema_migrations` lists, each once, in order.
pub fn applied_migrations_query(opts: &SchemaOptions) -> String {
    format!(
        "SELECT DISTINCT version FROM {}.schema_migrations ORDER BY version",
        q(&opts.database)
    )
}
