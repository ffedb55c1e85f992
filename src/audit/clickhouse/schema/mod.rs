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
//! must `DROP VIEW` it first (18.16 has no `CREATE OR REPLACE VIEW`).
//! No statement contains `?` (the `clickhouse` crate treats it as a bind
//! placeholder).

use std::fmt::Write as _;

mod views;

pub use views::VIEW_NAMES;

/// The schema version this build writes (recorded in `schema_migrations`).
///
/// 1: `statements`, `sessions`, `gaps`; 2: the compliance views; 3: the
/// deduplication window; 4: `backend_pid` and `effective_role` in
/// `statements` and `sessions`.
pub const SCHEMA_VERSION: u32 = 4;

/// Every schema version and what it introduced, oldest first; the last is
/// `SCHEMA_VERSION`. `schema_migrations` gets a row for each one applied.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (1, "statements, sessions and gaps tables"),
    (2, "compliance views"),
    (3, "deduplication window for insert tokens"),
    (4, "backend_pid and effective_role columns"),
];

/// Columns added after a table was first created: (column, type, after).
/// Tables of earlier versions get them with `ADD COLUMN IF NOT EXISTS`.
const ADDED_COLUMNS: &[(&str, Ty, &str)] = &[
    ("backend_pid", Ty::Pid, "session_id"),
    ("effective_role", Ty::Label, "db_role"),
];

/// Inserts remembered for `insert_deduplication_token` on tables that are
/// not replicated (replicated tables have their own window).
const DEDUP_WINDOW: &str = "non_replicated_deduplication_window = 1000";

/// A ClickHouse server version, from `SELECT version()` (e.g. `18.16.1`,
/// `24.8.4.13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    /// The oldest version the modern schema needs (DateTime64, codecs, TTL,
    /// skip indexes without experimental settings).
    pub const MODERN: ServerVersion = ServerVersion {
        major: 20,
        minor: 1,
    };
    /// The version whose DDL `pgtrail schema` prints by default.
    pub const DEFAULT: ServerVersion = ServerVersion {
        major: 24,
        minor: 8,
    };

    /// `major.minor[.anything]`.
    pub fn parse(s: &str) -> Option<ServerVersion> {
        let mut parts = s.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        Some(ServerVersion { major, minor })
    }

    pub fn is_modern(self) -> bool {
        self >= Self::MODERN
    }

    /// `Bool` exists from 21.12; before that booleans are `UInt8` (same bytes).
    fn has_bool(self) -> bool {
        self >= ServerVersion {
            major: 21,
            minor: 12,
        }
    }

    /// The `async_insert` setting exists from 21.11; pgtrail sets it to 0
    /// there (it batches itself and wants the insert acknowledged when stored).
    pub fn has_async_insert(self) -> bool {
        self >= ServerVersion {
            major: 21,
            minor: 11,
        }
    }

    /// The `insert_deduplication_token` setting exists from 22.2.
    pub fn has_dedup_token(self) -> bool {
        self >= ServerVersion {
            major: 22,
            minor: 2,
        }
    }

    /// `non_replicated_deduplication_window` (a MergeTree setting) exists
    /// from 20.10; replicated tables always have a window.
    fn has_dedup_window(self) -> bool {
        self >= ServerVersion {
            major: 20,
            minor: 10,
        }
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

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

/// Column type families; each renders per dialect.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Uuid,
    /// Repeated, low-cardinality text.
    Label,
    /// Free text (statements, messages).
    Text,
    /// Mostly distinct text (session ids).
    Id,
    Seq,
    Time,
    /// Durations, counters.
    Count,
    U16,
    /// A server process id.
    Pid,
    Hash,
    Bool,
    Labels,
    Params,
}

pub(super) const STATEMENTS: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("duration_us", Ty::Count),
    ("session_id", Ty::Id),
    ("backend_pid", Ty::Pid),
    ("user", Ty::Label),
    ("db_role", Ty::Label),
    ("effective_role", Ty::Label),
    ("database", Ty::Label),
    ("client_addr", Ty::Label),
    ("client_port", Ty::U16),
    ("application_name", Ty::Label),
    ("protocol", Ty::Label),
    ("statement", Ty::Text),
    ("statement_truncated", Ty::Bool),
    ("statement_escaped", Ty::Bool),
    ("fingerprint", Ty::Hash),
    ("normalized", Ty::Text),
    ("kind", Ty::Label),
    ("class", Ty::Label),
    ("crud", Ty::Label),
    ("audit_class", Ty::Label),
    ("objects_read", Ty::Labels),
    ("objects_written", Ty::Labels),
    ("functions", Ty::Labels),
    ("parser", Ty::Label),
    ("command_tag", Ty::Label),
    ("rows", Ty::Count),
    ("success", Ty::Bool),
    ("sqlstate", Ty::Label),
    ("error_message", Ty::Text),
    ("txn_status", Ty::Label),
    ("params", Ty::Params),
];

pub(super) const SESSIONS: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("event_type", Ty::Label),
    ("session_id", Ty::Id),
    ("backend_pid", Ty::Pid),
    ("user", Ty::Label),
    ("db_role", Ty::Label),
    ("effective_role", Ty::Label),
    ("database", Ty::Label),
    ("client_addr", Ty::Label),
    ("client_port", Ty::U16),
    ("application_name", Ty::Label),
    ("tls", Ty::Bool),
    ("auth_method", Ty::Label),
    ("reason", Ty::Text),
    ("bytes_in", Ty::Count),
    ("bytes_out", Ty::Count),
    ("statements", Ty::Count),
    ("duration_us", Ty::Count),
];

pub(super) const GAPS: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("missing_events", Ty::Count),
    ("reason", Ty::Text),
];

fn ty(t: Ty, v: ServerVersion) -> String {
    let modern = v.is_modern();
    let bool_t = if v.has_bool() { "Bool" } else { "UInt8" };
    let s = match (t, modern) {
        (Ty::Uuid, _) => "UUID",
        (Ty::Label, false) | (Ty::Text, false) | (Ty::Id, false) => "String",
        (Ty::Label, true) => "LowCardinality(String)",
        (Ty::Text, true) => "String CODEC(ZSTD(3))",
        (Ty::Id, true) => "String CODEC(ZSTD(1))",
        (Ty::Seq, false) => "UInt64",
        (Ty::Seq, true) => "UInt64 CODEC(Delta, ZSTD(1))",
        (Ty::Time, false) => "Int64",
        (Ty::Time, true) => "DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1))",
        (Ty::Count, false) => "UInt64",
        (Ty::Count, true) => "UInt64 CODEC(T64, ZSTD(1))",
        (Ty::U16, _) => "UInt16",
        (Ty::Pid, _) => "UInt32",
        (Ty::Hash, _) => "UInt64",
        (Ty::Bool, false) => "UInt8",
        (Ty::Bool, true) => bool_t,
        (Ty::Labels, false) => "Array(String)",
        (Ty::Labels, true) => "Array(LowCardinality(String)) CODEC(ZSTD(1))",
        (Ty::Params, false) => "Array(Nullable(String))",
        (Ty::Params, true) => "Array(Nullable(String)) CODEC(ZSTD(3))",
    };
    s.to_string()
}

/// Backquoted identifier (names are checked plain identifiers; this keeps
/// `user`, `database`, `rows` unambiguous).
pub(super) fn q(name: &str) -> String {
    format!("`{name}`")
}

struct TableSpec {
    name: &'static str,
    columns: &'static [(&'static str, Ty)],
    /// Sorting key, `instance_id, seq` last (see the module docs).
    order_by: &'static str,
    /// Modern-only skip indexes: (name, expression, type, granularity).
    indexes: &'static [(&'static str, &'static str, &'static str, u32)],
}

const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "statements",
        columns: STATEMENTS,
        // "who did what, when": user, then time; the object arrays have
        // bloom filters for "what happened to this table".
        order_by: "`user`, event_time, instance_id, seq",
        indexes: &[
            (
                "statement_tokens",
                "statement",
                "tokenbf_v1(32768, 3, 0)",
                4,
            ),
            ("objects_read_idx", "objects_read", "bloom_filter(0.01)", 4),
            (
                "objects_written_idx",
                "objects_written",
                "bloom_filter(0.01)",
                4,
            ),
            ("kind_idx", "kind", "set(256)", 4),
            ("session_idx", "session_id", "bloom_filter(0.01)", 4),
        ],
    },
    TableSpec {
        name: "sessions",
        columns: SESSIONS,
        order_by: "`user`, event_time, instance_id, seq",
        indexes: &[
            ("event_type_idx", "event_type", "set(16)", 4),
            ("session_idx", "session_id", "bloom_filter(0.01)", 4),
        ],
    },
    TableSpec {
        name: "gaps",
        columns: GAPS,
        order_by: "instance_id, seq",
        indexes: &[],
    },
];

/// The names of the contract's tables, in creation order.
pub fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.name)
}

/// Every DDL statement, in order, without trailing `;`.
pub fn statements(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    let db = q(&opts.database);
    let on_cluster = match &opts.cluster {
        Some(c) if v.is_modern() => format!(" ON CLUSTER {}", q(c)),
        _ => String::new(),
    };
    let cluster = opts.cluster.as_deref().filter(|_| v.is_modern());
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}")];
    for t in TABLES {
        let local = if cluster.is_some() {
            format!("{}_local", t.name)
        } else {
            t.name.to_string()
        };
        let mut s = format!(
            "CREATE TABLE IF NOT EXISTS {db}.{}{on_cluster}\n(\n",
            q(&local)
        );
        for (name, t) in t.columns {
            let _ = writeln!(s, "    {} {},", q(name), ty(*t, v));
        }
        if v.is_modern() {
            for (name, expr, kind, gran) in t.indexes {
                let _ = writeln!(s, "    INDEX {name} {expr} TYPE {kind} GRANULARITY {gran},");
            }
        } else {
            s.push_str(
                "    event_date Date DEFAULT toDate(toDateTime(intDiv(event_time, 1000000))),\n",
            );
        }
        s.truncate(s.trim_end_matches([',', '\n']).len());
        s.push_str("\n)\n");
        let engine = match cluster {
            Some(_) => format!(
                "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{}/{local}', '{{replica}}')",
                opts.database
            ),
            None => "ReplacingMergeTree".to_string(),
        };
        let window = cluster.is_none() && v.has_dedup_window();
        if v.is_modern() {
            let _ = write!(
                s,
                "ENGINE = {engine}\nPARTITION BY toYYYYMM(event_time)\nORDER BY ({})\nTTL toDateTime(event_time) + toIntervalDay({})\nSETTINGS index_granularity = 8192",
                t.order_by, opts.retention_days
            );
            if window {
                let _ = write!(s, ", {DEDUP_WINDOW}");
            }
        } else {
            let _ = write!(
                s,
                "ENGINE = {engine}\nPARTITION BY toYYYYMM(event_date)\nORDER BY ({})\nSETTINGS index_granularity = 8192",
                t.order_by
            );
        }
        out.push(s);
        if window {
            // Tables made by an earlier schema version get the window too.
            out.push(format!(
                "ALTER TABLE {db}.{} MODIFY SETTING {DEDUP_WINDOW}",
                q(&local)
            ));
        }
        if v.is_modern() {
            add_columns(&mut out, t, &format!("{db}.{}{on_cluster}", q(&local)), v);
        }
        if let Some(c) = cluster {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{}{on_cluster} AS {db}.{}\nENGINE = Distributed({}, {}, {}, cityHash64(instance_id, seq))",
                q(t.name),
                q(&local),
                q(c),
                q(&opts.database),
                q(&local)
            ));
            // A Distributed table made earlier has the old columns too.
            add_columns(&mut out, t, &format!("{db}.{}{on_cluster}", q(t.name)), v);
        }
    }
    out.extend(views::views(v, opts, &on_cluster));
    let migrations_engine = match cluster {
        Some(_) => format!(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{}/schema_migrations', '{{replica}}')",
            opts.database
        ),
        None => "ReplacingMergeTree".to_string(),
    };
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS {db}.schema_migrations{on_cluster}\n(\n    version UInt32,\n    description String,\n    applied_at DateTime DEFAULT now()\n)\nENGINE = {migrations_engine}\nORDER BY version"
    ));
    out
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
        for (name, ty_, after) in ADDED_COLUMNS {
            if !t.columns.iter().any(|(n, _)| n == name) {
                continue;
            }
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
                    ty(*ty_, v),
                    q(after)
                ),
            });
        }
    }
    out
}

/// `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` for the columns of
/// `ADDED_COLUMNS` that `t` has; `target` is `db.table[ ON CLUSTER c]`.
fn add_columns(out: &mut Vec<String>, t: &TableSpec, target: &str, v: ServerVersion) {
    for (name, ty_, after) in ADDED_COLUMNS {
        if t.columns.iter().any(|(n, _)| n == name) {
            out.push(format!(
                "ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {} {} AFTER {}",
                q(name),
                ty(*ty_, v),
                q(after)
            ));
        }
    }
}

/// The DDL as one script (`pgtrail schema`), statements ending in `;`.
pub fn script(v: ServerVersion, opts: &SchemaOptions) -> String {
    let mut s = format!(
        "-- pgtrail schema version {SCHEMA_VERSION} for ClickHouse {v} ({})\n",
        if v.is_modern() {
            "modern"
        } else {
            "old: Int64 microseconds, no codecs, TTL or skip indexes"
        }
    );
    for st in statements(v, opts) {
        s.push('\n');
        s.push_str(&st);
        s.push_str(";\n");
    }
    for a in column_additions(v, opts) {
        // 18.16 has no IF NOT EXISTS here: only for tables made earlier.
        let _ = write!(
            s,
            "\n-- for tables made before schema version {SCHEMA_VERSION}:\n-- {};\n",
            a.ddl
        );
    }
    s
}

/// Views whose columns `SCHEMA_VERSION` changed: `statement_log` and
/// `session_log` carry every column of their table, so they gain
/// `effective_role`.
const VIEWS_CHANGED: &[&str] = &["statement_log", "session_log"];

/// Replaces the views of `VIEWS_CHANGED` (`DROP TABLE`, as 18.16 has no `DROP VIEW`; `CREATE VIEW IF NOT EXISTS`
/// keeps an existing one): run once, when `SCHEMA_VERSION` is not yet in
/// `schema_migrations`, after `statements`. The views that read them keep
/// working: they name their columns.
pub fn view_upgrade(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    let on_cluster = match &opts.cluster {
        Some(c) if v.is_modern() => format!(" ON CLUSTER {}", q(c)),
        _ => String::new(),
    };
    let creates = views::views(v, opts, &on_cluster);
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

/// The versions `schema_migrations` lists, each once, in order.
pub fn applied_migrations_query(opts: &SchemaOptions) -> String {
    format!(
        "SELECT DISTINCT version FROM {}.schema_migrations ORDER BY version",
        q(&opts.database)
    )
}

/// Column names of `table` in insert order (for tests and sanity checks).
pub fn column_names(table: &str) -> Vec<&'static str> {
    TABLES
        .iter()
        .find(|t| t.name == table)
        .map(|t| t.columns.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            ServerVersion::parse("18.16.1"),
            Some(ServerVersion {
                major: 18,
                minor: 16
            })
        );
        assert!(ServerVersion::parse("24.8.4.13").unwrap().is_modern());
        assert!(!ServerVersion::parse("19.17").unwrap().is_modern());
        assert!(ServerVersion::parse("20.1").unwrap().is_modern());
        assert_eq!(ServerVersion::parse("x"), None);
    }

    #[test]
    fn no_placeholders_and_dialects_differ() {
        let opts = SchemaOptions::default();
        let old = statements(ServerVersion::parse("18.16").unwrap(), &opts).join(";\n");
        let modern = statements(ServerVersion::DEFAULT, &opts).join(";\n");
        assert!(!old.contains('?') && !modern.contains('?'));
        assert!(old.contains("`event_time` Int64") && !old.contains("CODEC"));
        assert!(!old.contains("LowCardinality") && !old.contains("TTL"));
        assert!(modern.contains("DateTime64(6, 'UTC')") && modern.contains("tokenbf_v1"));
        assert!(modern.contains("TTL toDateTime(event_time) + toIntervalDay(365)"));
        assert!(!modern.contains("ON CLUSTER"));
    }

    #[test]
    fn cluster_gives_replicated_and_distributed() {
        let opts = SchemaOptions {
            cluster: Some("prod".into()),
            ..SchemaOptions::default()
        };
        let ddl = script(ServerVersion::DEFAULT, &opts);
        assert!(ddl.contains("ON CLUSTER `prod`"));
        assert!(ddl.contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/pgtrail/statements_local', '{replica}')"));
        assert!(ddl.contains("ENGINE = Distributed(`prod`, `pgtrail`, `statements_local`, cityHash64(instance_id, seq))"));
    }

    #[test]
    fn views_on_both_dialects() {
        let opts = SchemaOptions::default();
        for v in [
            ServerVersion::parse("18.16").unwrap(),
            ServerVersion::DEFAULT,
        ] {
            let ddl = statements(v, &opts);
            let views: Vec<&String> = ddl
                .iter()
                .filter(|s| s.starts_with("CREATE VIEW IF NOT EXISTS"))
                .collect();
            assert_eq!(views.len(), VIEW_NAMES.len(), "{v}");
            for (stmt, name) in views.iter().zip(VIEW_NAMES) {
                assert!(
                    stmt.starts_with(&format!(
                        "CREATE VIEW IF NOT EXISTS `pgtrail`.`{name}` AS\n"
                    )),
                    "{stmt}"
                );
            }
            // Tables before the views that read them; schema_migrations last.
            assert!(ddl.last().unwrap().contains("schema_migrations"));
            let joined = ddl.join("\n");
            assert!(joined.contains("`statements` FINAL") && joined.contains("`sessions` FINAL"));
            assert!(joined.contains("`gaps` FINAL"));
            let ts = if v.is_modern() {
                "toDateTime(event_time, 'UTC') AS ts"
            } else {
                "toDateTime(intDiv(event_time, 1000000), 'UTC') AS ts"
            };
            assert!(joined.contains(ts), "{v}");
        }
        let clustered = SchemaOptions {
            cluster: Some("prod".into()),
            ..SchemaOptions::default()
        };
        let ddl = script(ServerVersion::DEFAULT, &clustered);
        // Views read the Distributed tables and exist on every node.
        assert!(ddl
            .contains("CREATE VIEW IF NOT EXISTS `pgtrail`.`statement_log` ON CLUSTER `prod` AS"));
        assert!(ddl.contains("FROM `pgtrail`.`statements` FINAL"));
        assert_eq!(
            record_migrations(&opts, &[3]).as_deref(),
            Some("INSERT INTO `pgtrail`.schema_migrations (version, description) VALUES (1, 'statements, sessions and gaps tables'), (2, 'compliance views'), (4, 'backend_pid and effective_role columns')")
        );
        assert_eq!(record_migrations(&opts, &[1, 2, 3, 4]), None);
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }

    #[test]
    fn dedup_window_where_the_server_has_it() {
        let opts = SchemaOptions::default();
        let modern = script(ServerVersion::DEFAULT, &opts);
        assert!(modern.contains(
            "SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000"
        ));
        assert!(modern.contains(
            "ALTER TABLE `pgtrail`.`statements` MODIFY SETTING non_replicated_deduplication_window = 1000"
        ));
        let old = script(ServerVersion::parse("18.16.1").expect("version"), &opts);
        assert!(!old.contains("deduplication_window"));
        let early = script(ServerVersion::parse("20.3").expect("version"), &opts);
        assert!(!early.contains("deduplication_window"));
        let clustered = SchemaOptions {
            cluster: Some("prod".into()),
            ..SchemaOptions::default()
        };
        assert!(!script(ServerVersion::DEFAULT, &clustered).contains("deduplication_window"));
        assert!(ServerVersion::DEFAULT.has_dedup_token());
    }

    #[test]
    fn contract_columns() {
        let s = column_names("statements");
        assert_eq!(s.len(), 35);
        assert_eq!(s.first(), Some(&"event_id"));
        assert!(s.contains(&"statement_escaped") && s.contains(&"params"));
        assert_eq!(column_names("sessions").len(), 21);
        assert_eq!(column_names("gaps").len(), 6);
    }
}
