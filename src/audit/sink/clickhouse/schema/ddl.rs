//! The DDL text: column types per dialect, `CREATE TABLE` per table (local,
//! replicated or Distributed), and the whole script `pgtrail schema` prints.

use std::fmt::Write as _;

use super::columns::{add_columns, add_indexes, column_additions};
use super::tables::{TableSpec, Ty, TABLES};
use super::{SchemaOptions, ServerVersion, SCHEMA_VERSION};

/// Inserts remembered for `insert_deduplication_token` on tables that are
/// not replicated (replicated tables have their own window).
const DEDUP_WINDOW: &str = "non_replicated_deduplication_window = 1000";

pub(super) fn ty(t: Ty, v: ServerVersion) -> String {
    if t == Ty::EndUserSource {
        return end_user_source_enum();
    }
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
        (Ty::OptCount, _) => "Nullable(UInt64)",
        (Ty::Seqs, false) => "Array(UInt64)",
        (Ty::Seqs, true) => "Array(UInt64) CODEC(ZSTD(1))",
        (Ty::Params, false) => "Array(Nullable(String))",
        (Ty::Params, true) => "Array(Nullable(String)) CODEC(ZSTD(3))",
        (Ty::Lsn, false) => "UInt64",
        (Ty::Lsn, true) => "UInt64 CODEC(Delta, ZSTD(1))",
        (Ty::U32, _) => "UInt32",
        (Ty::Names, false) => "Array(String)",
        (Ty::Names, true) => "Array(LowCardinality(String))",
        (Ty::Values, false) => "Array(Nullable(String))",
        (Ty::Values, true) => "Array(Nullable(String)) CODEC(ZSTD(3))",
        (Ty::OptUuid, _) => "Nullable(UUID)",
        (Ty::Chain, _) => "String",
        (Ty::EndUserSource, _) => unreachable!("rendered above"),
    };
    s.to_string()
}

/// `Enum8('none' = 0, 'comment' = 1, ...)` of `crate::identity::Source`,
/// the same on every server version; its default is 'none' (0, the
/// smallest value), which rows of earlier layouts get.
fn end_user_source_enum() -> String {
    let values: Vec<String> = crate::identity::Source::ALL
        .iter()
        .map(|s| format!("'{}' = {}", s.name(), s.code()))
        .collect();
    format!("Enum8({})", values.join(", "))
}

/// Backquoted identifier (names are checked plain identifiers; this keeps
/// `user`, `database`, `rows` unambiguous).
pub(super) fn q(name: &str) -> String {
    format!("`{name}`")
}

/// ` ON CLUSTER <c>` on modern servers with a cluster, else empty.
pub(super) fn on_cluster(v: ServerVersion, opts: &SchemaOptions) -> String {
    match &opts.cluster {
        Some(c) if v.is_modern() => format!(" ON CLUSTER {}", q(c)),
        _ => String::new(),
    }
}

/// Every DDL statement, in order, without trailing `;`.
pub fn statements(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    let db = q(&opts.database);
    let on_cluster = on_cluster(v, opts);
    let cluster = opts.cluster.as_deref().filter(|_| v.is_modern());
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}")];
    for t in TABLES {
        let local = if cluster.is_some() {
            format!("{}_local", t.name)
        } else {
            t.name.to_string()
        };
        let window = cluster.is_none() && v.has_dedup_window();
        out.push(create_table(t, &local, v, opts, cluster, &on_cluster));
        if window {
            // Tables made by an earlier schema version get the window too.
            out.push(format!(
                "ALTER TABLE {db}.{} MODIFY SETTING {DEDUP_WINDOW}",
                q(&local)
            ));
        }
        if v.is_modern() {
            let target = format!("{db}.{}{on_cluster}", q(&local));
            add_columns(&mut out, t, &target, v);
            add_indexes(&mut out, t, &target);
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
    out.extend(super::views::views(v, opts, &on_cluster));
    let migrations_engine = match cluster {
        Some(_) => format!(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{}/schema_migrations', '{{replica}}')",
            opts.database
        ),
        None => "ReplacingMergeTree".to_string(),
    };
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS {}.schema_migrations{on_cluster}\n(\n    version UInt32,\n    description String,\n    applied_at DateTime DEFAULT now()\n)\nENGINE = {migrations_engine}\nORDER BY version",
        q(&opts.database)
    ));
    out
}

/// `CREATE TABLE IF NOT EXISTS` for `t`, named `local` (`<table>_local`
/// on a cluster, where `cluster` is set).
fn create_table(
    t: &TableSpec,
    local: &str,
    v: ServerVersion,
    opts: &SchemaOptions,
    cluster: Option<&str>,
    on_cluster: &str,
) -> String {
    let mut s = format!(
        "CREATE TABLE IF NOT EXISTS {}.{}{on_cluster}\n(\n",
        q(&opts.database),
        q(local)
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
    if v.is_modern() {
        let _ = write!(
            s,
            "ENGINE = {engine}\nPARTITION BY toYYYYMM(event_time)\nORDER BY ({})\nTTL toDateTime(event_time) + toIntervalDay({})\nSETTINGS index_granularity = 8192",
            t.order_by, opts.retention_days
        );
        if cluster.is_none() && v.has_dedup_window() {
            let _ = write!(s, ", {DEDUP_WINDOW}");
        }
    } else {
        let _ = write!(
            s,
            "ENGINE = {engine}\nPARTITION BY toYYYYMM(event_date)\nORDER BY ({})\nSETTINGS index_granularity = 8192",
            t.order_by
        );
    }
    s
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let source =
            "Enum8('none' = 0, 'comment' = 1, 'set' = 2, 'startup' = 3, 'application_name' = 4)";
        for ddl in [&old, &modern] {
            assert!(
                ddl.contains(&format!("`end_user_source` {source}")),
                "{ddl}"
            );
        }
        assert!(old.contains("`end_user_verified` UInt8"));
        assert!(
            modern.contains("INDEX end_user_idx end_user TYPE bloom_filter(0.01) GRANULARITY 4")
        );
        assert!(modern.contains("ALTER TABLE `pgtrail`.`statements` ADD INDEX IF NOT EXISTS end_user_idx end_user TYPE bloom_filter(0.01) GRANULARITY 4"));
        assert!(!old.contains("end_user_idx"));
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
}
