//! Row types of the console's queries (RowBinary, by position) and the
//! select lists that produce them. Booleans are read as `u8` (`UInt8` on
//! 18.16, `Bool` on modern servers: one byte either way).

use clickhouse::Row;
use serde::Deserialize;

use crate::console::users::Role;

/// One statement record, as lists and timelines show it.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StatementRow {
    pub instance_id: String,
    pub seq: u64,
    pub event_time: i64,
    pub duration_us: u64,
    pub session_id: String,
    pub user: String,
    pub db_role: String,
    pub database: String,
    pub client_addr: String,
    pub application_name: String,
    pub kind: String,
    pub class: String,
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    pub rows: u64,
    pub success: u8,
    pub sqlstate: String,
    pub error_message: String,
    pub statement: String,
    pub transaction_id: String,
    pub fingerprint: u64,
    pub command_tag: String,
    pub protocol: String,
    pub params: Vec<Option<String>>,
    /// The columns it touched and their labels (schema version 8).
    pub columns_read: Vec<String>,
    pub columns_written: Vec<String>,
    pub labels: Vec<String>,
    pub via: Vec<String>,
    /// The end user the application claimed (schema version 9).
    pub end_user: String,
    pub end_user_source: String,
    pub end_user_verified: u8,
    pub end_user_reason: String,
    pub request_id: String,
    pub trace_id: String,
}

/// The select list of [`StatementRow`]; a dba gets no parameter values
/// (the array is emptied in the query, so they never leave ClickHouse).
pub fn statement_columns(role: Role) -> &'static str {
    match role {
        Role::Auditor => "instance_id, seq, event_time, duration_us, session_id, `user`, db_role, `database`, client_addr, application_name, kind, class, objects_read, objects_written, `rows`, success, sqlstate, error_message, `statement`, toString(transaction_id), fingerprint, command_tag, protocol, params, columns_read, columns_written, labels, via, end_user, toString(end_user_source), toUInt8(end_user_verified), end_user_reason, request_id, trace_id",
        Role::Dba => "instance_id, seq, event_time, duration_us, session_id, `user`, db_role, `database`, client_addr, application_name, kind, class, objects_read, objects_written, `rows`, success, sqlstate, error_message, `statement`, toString(transaction_id), fingerprint, command_tag, protocol, arrayFilter(x -> 0, params), columns_read, columns_written, labels, via, end_user, toString(end_user_source), toUInt8(end_user_verified), end_user_reason, request_id, trace_id",
    }
}

/// One session event (connect, auth_ok, auth_failed, disconnect).
#[derive(Debug, Clone, Row, Deserialize)]
pub struct SessionEventRow {
    pub event_time: i64,
    pub event_type: String,
    pub session_id: String,
    pub user: String,
    pub db_role: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub application_name: String,
    pub tls: u8,
    pub auth_method: String,
    pub reason: String,
    pub statements: u64,
    pub duration_us: u64,
}

pub const SESSION_EVENT_COLUMNS: &str = "event_time, event_type, session_id, `user`, db_role, `database`, client_addr, client_port, application_name, toUInt8(tls), auth_method, reason, statements, duration_us";

/// A session as the session list shows it (its events folded).
#[derive(Debug, Clone, Row, Deserialize)]
pub struct SessionRow {
    pub session_id: String,
    pub user: String,
    pub db_role: String,
    pub database: String,
    pub client_addr: String,
    pub application_name: String,
    pub started: i64,
    pub last_event: i64,
    pub statements: u64,
    pub events: Vec<String>,
    pub tls: u8,
}

/// How a transaction ended, and what ROLLBACK TO SAVEPOINT undid in it.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct TransactionRow {
    pub transaction_id: String,
    pub outcome: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub rows_changed: u64,
    pub undone_from_seq: Vec<u64>,
    pub undone_to_seq: Vec<u64>,
}

/// One row change with its key and before/after values.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct ChangeRow {
    pub event_time: i64,
    pub commit_time: i64,
    pub database: String,
    pub schema: String,
    pub table: String,
    pub op: String,
    pub key_names: Vec<String>,
    pub key_values: Vec<Option<String>>,
    pub old_names: Vec<String>,
    pub old_values: Vec<Option<String>>,
    pub new_names: Vec<String>,
    pub new_values: Vec<Option<String>>,
    pub attribution: String,
    pub transaction_id: String,
    pub statement_seq: Option<u64>,
    pub session_id: String,
    pub user: String,
    pub commit_lsn: u64,
    pub change_index: u32,
}

pub const CHANGE_COLUMNS: &str = "event_time, commit_time, `database`, `schema`, `table`, op, `key.name`, `key.value`, `old.name`, `old.value`, `new.name`, `new.value`, attribution, ifNull(toString(transaction_id), ''), statement_seq, session_id, `user`, commit_lsn, change_index";

/// One side of a column's change: absent, NULL, or a value.
pub type Side = Option<Option<String>>;

/// What redaction looks like in a `changes` value: `cdc.redact_columns`
/// stores `hmac:` and a keyed hash instead of the value
/// (`cdc::marker::MarkerKey::keyed_hash`). The record has no other mark
/// of which columns were redacted.
pub const REDACTED_PREFIX: &str = "hmac:";

/// What a dba sees instead of a redacted column's (hashed) value.
pub const HIDDEN: &str = "(redacted)";

impl ChangeRow {
    /// A dba does not see the stored values of redacted columns, not even
    /// their hashes (which show when two values are equal).
    pub fn for_role(mut self, role: Role) -> ChangeRow {
        if role == Role::Dba {
            for v in self
                .key_values
                .iter_mut()
                .chain(self.old_values.iter_mut())
                .chain(self.new_values.iter_mut())
                .flatten()
            {
                if v.starts_with(REDACTED_PREFIX) {
                    *v = HIDDEN.to_string();
                }
            }
        }
        self
    }

    /// `col=value,...` of the key, as the `row_history` view spells it.
    pub fn row_key(&self) -> String {
        self.key_names
            .iter()
            .zip(&self.key_values)
            .map(|(n, v)| format!("{n}={}", v.as_deref().unwrap_or("NULL")))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// (column, before, after) of every column either side names, in the
    /// order they come (old first). `None`: the side does not have the
    /// column (an insert has no before; PostgreSQL sends no old row for an
    /// update without REPLICA IDENTITY FULL); `Some(None)`: SQL NULL.
    pub fn diff(&self) -> Vec<(String, Side, Side)> {
        let mut out: Vec<(String, Side, Side)> = Vec::new();
        for (n, v) in self.old_names.iter().zip(&self.old_values) {
            out.push((n.clone(), Some(v.clone()), None));
        }
        for (n, v) in self.new_names.iter().zip(&self.new_values) {
            match out.iter_mut().find(|(name, _, _)| name == n) {
                Some(entry) => entry.2 = Some(v.clone()),
                None => out.push((n.clone(), None, Some(v.clone()))),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ChangeRow {
        ChangeRow {
            event_time: 0,
            commit_time: 0,
            database: "d".into(),
            schema: "public".into(),
            table: "t".into(),
            op: "update".into(),
            key_names: vec!["id".into()],
            key_values: vec![Some("1".into())],
            old_names: vec!["id".into(), "ssn".into()],
            old_values: vec![Some("1".into()), Some("hmac:ab".into())],
            new_names: vec!["id".into(), "ssn".into(), "note".into()],
            new_values: vec![Some("1".into()), Some("hmac:cd".into()), None],
            attribution: "statement".into(),
            transaction_id: String::new(),
            statement_seq: Some(3),
            session_id: "s".into(),
            user: "u".into(),
            commit_lsn: 1,
            change_index: 0,
        }
    }

    #[test]
    fn dba_sees_no_redacted_values() {
        let auditor = change().for_role(Role::Auditor);
        assert_eq!(auditor.old_values[1].as_deref(), Some("hmac:ab"));
        let dba = change().for_role(Role::Dba);
        assert_eq!(dba.old_values[1].as_deref(), Some(HIDDEN));
        assert_eq!(dba.new_values[1].as_deref(), Some(HIDDEN));
        assert_eq!(dba.new_values[0].as_deref(), Some("1"));
        assert_eq!(dba.row_key(), "id=1");
        let diff = dba.diff();
        assert_eq!(diff.len(), 3);
        assert_eq!(diff[2], ("note".into(), None, Some(None)));
        assert_eq!(diff[1].1, Some(Some(HIDDEN.to_string())));
    }
}
