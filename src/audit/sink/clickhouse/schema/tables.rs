//! The record contract's tables: their columns in insert order (the order
//! of the row types in `rows`), sorting keys and skip indexes.

/// Column type families; each renders per dialect (`ddl::ty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
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
    /// A number that may be absent.
    OptCount,
    /// Lists of seqs.
    Seqs,
    /// A WAL position (`pg_lsn` as a number).
    Lsn,
    U32,
    /// The names of a Nested column-to-value list.
    Names,
    /// Its values, text or NULL.
    Values,
    OptUuid,
    /// A chain value, digest or signature as hex (does not compress).
    Chain,
    /// Where a record's end user came from: `Enum8` of
    /// `crate::identity::Source` ('none' = 0, the default, ...).
    EndUserSource,
}

/// Schema version 9's columns, the end user a record names
/// (`crate::identity::EndUser`), the last six of `statements`,
/// `transactions` and `changes`: after each table's earlier columns, so
/// that rows spooled before them are a prefix of the layout
/// (`rows::Before`).
pub const END_USER_COLUMNS: [&str; 6] = [
    "end_user",
    "end_user_source",
    "end_user_verified",
    "end_user_reason",
    "request_id",
    "trace_id",
];

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
    ("transaction_id", Ty::Uuid),
    ("params", Ty::Params),
    ("chain", Ty::Chain),
    // Schema version 8: after `chain`, so that rows spooled before it are
    // a prefix of this layout (`rows::Before`).
    ("columns_read", Ty::Labels),
    ("columns_written", Ty::Labels),
    ("labels", Ty::Labels),
    ("via", Ty::Labels),
    ("columns_unresolved", Ty::Labels),
    ("catalog_version", Ty::Count),
    // Schema version 9 (END_USER_COLUMNS).
    ("end_user", Ty::Id),
    ("end_user_source", Ty::EndUserSource),
    ("end_user_verified", Ty::Bool),
    ("end_user_reason", Ty::Text),
    ("request_id", Ty::Id),
    ("trace_id", Ty::Id),
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
    ("chain", Ty::Chain),
];

pub(super) const TRANSACTIONS: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("transaction_id", Ty::Uuid),
    ("session_id", Ty::Id),
    ("backend_pid", Ty::Pid),
    ("user", Ty::Label),
    ("db_role", Ty::Label),
    ("effective_role", Ty::Label),
    ("database", Ty::Label),
    ("client_addr", Ty::Label),
    ("client_port", Ty::U16),
    ("application_name", Ty::Label),
    ("outcome", Ty::Label),
    ("statements", Ty::Count),
    ("first_seq", Ty::Seq),
    ("last_seq", Ty::Seq),
    ("started_at", Ty::Time),
    ("duration_us", Ty::Count),
    ("rows_changed", Ty::Count),
    ("xid", Ty::OptCount),
    ("undone_from_seq", Ty::Seqs),
    ("undone_to_seq", Ty::Seqs),
    ("chain", Ty::Chain),
    // Schema version 9 (END_USER_COLUMNS).
    ("end_user", Ty::Id),
    ("end_user_source", Ty::EndUserSource),
    ("end_user_verified", Ty::Bool),
    ("end_user_reason", Ty::Text),
    ("request_id", Ty::Id),
    ("trace_id", Ty::Id),
];

/// `key`, `old` and `new` are Nested (name, value) on the server: each is
/// two array columns, `<field>.name` and `<field>.value`.
pub(super) const CHANGES: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("commit_lsn", Ty::Lsn),
    ("lsn", Ty::Lsn),
    ("change_index", Ty::U32),
    ("xid", Ty::U32),
    ("commit_time", Ty::Time),
    ("database", Ty::Label),
    ("schema", Ty::Label),
    ("table", Ty::Label),
    ("op", Ty::Label),
    ("key.name", Ty::Names),
    ("key.value", Ty::Values),
    ("old.name", Ty::Names),
    ("old.value", Ty::Values),
    ("new.name", Ty::Names),
    ("new.value", Ty::Values),
    ("old_complete", Ty::Bool),
    ("changed_columns", Ty::Labels),
    ("truncated_columns", Ty::Labels),
    ("transaction_id", Ty::OptUuid),
    ("statement_seq", Ty::OptCount),
    ("session_id", Ty::Id),
    ("user", Ty::Label),
    ("db_role", Ty::Label),
    ("client_addr", Ty::Label),
    ("application_name", Ty::Label),
    ("attribution", Ty::Label),
    ("forged_marker", Ty::Bool),
    ("chain", Ty::Chain),
    // Schema version 9 (END_USER_COLUMNS).
    ("end_user", Ty::Id),
    ("end_user_source", Ty::EndUserSource),
    ("end_user_verified", Ty::Bool),
    ("end_user_reason", Ty::Text),
    ("request_id", Ty::Id),
    ("trace_id", Ty::Id),
];

const GAPS: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("missing_events", Ty::Count),
    ("reason", Ty::Text),
    ("skipped_seqs", Ty::Count),
    ("chain", Ty::Chain),
];

const CHECKPOINTS: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("previous_chain", Ty::Chain),
    ("records", Ty::Count),
    ("key_id", Ty::Label),
    ("signature", Ty::Chain),
    ("chain", Ty::Chain),
];

const LIFECYCLE: &[(&str, Ty)] = &[
    ("event_id", Ty::Uuid),
    ("instance_id", Ty::Label),
    ("seq", Ty::Seq),
    ("event_time", Ty::Time),
    ("event_type", Ty::Label),
    ("version", Ty::Label),
    ("config_digest", Ty::Chain),
    ("detail", Ty::Text),
    ("previous_seq", Ty::Seq),
    ("previous_chain", Ty::Chain),
    ("clean", Ty::Bool),
    ("chain", Ty::Chain),
];

pub(super) struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Ty)],
    /// Sorting key, `instance_id, seq` last (see the module docs), except
    /// for `changes`.
    pub order_by: &'static str,
    /// Modern-only skip indexes: (name, expression, type, granularity).
    pub indexes: &'static [(&'static str, &'static str, &'static str, u32)],
}

pub(super) const TABLES: &[TableSpec] = &[
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
            // Schema version 9: "everything end user X did" (the sorting
            // key starts with the database login, not the end user).
            ("end_user_idx", "end_user", "bloom_filter(0.01)", 4),
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
        name: "transactions",
        columns: TRANSACTIONS,
        order_by: "`user`, event_time, instance_id, seq",
        indexes: &[
            ("outcome_idx", "outcome", "set(16)", 4),
            ("transaction_idx", "transaction_id", "bloom_filter(0.01)", 4),
        ],
    },
    TableSpec {
        name: "changes",
        columns: CHANGES,
        // Not `instance_id, seq`: a change replayed after a crash (before
        // its position was kept) gets a new seq, and must collapse with its
        // first copy; `commit_lsn, change_index` names a change uniquely in
        // one PostgreSQL cluster. Table first: "what happened to this row".
        order_by: "`database`, `schema`, `table`, commit_lsn, change_index",
        indexes: &[
            ("attribution_idx", "attribution", "set(8)", 4),
            ("transaction_idx", "transaction_id", "bloom_filter(0.01)", 4),
            ("user_idx", "`user`", "bloom_filter(0.01)", 4),
        ],
    },
    TableSpec {
        name: "gaps",
        columns: GAPS,
        order_by: "instance_id, seq",
        indexes: &[],
    },
    TableSpec {
        name: "checkpoints",
        columns: CHECKPOINTS,
        order_by: "instance_id, seq",
        indexes: &[],
    },
    TableSpec {
        name: "lifecycle",
        columns: LIFECYCLE,
        order_by: "instance_id, seq",
        indexes: &[],
    },
];

/// The names of the contract's tables, in creation order.
pub fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.name)
}

/// The columns of `table` with their types, in insert order.
pub fn table_columns(table: &str) -> Option<&'static [(&'static str, Ty)]> {
    TABLES.iter().find(|t| t.name == table).map(|t| t.columns)
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
    fn contract_columns() {
        let s = column_names("statements");
        assert_eq!(s.len(), 49);
        assert_eq!(s.first(), Some(&"event_id"));
        assert!(s.contains(&"statement_escaped") && s.contains(&"params"));
        assert_eq!(column_names("sessions").len(), 22);
        assert_eq!(column_names("gaps").len(), 8);
        assert_eq!(column_names("transactions").len(), 31);
        assert_eq!(column_names("changes").len(), 38);
        // `chain` is last but for the columns added after schema version 7.
        for t in TABLES {
            let after = match t.name {
                "statements" => 12,
                "transactions" | "changes" => 6,
                _ => 0,
            };
            let chain = t.columns.iter().rev().nth(after).map(|c| c.0);
            assert_eq!(chain, Some("chain"), "{}", t.name);
        }
    }

    #[test]
    fn end_user_columns_end_the_tables_that_name_one() {
        let types = [
            Ty::Id,
            Ty::EndUserSource,
            Ty::Bool,
            Ty::Text,
            Ty::Id,
            Ty::Id,
        ];
        let want: Vec<(&str, Ty)> = END_USER_COLUMNS.into_iter().zip(types).collect();
        for t in TABLES {
            let has = t.columns.iter().any(|(n, _)| *n == "end_user");
            let expected = matches!(t.name, "statements" | "transactions" | "changes");
            assert_eq!(has, expected, "{}", t.name);
            if expected {
                assert_eq!(t.columns[t.columns.len() - 6..], want[..], "{}", t.name);
            }
        }
    }
}
