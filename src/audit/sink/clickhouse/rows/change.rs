//! The `changes` row. `key`, `old` and `new` are Nested columns on the
//! server (`key.name Array(String)`, `key.value Array(Nullable(String))`,
//! ...), which 18.16 and modern servers both have (18.16 has no `Map`):
//! a NULL value is a null element, an absent column has no element.

use clickhouse::Row;
use serde::Serialize;
use uuid::Uuid;

use super::header;
use crate::audit::chain::ChainText;
use crate::audit::change_event::Columns;
use crate::audit::record::ChangeRecord;

#[derive(Debug, Clone, Row, Serialize)]
pub struct ChangeRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub commit_lsn: u64,
    pub lsn: u64,
    pub change_index: u32,
    pub xid: u32,
    pub commit_time: i64,
    pub database: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    pub op: &'a str,
    #[serde(rename = "key.name")]
    pub key_name: Vec<&'a str>,
    #[serde(rename = "key.value")]
    pub key_value: Vec<Option<&'a str>>,
    #[serde(rename = "old.name")]
    pub old_name: Vec<&'a str>,
    #[serde(rename = "old.value")]
    pub old_value: Vec<Option<&'a str>>,
    #[serde(rename = "new.name")]
    pub new_name: Vec<&'a str>,
    #[serde(rename = "new.value")]
    pub new_value: Vec<Option<&'a str>>,
    pub old_complete: bool,
    pub changed_columns: &'a [std::sync::Arc<str>],
    pub truncated_columns: &'a [std::sync::Arc<str>],
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub transaction_id: Option<Uuid>,
    pub statement_seq: Option<u64>,
    pub session_id: &'a str,
    pub user: &'a str,
    pub db_role: &'a str,
    pub client_addr: &'a str,
    pub application_name: &'a str,
    pub attribution: &'a str,
    pub forged_marker: bool,
    pub chain: ChainText,
    pub end_user: &'a str,
    /// `crate::identity::Source::code`, the `Enum8`'s value.
    pub end_user_source: i8,
    pub end_user_verified: bool,
    pub end_user_reason: &'a str,
    pub request_id: &'a str,
    pub trace_id: &'a str,
}

fn names(cols: &Columns) -> Vec<&str> {
    cols.iter().map(|(n, _)| &**n).collect()
}

fn values(cols: &Columns) -> Vec<Option<&str>> {
    cols.iter().map(|(_, v)| v.as_deref()).collect()
}

pub(super) fn change_row(r: &ChangeRecord) -> ChangeRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    let c = &r.change;
    ChangeRow {
        event_id,
        instance_id,
        seq,
        event_time,
        commit_lsn: c.commit_lsn,
        lsn: c.lsn,
        change_index: c.change_index,
        xid: c.xid,
        commit_time: c.commit_time,
        database: &c.database,
        schema: &c.schema,
        table: &c.table,
        op: c.op.name(),
        key_name: names(&c.key),
        key_value: values(&c.key),
        old_name: names(&c.old),
        old_value: values(&c.old),
        new_name: names(&c.new),
        new_value: values(&c.new),
        old_complete: c.old_complete,
        changed_columns: &c.changed_columns,
        truncated_columns: &c.truncated_columns,
        transaction_id: c.transaction_id,
        statement_seq: c.statement_seq,
        session_id: &c.session_id,
        user: &c.user,
        db_role: &c.db_role,
        client_addr: &c.client_addr,
        application_name: &c.application_name,
        attribution: c.attribution.name(),
        forged_marker: c.forged_marker,
        chain: super::chain(&r.header),
        end_user: &r.end_user.end_user,
        end_user_source: r.end_user.end_user_source.code(),
        end_user_verified: r.end_user.end_user_verified,
        end_user_reason: &r.end_user.end_user_reason,
        request_id: &r.end_user.request_id,
        trace_id: &r.end_user.trace_id,
    }
}
