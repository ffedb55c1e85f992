//! The column lists of row layouts that earlier builds spooled: their
//! frames (tags 1, 2 and 4) are inserted under these lists, and ClickHouse
//! fills the columns added since with their defaults.

use std::marker::PhantomData;

use clickhouse::Row;

/// The columns of `T` but its last `N`: the layouts spooled before
/// columns were added at the end (`chain`, schema version 7).
pub struct Before<T, const N: usize>(PhantomData<T>);

impl<T: Row, const N: usize> Row for Before<T, N> {
    const COLUMN_NAMES: &'static [&'static str] =
        T::COLUMN_NAMES.split_at(T::COLUMN_NAMES.len() - N).0;
}

/// The columns of `statements` rows spooled by builds before
/// `backend_pid` and `effective_role` (frame tag 1): inserted under this
/// list, ClickHouse fills both with their defaults.
pub struct StatementRowV1;

impl Row for StatementRowV1 {
    const COLUMN_NAMES: &'static [&'static str] = &[
        "event_id",
        "instance_id",
        "seq",
        "event_time",
        "duration_us",
        "session_id",
        "user",
        "db_role",
        "database",
        "client_addr",
        "client_port",
        "application_name",
        "protocol",
        "statement",
        "statement_truncated",
        "statement_escaped",
        "fingerprint",
        "normalized",
        "kind",
        "class",
        "crud",
        "audit_class",
        "objects_read",
        "objects_written",
        "functions",
        "parser",
        "command_tag",
        "rows",
        "success",
        "sqlstate",
        "error_message",
        "txn_status",
        "params",
    ];
}

/// The columns of `statements` rows spooled by builds before
/// `transaction_id` (frame tag 4).
pub struct StatementRowV2;

impl Row for StatementRowV2 {
    const COLUMN_NAMES: &'static [&'static str] = &[
        "event_id",
        "instance_id",
        "seq",
        "event_time",
        "duration_us",
        "session_id",
        "backend_pid",
        "user",
        "db_role",
        "effective_role",
        "database",
        "client_addr",
        "client_port",
        "application_name",
        "protocol",
        "statement",
        "statement_truncated",
        "statement_escaped",
        "fingerprint",
        "normalized",
        "kind",
        "class",
        "crud",
        "audit_class",
        "objects_read",
        "objects_written",
        "functions",
        "parser",
        "command_tag",
        "rows",
        "success",
        "sqlstate",
        "error_message",
        "txn_status",
        "params",
    ];
}

/// The columns of `sessions` rows spooled by builds before
/// `backend_pid` and `effective_role` (frame tag 2).
pub struct SessionRowV1;

impl Row for SessionRowV1 {
    const COLUMN_NAMES: &'static [&'static str] = &[
        "event_id",
        "instance_id",
        "seq",
        "event_time",
        "event_type",
        "session_id",
        "user",
        "db_role",
        "database",
        "client_addr",
        "client_port",
        "application_name",
        "tls",
        "auth_method",
        "reason",
        "bytes_in",
        "bytes_out",
        "statements",
        "duration_us",
    ];
}
