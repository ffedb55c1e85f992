//! Compliance views (part of the schema since version 2).
//!
//! The views sit on top of the tables and read
//! them with `FINAL`, so a record written twice shows once. They present one
//! shape on every server version: besides the contract's columns (with
//! `event_time` in its native type) each has `ts` (`DateTime('UTC')`, second
//! precision) and `day` (`Date`, UTC), so queries written against the views
//! (`docs/compliance.md`) run unchanged on 18.16 and on modern servers.
//!
//! | view | rows |
//! | --- | --- |
//! | `statement_log` | every statement, deduplicated |
//! | `session_log` | every session event, deduplicated |
//! | `table_access` | one per statement x object: `access` is `read` or `write`, `object` the name as written |
//! | `privilege_changes` | GRANT/REVOKE, role create/alter/drop, default privileges, ownership, ALTER SYSTEM, user mappings, row security policies |
//! | `ddl_changes` | statements of class `ddl` |
//! | `failed_statements` | statements with `success = 0` |
//! | `failed_logins` | session events `auth_failed` |
//! | `daily_activity` | one per person per UTC day: counts by class, failures, sessions, first/last |
//! | `audit_sequence` | `(instance_id, seq)` of every table, for finding holes in the trail |
//! | `transaction_log` | every transaction, deduplicated, with `started` (`DateTime('UTC')`) |
//! | `rolled_back_statements` | successful statements whose effects were undone: their transaction rolled back or failed at COMMIT, or a ROLLBACK TO SAVEPOINT undid them (`undone_by`) |
//! | `row_history` | every row change, deduplicated, with `row_key` (`col=value,...` of its key columns) and, for changes made through pgtrail, the seqs of its transaction's first and last statements (`statements_from_seq`, `statements_to_seq`; 0 when unattributed) and the end user of the statement or transaction it is attributed to (schema version 9) |
//! | `changes_outside_pgtrail` | the rows of `row_history` whose transaction carried no verified pgtrail marker (`attribution = 'none'`) |
//! | `sensitive_access` | one per statement x label of the columns it read or wrote (`[labels]`), with those columns and what they were reached through (`via`) |
//! | `end_user_activity` | one per statement that names an end user (`end_user != ''`), with the claim (source, verified, reason, request and trace ids) beside the authenticated `user` and `db_role` |
//!
//! Why `FINAL` and not `LIMIT 1 BY instance_id, seq`: both work on 18.16,
//! but `FINAL` merges the sorted parts as it reads (memory bounded),
//! while `LIMIT 1 BY` keeps every key of the result in memory; `FINAL`
//! stays exact on a cluster because copies of a record share a shard. On
//! 18.16 a filter on a view is not pushed into it by default
//! (`enable_optimize_predicate_expression = 0`), so a view reads the whole
//! table there; modern servers push filters down.
//!

use super::ddl::q;
use super::tables::{Ty, SESSIONS, STATEMENTS, TRANSACTIONS};
use super::{SchemaOptions, ServerVersion};

/// The names of the compliance views, in creation order.
pub const VIEW_NAMES: &[&str] = &[
    "statement_log",
    "session_log",
    "table_access",
    "privilege_changes",
    "ddl_changes",
    "failed_statements",
    "failed_logins",
    "daily_activity",
    "audit_sequence",
    "transaction_log",
    "rolled_back_statements",
    "row_history",
    "changes_outside_pgtrail",
    "sensitive_access",
    "end_user_activity",
];

/// `started DateTime('UTC')` from a transaction's `started_at`.
fn started_expr(v: ServerVersion) -> &'static str {
    if v.is_modern() {
        "toDateTime(started_at, 'UTC')"
    } else {
        "toDateTime(intDiv(started_at, 1000000), 'UTC')"
    }
}

/// `ts DateTime('UTC')` from the stored `event_time`.
fn ts_expr(v: ServerVersion) -> &'static str {
    if v.is_modern() {
        "toDateTime(event_time, 'UTC')"
    } else {
        "toDateTime(intDiv(event_time, 1000000), 'UTC')"
    }
}

fn column_list(names: &[&str]) -> String {
    names.iter().map(|n| q(n)).collect::<Vec<_>>().join(", ")
}

/// The statement columns the narrower views carry besides their own.
const WHO_WHEN: &[&str] = &[
    "ts",
    "day",
    "event_time",
    "instance_id",
    "seq",
    "session_id",
    "user",
    "db_role",
    "database",
    "client_addr",
    "application_name",
];

/// The columns of `end_user_activity`: `ts` and `day` (computed, as in
/// every view), the claim, then who logged in and what the statement did.
const END_USER_ACTIVITY: &[&str] = &[
    "ts",
    "day",
    "event_time",
    "end_user",
    "end_user_source",
    "end_user_verified",
    "end_user_reason",
    "request_id",
    "trace_id",
    "user",
    "db_role",
    "session_id",
    "client_addr",
    "application_name",
    "kind",
    "crud",
    "objects_read",
    "objects_written",
    "success",
    "sqlstate",
    "statement",
    "transaction_id",
    "seq",
    "instance_id",
];

/// Every change, deduplicated (replays share `commit_lsn, change_index`,
/// the sorting key), joined to its pgtrail transaction's statement seqs.
/// The join key is not Nullable (18.16 joins no Nullable keys): changes
/// without a transaction join on the nil UUID, which no transaction has.
fn row_history(v: ServerVersion, db: &str) -> String {
    let ts = ts_expr(v);
    let cols = column_list(&[
        "event_time",
        "commit_time",
        "database",
        "schema",
        "table",
        "op",
        "key.name",
        "key.value",
        "old.name",
        "old.value",
        "new.name",
        "new.value",
        "old_complete",
        "changed_columns",
        "truncated_columns",
        "attribution",
        "forged_marker",
        "transaction_id",
        "statement_seq",
        "session_id",
        "user",
        "db_role",
        "client_addr",
        "application_name",
        "end_user",
        "end_user_source",
        "end_user_verified",
        "request_id",
        "commit_lsn",
        "lsn",
        "change_index",
        "xid",
        "instance_id",
        "seq",
    ]);
    format!(
        "SELECT {ts} AS ts, toDate(ts) AS day, {cols},\n    arrayStringConcat(arrayMap((n, x) -> concat(n, '=', ifNull(x, 'NULL')), `key.name`, `key.value`), ',') AS row_key,\n    statements_from_seq, statements_to_seq\nFROM (\n    SELECT *, ifNull(transaction_id, toUUID('00000000-0000-0000-0000-000000000000')) AS txn_key\n    FROM {db}.`changes` FINAL\n) AS c\nANY LEFT JOIN (\n    SELECT transaction_id AS txn_key, first_seq AS statements_from_seq, last_seq AS statements_to_seq\n    FROM {db}.`transactions` FINAL\n) AS t USING txn_key"
    )
}

/// `CREATE VIEW IF NOT EXISTS` statements (see the module docs).
pub(super) fn views(v: ServerVersion, opts: &SchemaOptions, on_cluster: &str) -> Vec<String> {
    let db = q(&opts.database);
    let ts = ts_expr(v);
    let all = |cols: &[(&str, Ty)]| column_list(&cols.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    let who = column_list(WHO_WHEN);
    let stmt_cols = |extra: &[&str]| format!("{who}, {}", column_list(extra));
    let bodies: [(&str, String); 15] = [
        (
            "statement_log",
            format!(
                "SELECT {ts} AS ts, toDate(ts) AS day, {}\nFROM {db}.`statements` FINAL",
                all(STATEMENTS)
            ),
        ),
        (
            "session_log",
            format!(
                "SELECT {ts} AS ts, toDate(ts) AS day, {}\nFROM {db}.`sessions` FINAL",
                all(SESSIONS)
            ),
        ),
        (
            "table_access",
            format!(
                "SELECT {}, {},\n    tupleElement(object_access, 1) AS access,\n    tupleElement(object_access, 2) AS object,\n    `statement`\nFROM {db}.`statement_log`\nARRAY JOIN arrayConcat(arrayMap(o -> ('read', o), objects_read), arrayMap(o -> ('write', o), objects_written)) AS object_access",
                who,
                column_list(&["protocol", "kind", "class", "command_tag", "success", "sqlstate", "rows"])
            ),
        ),
        (
            "privilege_changes",
            format!(
                "SELECT {}\nFROM {db}.`statement_log`\nWHERE class = 'dcl' OR audit_class = 'ROLE' OR kind IN ('reassign_owned', 'drop_owned', 'alter_system', 'create_user_mapping', 'alter_user_mapping', 'drop_user_mapping', 'create_policy', 'alter_policy', 'drop_policy')",
                stmt_cols(&["kind", "command_tag", "success", "sqlstate", "error_message", "statement"])
            ),
        ),
        (
            "ddl_changes",
            format!(
                "SELECT {}\nFROM {db}.`statement_log`\nWHERE class = 'ddl'",
                stmt_cols(&["kind", "command_tag", "objects_read", "objects_written", "success", "sqlstate", "error_message", "statement"])
            ),
        ),
        (
            "failed_statements",
            format!(
                "SELECT {}\nFROM {db}.`statement_log`\nWHERE success = 0",
                stmt_cols(&["kind", "class", "objects_read", "objects_written", "sqlstate", "error_message", "statement"])
            ),
        ),
        (
            "failed_logins",
            format!(
                "SELECT {}\nFROM {db}.`session_log`\nWHERE event_type = 'auth_failed'",
                stmt_cols(&["client_port", "tls", "auth_method", "reason"])
            ),
        ),
        (
            "daily_activity",
            format!(
                "SELECT day, `user`,\n    count() AS statements,\n    countIf(class = 'read') AS reads,\n    countIf(class = 'write') AS writes,\n    countIf(class = 'ddl') AS ddl,\n    countIf(class = 'dcl') AS dcl,\n    countIf(success = 0) AS failed,\n    sum(`rows`) AS total_rows,\n    uniqExact(session_id) AS sessions,\n    groupUniqArray(CAST(db_role AS String)) AS db_roles,\n    min(ts) AS first_seen,\n    max(ts) AS last_seen\nFROM {db}.`statement_log`\nGROUP BY day, `user`"
            ),
        ),
        (
            "audit_sequence",
            format!(
                "SELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'statements' AS source, CAST(`user` AS String) AS `user`, CAST(kind AS String) AS detail, toUInt64(0) AS missing_events FROM {db}.`statements` FINAL\nUNION ALL\nSELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'sessions' AS source, CAST(`user` AS String) AS `user`, CAST(event_type AS String) AS detail, toUInt64(0) AS missing_events FROM {db}.`sessions` FINAL\nUNION ALL\nSELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'gaps' AS source, '' AS `user`, CAST(reason AS String) AS detail, toUInt64(missing_events) AS missing_events FROM {db}.`gaps` FINAL\nUNION ALL\nSELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'transactions' AS source, CAST(`user` AS String) AS `user`, CAST(outcome AS String) AS detail, toUInt64(0) AS missing_events FROM {db}.`transactions` FINAL\nUNION ALL\nSELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'changes' AS source, CAST(`user` AS String) AS `user`, CAST(op AS String) AS detail, toUInt64(0) AS missing_events FROM {db}.`changes` FINAL\nUNION ALL\nSELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'checkpoints' AS source, '' AS `user`, CAST(key_id AS String) AS detail, toUInt64(0) AS missing_events FROM {db}.`checkpoints` FINAL\nUNION ALL\nSELECT CAST(instance_id AS String) AS instance_id, seq, {ts} AS ts, toDate(ts) AS day, 'lifecycle' AS source, '' AS `user`, CAST(event_type AS String) AS detail, toUInt64(0) AS missing_events FROM {db}.`lifecycle` FINAL"
            ),
        ),
        (
            "transaction_log",
            format!(
                "SELECT {ts} AS ts, toDate(ts) AS day, {} AS started, {}\nFROM {db}.`transactions` FINAL",
                started_expr(v),
                all(TRANSACTIONS)
            ),
        ),
        (
            "rolled_back_statements",
            format!(
                "SELECT {}, `statement`, transaction_id, outcome,\n    if(outcome = 'committed', 'rollback_to_savepoint', outcome) AS undone_by\nFROM {db}.`statement_log`\nALL INNER JOIN (\n    SELECT transaction_id, CAST(outcome AS String) AS outcome, undone_from_seq, undone_to_seq\n    FROM {db}.`transactions` FINAL\n    WHERE outcome IN ('rolled_back', 'failed') OR notEmpty(undone_from_seq)\n) AS t USING transaction_id\nWHERE success = 1 AND class != 'tcl'\n    AND (outcome IN ('rolled_back', 'failed')\n        OR arrayExists((a, b) -> seq >= a AND seq <= b, undone_from_seq, undone_to_seq))",
                stmt_cols(&["kind", "class", "objects_written", "command_tag", "rows"])
            ),
        ),
        ("row_history", row_history(v, &db)),
        (
            "changes_outside_pgtrail",
            format!("SELECT *\nFROM {db}.`row_history`\nWHERE attribution = 'none'"),
        ),
        (
            "sensitive_access",
            format!(
                "SELECT {},\n    label,\n    {}\nFROM {db}.`statement_log`\nARRAY JOIN labels AS label",
                who,
                column_list(&["columns_read", "columns_written", "via", "columns_unresolved", "objects_read", "objects_written", "kind", "success", "sqlstate", "rows", "statement"])
            ),
        ),
        (
            "end_user_activity",
            // From the table, not `statement_log`: a view created before
            // `statement_log` has the new columns would fail.
            format!(
                "SELECT {ts} AS ts, toDate(ts) AS day, {}\nFROM {db}.`statements` FINAL\nWHERE end_user != ''",
                column_list(&END_USER_ACTIVITY[2..])
            ),
        ),
    ];
    debug_assert!(bodies
        .iter()
        .map(|(n, _)| *n)
        .eq(VIEW_NAMES.iter().copied()));
    bodies
        .iter()
        .map(|(name, body)| {
            format!(
                "CREATE VIEW IF NOT EXISTS {db}.{}{on_cluster} AS\n{body}",
                q(name)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{record_migrations, script, statements, MIGRATIONS, SCHEMA_VERSION};
    use super::*;

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
            Some("INSERT INTO `pgtrail`.schema_migrations (version, description) VALUES (1, 'statements, sessions and gaps tables'), (2, 'compliance views'), (4, 'backend_pid and effective_role columns'), (5, 'transactions table, transaction_id column, rolled_back_statements view'), (6, 'changes table, row_history and changes_outside_pgtrail views'), (7, 'chain columns, checkpoints and lifecycle tables'), (8, 'columns read and written, labels, sensitive_access view'), (9, 'end user columns, end_user_activity view')")
        );
        assert_eq!(record_migrations(&opts, &[1, 2, 3, 4, 5, 6, 7, 8, 9]), None);
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
