//! Rows as sent to ClickHouse (RowBinary through the `clickhouse` crate).
//!
//! One type per table serves every server version: `event_time` is Int64
//! microseconds since the epoch, which is both the old schema's column type
//! and the RowBinary encoding of the modern `DateTime64(6, 'UTC')`; booleans
//! are one byte whether the column is `UInt8` or `Bool`; `LowCardinality(String)`
//! is a plain string on the wire.
//!
//! Rows borrow from the record they are made of: they only live until they
//! are encoded (`rowbinary`), so copying every string would be waste.
//!
//! Spooled rows are stored in this layout (`spool_rows`): changing a row
//! type's fields needs new frame tags, see `rowbinary::Table`.

use clickhouse::Row;
use serde::Serialize;
use uuid::Uuid;

mod change;
mod integrity;
mod legacy;
pub use change::ChangeRow;
pub use integrity::{CheckpointRow, LifecycleRow};
pub use legacy::{Before, SessionRowV1, StatementRowV1, StatementRowV2};

use crate::audit::chain::ChainText;

use crate::audit::record::{
    GapRecord, Record, RecordHeader, SessionRecord, StatementRecord, TransactionRecord,
};

#[derive(Debug, Clone, Row, Serialize)]
pub struct StatementRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub duration_us: u64,
    pub session_id: &'a str,
    pub backend_pid: u32,
    pub user: &'a str,
    pub db_role: &'a str,
    pub effective_role: &'a str,
    pub database: &'a str,
    pub client_addr: &'a str,
    pub client_port: u16,
    pub application_name: &'a str,
    pub protocol: &'a str,
    pub statement: &'a str,
    pub statement_truncated: bool,
    pub statement_escaped: bool,
    pub fingerprint: u64,
    pub normalized: &'a str,
    pub kind: &'a str,
    pub class: &'a str,
    pub crud: &'a str,
    pub audit_class: &'a str,
    pub objects_read: &'a [String],
    pub objects_written: &'a [String],
    pub functions: &'a [String],
    pub parser: &'a str,
    pub command_tag: &'a str,
    pub rows: u64,
    pub success: bool,
    pub sqlstate: &'a str,
    pub error_message: &'a str,
    pub txn_status: &'a str,
    #[serde(with = "clickhouse::serde::uuid")]
    pub transaction_id: Uuid,
    /// Empty when parameters are not recorded.
    pub params: &'a [Option<String>],
    pub chain: ChainText,
    pub columns_read: &'a [String],
    pub columns_written: &'a [String],
    pub labels: &'a [String],
    pub via: &'a [String],
    pub columns_unresolved: &'a [String],
    pub catalog_version: u64,
    pub end_user: &'a str,
    /// `crate::identity::Source::code`, the `Enum8`'s value.
    pub end_user_source: i8,
    pub end_user_verified: bool,
    pub end_user_reason: &'a str,
    pub request_id: &'a str,
    pub trace_id: &'a str,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct TransactionRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    #[serde(with = "clickhouse::serde::uuid")]
    pub transaction_id: Uuid,
    pub session_id: &'a str,
    pub backend_pid: u32,
    pub user: &'a str,
    pub db_role: &'a str,
    pub effective_role: &'a str,
    pub database: &'a str,
    pub client_addr: &'a str,
    pub client_port: u16,
    pub application_name: &'a str,
    pub outcome: &'a str,
    pub statements: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub started_at: i64,
    pub duration_us: u64,
    pub rows_changed: u64,
    pub xid: Option<u64>,
    pub undone_from_seq: &'a [u64],
    pub undone_to_seq: &'a [u64],
    pub chain: ChainText,
    pub end_user: &'a str,
    /// `crate::identity::Source::code`, the `Enum8`'s value.
    pub end_user_source: i8,
    pub end_user_verified: bool,
    pub end_user_reason: &'a str,
    pub request_id: &'a str,
    pub trace_id: &'a str,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct SessionRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub event_type: &'a str,
    pub session_id: &'a str,
    pub backend_pid: u32,
    pub user: &'a str,
    pub db_role: &'a str,
    pub effective_role: &'a str,
    pub database: &'a str,
    pub client_addr: &'a str,
    pub client_port: u16,
    pub application_name: &'a str,
    pub tls: bool,
    pub auth_method: &'a str,
    pub reason: &'a str,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub statements: u64,
    pub duration_us: u64,
    pub chain: ChainText,
}

#[derive(Debug, Clone, Default, Row, Serialize)]
pub struct GapRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub missing_events: u64,
    pub reason: &'a str,
    pub skipped_seqs: u64,
    pub chain: ChainText,
}

/// A row for one of the contract's tables. It lives on the stack for one
/// encode, borrowing from its record; boxing the statement row would cost
/// an allocation per record for nothing.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum AnyRow<'a> {
    Statement(StatementRow<'a>),
    Session(SessionRow<'a>),
    Gap(GapRow<'a>),
    Transaction(TransactionRow<'a>),
    Change(ChangeRow<'a>),
    Checkpoint(CheckpointRow<'a>),
    Lifecycle(LifecycleRow<'a>),
}

impl<'a> AnyRow<'a> {
    pub fn from_record(record: &'a Record) -> AnyRow<'a> {
        match record {
            Record::Statement(s) => AnyRow::Statement(statement_row(s)),
            Record::Session(s) => AnyRow::Session(session_row(s)),
            Record::Gap(g) => AnyRow::Gap(gap_row(g)),
            Record::Transaction(t) => AnyRow::Transaction(transaction_row(t)),
            Record::Change(c) => AnyRow::Change(change::change_row(c)),
            Record::Checkpoint(c) => AnyRow::Checkpoint(integrity::checkpoint_row(c)),
            Record::Lifecycle(l) => AnyRow::Lifecycle(integrity::lifecycle_row(l)),
        }
    }
}

fn header(h: &RecordHeader) -> (Uuid, &str, u64, i64) {
    (h.event_id, &h.instance_id, h.seq, h.event_time)
}

fn chain(h: &RecordHeader) -> ChainText {
    ChainText::of(h.chain.as_ref())
}

fn statement_row(r: &StatementRecord) -> StatementRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    StatementRow {
        event_id,
        instance_id,
        seq,
        event_time,
        duration_us: r.duration_us,
        session_id: &r.session_id,
        backend_pid: r.backend_pid,
        user: &r.user,
        db_role: &r.db_role,
        effective_role: &r.effective_role,
        database: &r.database,
        client_addr: &r.client_addr,
        client_port: r.client_port,
        application_name: &r.application_name,
        protocol: r.protocol.name(),
        statement: &r.statement,
        statement_truncated: r.statement_truncated,
        statement_escaped: r.statement_escaped,
        fingerprint: r.fingerprint,
        normalized: &r.normalized,
        kind: &r.kind,
        class: &r.class,
        crud: &r.crud,
        audit_class: &r.audit_class,
        objects_read: &r.objects_read,
        objects_written: &r.objects_written,
        functions: &r.functions,
        parser: &r.parser,
        command_tag: &r.command_tag,
        rows: r.rows,
        success: r.success,
        sqlstate: &r.sqlstate,
        error_message: &r.error_message,
        txn_status: &r.txn_status,
        transaction_id: r.transaction_id,
        params: r.params.as_deref().unwrap_or_default(),
        chain: chain(&r.header),
        columns_read: &r.columns.columns_read,
        columns_written: &r.columns.columns_written,
        labels: &r.columns.labels,
        via: &r.columns.via,
        columns_unresolved: &r.columns.columns_unresolved,
        catalog_version: r.columns.catalog_version,
        end_user: &r.end_user.end_user,
        end_user_source: r.end_user.end_user_source.code(),
        end_user_verified: r.end_user.end_user_verified,
        end_user_reason: &r.end_user.end_user_reason,
        request_id: &r.end_user.request_id,
        trace_id: &r.end_user.trace_id,
    }
}

fn transaction_row(r: &TransactionRecord) -> TransactionRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    TransactionRow {
        event_id,
        instance_id,
        seq,
        event_time,
        transaction_id: r.transaction_id,
        session_id: &r.session_id,
        backend_pid: r.backend_pid,
        user: &r.user,
        db_role: &r.db_role,
        effective_role: &r.effective_role,
        database: &r.database,
        client_addr: &r.client_addr,
        client_port: r.client_port,
        application_name: &r.application_name,
        outcome: r.outcome.name(),
        statements: r.statements,
        first_seq: r.first_seq,
        last_seq: r.last_seq,
        started_at: r.started_at,
        duration_us: r.duration_us,
        rows_changed: r.rows_changed,
        xid: r.xid,
        undone_from_seq: &r.undone_from_seq,
        undone_to_seq: &r.undone_to_seq,
        chain: chain(&r.header),
        end_user: &r.end_user.end_user,
        end_user_source: r.end_user.end_user_source.code(),
        end_user_verified: r.end_user.end_user_verified,
        end_user_reason: &r.end_user.end_user_reason,
        request_id: &r.end_user.request_id,
        trace_id: &r.end_user.trace_id,
    }
}

fn session_row(r: &SessionRecord) -> SessionRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    SessionRow {
        event_id,
        instance_id,
        seq,
        event_time,
        event_type: r.event_type.name(),
        session_id: &r.session_id,
        backend_pid: r.backend_pid,
        user: &r.user,
        db_role: &r.db_role,
        effective_role: &r.effective_role,
        database: &r.database,
        client_addr: &r.client_addr,
        client_port: r.client_port,
        application_name: &r.application_name,
        tls: r.tls,
        auth_method: &r.auth_method,
        reason: &r.reason,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        statements: r.statements,
        duration_us: r.duration_us,
        chain: chain(&r.header),
    }
}

fn gap_row(r: &GapRecord) -> GapRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    GapRow {
        event_id,
        instance_id,
        seq,
        event_time,
        missing_events: r.missing_events,
        reason: &r.reason,
        skipped_seqs: r.skipped_seqs,
        chain: chain(&r.header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::sink::clickhouse::schema::{column_names, END_USER_COLUMNS};

    #[test]
    fn rows_match_the_schema() {
        assert_eq!(StatementRow::COLUMN_NAMES, column_names("statements"));
        assert_eq!(SessionRow::COLUMN_NAMES, column_names("sessions"));
        assert_eq!(GapRow::COLUMN_NAMES, column_names("gaps"));
        assert_eq!(TransactionRow::COLUMN_NAMES, column_names("transactions"));
        assert_eq!(ChangeRow::COLUMN_NAMES, column_names("changes"));
        assert_eq!(CheckpointRow::COLUMN_NAMES, column_names("checkpoints"));
        assert_eq!(LifecycleRow::COLUMN_NAMES, column_names("lifecycle"));
    }

    /// The `statements` columns of schema version 8.
    const COLUMNS_V8: &[&str] = &[
        "columns_read",
        "columns_written",
        "labels",
        "via",
        "columns_unresolved",
        "catalog_version",
    ];

    /// The columns added after schema version 7 (8's and 9's).
    fn after_v7(n: &str) -> bool {
        COLUMNS_V8.contains(&n) || END_USER_COLUMNS.contains(&n)
    }

    #[test]
    fn the_layout_before_transaction_id_lacks_only_it() {
        let mut c = column_names("statements");
        c.retain(|n| !matches!(*n, "transaction_id" | "chain") && !after_v7(n));
        assert_eq!(StatementRowV2::COLUMN_NAMES, c);
    }

    #[test]
    fn earlier_layouts_lack_only_the_columns_of_schema_version_4() {
        let without = |table| -> Vec<&str> {
            let mut c = column_names(table);
            c.retain(|n| {
                !matches!(
                    *n,
                    "effective_role" | "backend_pid" | "transaction_id" | "chain"
                ) && !after_v7(n)
            });
            c
        };
        assert_eq!(StatementRowV1::COLUMN_NAMES, without("statements"));
        assert_eq!(SessionRowV1::COLUMN_NAMES, without("sessions"));
    }

    #[test]
    fn layouts_before_chain_lack_only_it() {
        let without = |table, cut: &[&str]| -> Vec<&str> {
            let mut c = column_names(table);
            c.retain(|n| !cut.contains(n));
            c
        };
        let chain = &["chain"][..];
        let end_user = &END_USER_COLUMNS[..];
        let mut chain_on = vec!["chain"];
        chain_on.extend_from_slice(COLUMNS_V8);
        chain_on.extend_from_slice(end_user);
        let mut v8_on = COLUMNS_V8.to_vec();
        v8_on.extend_from_slice(end_user);
        let mut chain_and_v9 = vec!["chain"];
        chain_and_v9.extend_from_slice(end_user);
        // statements: tags 6 (before chain), 9 (before 8), 16 (before 9).
        assert_eq!(
            Before::<StatementRow, 13>::COLUMN_NAMES,
            without("statements", &chain_on)
        );
        assert_eq!(
            Before::<StatementRow, 12>::COLUMN_NAMES,
            without("statements", &v8_on)
        );
        assert_eq!(
            Before::<StatementRow, 6>::COLUMN_NAMES,
            without("statements", end_user)
        );
        assert_eq!(
            Before::<SessionRow, 1>::COLUMN_NAMES,
            without("sessions", chain)
        );
        // transactions and changes: tags 7 and 8 (before chain), 12 and 13
        // (before 9).
        assert_eq!(
            Before::<TransactionRow, 7>::COLUMN_NAMES,
            without("transactions", &chain_and_v9)
        );
        assert_eq!(
            Before::<TransactionRow, 6>::COLUMN_NAMES,
            without("transactions", end_user)
        );
        assert_eq!(
            Before::<ChangeRow, 7>::COLUMN_NAMES,
            without("changes", &chain_and_v9)
        );
        assert_eq!(
            Before::<ChangeRow, 6>::COLUMN_NAMES,
            without("changes", end_user)
        );
        assert_eq!(
            Before::<GapRow, 2>::COLUMN_NAMES,
            without("gaps", &["chain", "skipped_seqs"])
        );
    }
}
