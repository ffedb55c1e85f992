//! The canonical bytes of a record, which the chain hashes. Specified in
//! docs/integrity.md so that an auditor can compute them from JSON Lines or
//! ClickHouse rows alike (`scripts/verify_trail.py` does):
//!
//! the table name, then every column of the record's ClickHouse table in
//! table order except `chain`, each as
//! - integers (`UInt8`..`UInt64`, `Int64` times in microseconds since the
//!   epoch): little-endian, at their width; booleans one byte, 0 or 1;
//! - text: its byte length as u32 LE, then its UTF-8 bytes;
//! - UUID: its 16 bytes in RFC 4122 order;
//! - nullable: a 0 byte for NULL, else a 1 byte and the value;
//! - array: its length as u32 LE, then each element;
//! - `Enum8` (`end_user_source`): one byte, the enum's value.
//!
//! `statements.params` absent (parameters not recorded) is the empty array,
//! as ClickHouse stores it. Columns added to a table after its records were
//! first chained form optional tails ([`OPTIONAL_TAIL`]): schema version
//! 8's `columns_read` to `catalog_version` and 9's `end_user` to `trace_id`
//! on `statements`, 9's `end_user` to `trace_id` on `transactions` and
//! `changes`. A tail is left out when it and every tail after it hold
//! their defaults, so that records chained before them keep their bytes
//! ([`drop_default_tails`]).

use uuid::Uuid;

use crate::audit::change_event::{ChangeEvent, Columns};
use crate::audit::record::{
    ChangeRecord, CheckpointRecord, GapRecord, LifecycleRecord, Record, RecordHeader,
    SessionRecord, StatementRecord, TransactionRecord,
};
use crate::identity::EndUser;

/// Appends `record`'s canonical bytes to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    encode_with(&mut Enc::new(out), record);
}

fn encode_with(e: &mut Enc, record: &Record) {
    e.text("", record.table());
    match record {
        Record::Statement(r) => statement(e, r),
        Record::Session(r) => session(e, r),
        Record::Gap(r) => gap(e, r),
        Record::Transaction(r) => transaction(e, r),
        Record::Change(r) => change(e, r),
        Record::Checkpoint(r) => checkpoint(e, r),
        Record::Lifecycle(r) => lifecycle(e, r),
    }
}

/// What a checkpoint signature's message starts with.
pub const CHECKPOINT_DOMAIN: &[u8] = b"pgtrail checkpoint v1\n";

/// The bytes an Ed25519 checkpoint signature covers: the checkpoint's
/// canonical bytes with `signature` empty, after a domain prefix.
pub fn checkpoint_message(r: &CheckpointRecord) -> Vec<u8> {
    let mut out = CHECKPOINT_DOMAIN.to_vec();
    let mut unsigned = r.clone();
    unsigned.signature.clear();
    encode(&Record::Checkpoint(Box::new(unsigned)), &mut out);
    out
}

fn header(e: &mut Enc, h: &RecordHeader) {
    let RecordHeader {
        event_id,
        instance_id,
        seq,
        event_time,
        chain: _,
    } = h;
    e.uuid("event_id", event_id);
    e.text("instance_id", instance_id);
    e.u64("seq", *seq);
    e.i64("event_time", *event_time);
}

/// The columns every record of a session carries, from `session_id` to
/// `application_name` (`effective_role` after `db_role`).
#[allow(clippy::too_many_arguments)]
fn who(
    e: &mut Enc,
    session_id: &str,
    backend_pid: u32,
    user: &str,
    db_role: &str,
    effective_role: &str,
    database: &str,
    client_addr: &str,
    client_port: u16,
    application_name: &str,
) {
    e.text("session_id", session_id);
    e.u32("backend_pid", backend_pid);
    e.text("user", user);
    e.text("db_role", db_role);
    e.text("effective_role", effective_role);
    e.text("database", database);
    e.text("client_addr", client_addr);
    e.u16("client_port", client_port);
    e.text("application_name", application_name);
}

fn statement(e: &mut Enc, r: &StatementRecord) {
    header(e, &r.header);
    e.u64("duration_us", r.duration_us);
    who(
        e,
        &r.session_id,
        r.backend_pid,
        &r.user,
        &r.db_role,
        &r.effective_role,
        &r.database,
        &r.client_addr,
        r.client_port,
        &r.application_name,
    );
    e.text("protocol", r.protocol.name());
    e.text("statement", &r.statement);
    e.bool("statement_truncated", r.statement_truncated);
    e.bool("statement_escaped", r.statement_escaped);
    e.u64("fingerprint", r.fingerprint);
    e.text("normalized", &r.normalized);
    e.text("kind", &r.kind);
    e.text("class", &r.class);
    e.text("crud", &r.crud);
    e.text("audit_class", &r.audit_class);
    e.texts("objects_read", &r.objects_read);
    e.texts("objects_written", &r.objects_written);
    e.texts("functions", &r.functions);
    e.text("parser", &r.parser);
    e.text("command_tag", &r.command_tag);
    e.u64("rows", r.rows);
    e.bool("success", r.success);
    e.text("sqlstate", &r.sqlstate);
    e.text("error_message", &r.error_message);
    e.text("txn_status", &r.txn_status);
    e.uuid("transaction_id", &r.transaction_id);
    let params = r.params.as_deref().unwrap_or_default();
    e.opt_texts("params", params.iter().map(Option::as_deref), params.len());
    let v8 = e.out.len();
    let c = &r.columns;
    e.texts("columns_read", &c.columns_read);
    e.texts("columns_written", &c.columns_written);
    e.texts("labels", &c.labels);
    e.texts("via", &c.via);
    e.texts("columns_unresolved", &c.columns_unresolved);
    e.u64("catalog_version", c.catalog_version);
    let v9 = e.out.len();
    end_user(e, &r.end_user);
    drop_default_tails(e.out, &[v8, v9]);
}

/// Schema version 9's columns: the end user a record names.
fn end_user(e: &mut Enc, u: &EndUser) {
    e.text("end_user", &u.end_user);
    e.enum8("end_user_source", u.end_user_source.code());
    e.bool("end_user_verified", u.end_user_verified);
    e.text("end_user_reason", &u.end_user_reason);
    e.text("request_id", &u.request_id);
    e.text("trace_id", &u.trace_id);
}

/// Columns added to a table after its records were first chained
/// (`OPTIONAL_TAIL`) are encoded only when they, or a tail after them,
/// are not all their defaults, so records written before them keep their
/// canonical bytes (and chain). Every default encodes as zero bytes (empty
/// text or array: a zero length; zero integer; false; an enum's value 0),
/// so "all default" is "all zero": `out` is cut at the first of `tails`
/// (ascending offsets where each tail begins) after which every byte is
/// zero. A later tail that is not all zero keeps the earlier ones, zeros
/// and all.
pub fn drop_default_tails(out: &mut Vec<u8>, tails: &[usize]) {
    let zero_from = out.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
    if let Some(&cut) = tails.iter().find(|&&t| t >= zero_from) {
        out.truncate(cut);
    }
}

/// Per table, the first column of each of its optional tails, oldest
/// first (see [`drop_default_tails`]): schema version 8's columns of
/// `statements` from `columns_read`; version 9's end-user columns from
/// `end_user` on `statements`, `transactions` and `changes`.
pub const OPTIONAL_TAIL: &[(&str, &str)] = &[
    ("statements", "columns_read"),
    ("statements", "end_user"),
    ("transactions", "end_user"),
    ("changes", "end_user"),
];

fn session(e: &mut Enc, r: &SessionRecord) {
    header(e, &r.header);
    e.text("event_type", r.event_type.name());
    who(
        e,
        &r.session_id,
        r.backend_pid,
        &r.user,
        &r.db_role,
        &r.effective_role,
        &r.database,
        &r.client_addr,
        r.client_port,
        &r.application_name,
    );
    e.bool("tls", r.tls);
    e.text("auth_method", &r.auth_method);
    e.text("reason", &r.reason);
    e.u64("bytes_in", r.bytes_in);
    e.u64("bytes_out", r.bytes_out);
    e.u64("statements", r.statements);
    e.u64("duration_us", r.duration_us);
}

fn gap(e: &mut Enc, r: &GapRecord) {
    header(e, &r.header);
    e.u64("missing_events", r.missing_events);
    e.text("reason", &r.reason);
    e.u64("skipped_seqs", r.skipped_seqs);
}

fn transaction(e: &mut Enc, r: &TransactionRecord) {
    header(e, &r.header);
    e.uuid("transaction_id", &r.transaction_id);
    who(
        e,
        &r.session_id,
        r.backend_pid,
        &r.user,
        &r.db_role,
        &r.effective_role,
        &r.database,
        &r.client_addr,
        r.client_port,
        &r.application_name,
    );
    e.text("outcome", r.outcome.name());
    e.u64("statements", r.statements);
    e.u64("first_seq", r.first_seq);
    e.u64("last_seq", r.last_seq);
    e.i64("started_at", r.started_at);
    e.u64("duration_us", r.duration_us);
    e.u64("rows_changed", r.rows_changed);
    e.opt_u64("xid", r.xid);
    e.u64s("undone_from_seq", &r.undone_from_seq);
    e.u64s("undone_to_seq", &r.undone_to_seq);
    let v9 = e.out.len();
    end_user(e, &r.end_user);
    drop_default_tails(e.out, &[v9]);
}

fn change(e: &mut Enc, r: &ChangeRecord) {
    header(e, &r.header);
    let c: &ChangeEvent = &r.change;
    e.u64("commit_lsn", c.commit_lsn);
    e.u64("lsn", c.lsn);
    e.u32("change_index", c.change_index);
    e.u32("xid", c.xid);
    e.i64("commit_time", c.commit_time);
    e.text("database", &c.database);
    e.text("schema", &c.schema);
    e.text("table", &c.table);
    e.text("op", c.op.name());
    for (column, cols) in [("key", &c.key), ("old", &c.old), ("new", &c.new)] {
        nested(e, column, cols);
    }
    e.bool("old_complete", c.old_complete);
    e.texts("changed_columns", &c.changed_columns);
    e.texts("truncated_columns", &c.truncated_columns);
    match &c.transaction_id {
        None => e.null("transaction_id"),
        Some(id) => {
            e.some();
            e.uuid("transaction_id", id);
        }
    }
    e.opt_u64("statement_seq", c.statement_seq);
    e.text("session_id", &c.session_id);
    e.text("user", &c.user);
    e.text("db_role", &c.db_role);
    e.text("client_addr", &c.client_addr);
    e.text("application_name", &c.application_name);
    e.text("attribution", c.attribution.name());
    e.bool("forged_marker", c.forged_marker);
    let v9 = e.out.len();
    end_user(e, &r.end_user);
    drop_default_tails(e.out, &[v9]);
}

/// A Nested column-to-value list: `X.name` then `X.value`.
fn nested(e: &mut Enc, column: &'static str, cols: &Columns) {
    let (names, values) = match column {
        "key" => ("key.name", "key.value"),
        "old" => ("old.name", "old.value"),
        _ => ("new.name", "new.value"),
    };
    e.name(names);
    e.len(cols.len());
    for (n, _) in cols {
        e.raw_text(n);
    }
    e.opt_texts(values, cols.iter().map(|(_, v)| v.as_deref()), cols.len());
}

fn checkpoint(e: &mut Enc, r: &CheckpointRecord) {
    header(e, &r.header);
    e.text("previous_chain", &r.previous_chain);
    e.u64("records", r.records);
    e.text("key_id", &r.key_id);
    e.text("signature", &r.signature);
}

fn lifecycle(e: &mut Enc, r: &LifecycleRecord) {
    header(e, &r.header);
    e.text("event_type", r.event_type.name());
    e.text("version", &r.version);
    e.text("config_digest", &r.config_digest);
    e.text("detail", &r.detail);
    e.u64("previous_seq", r.previous_seq);
    e.text("previous_chain", &r.previous_chain);
    e.bool("clean", r.clean);
}

/// The encoder; in tests it also lists the columns it wrote, which must be
/// the table's (`columns_are_the_tables`).
struct Enc<'a> {
    out: &'a mut Vec<u8>,
    #[cfg(test)]
    names: Vec<&'static str>,
}

impl<'a> Enc<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Enc {
            out,
            #[cfg(test)]
            names: Vec::new(),
        }
    }

    #[cfg_attr(not(test), allow(unused_variables))]
    fn name(&mut self, name: &'static str) {
        #[cfg(test)]
        if !name.is_empty() {
            self.names.push(name);
        }
    }

    fn len(&mut self, n: usize) {
        // Lengths past u32 cannot occur: statements and values are cut far
        // below 4 GiB.
        self.out
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    fn raw_text(&mut self, s: &str) {
        self.len(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn text(&mut self, name: &'static str, s: &str) {
        self.name(name);
        self.raw_text(s);
    }

    fn texts(&mut self, name: &'static str, v: &[impl AsRef<str>]) {
        self.name(name);
        self.len(v.len());
        for s in v {
            self.raw_text(s.as_ref());
        }
    }

    fn opt_texts<'s>(
        &mut self,
        name: &'static str,
        v: impl Iterator<Item = Option<&'s str>>,
        n: usize,
    ) {
        self.name(name);
        self.len(n);
        for s in v {
            match s {
                None => self.out.push(0),
                Some(s) => {
                    self.out.push(1);
                    self.raw_text(s);
                }
            }
        }
    }

    fn u64s(&mut self, name: &'static str, v: &[u64]) {
        self.name(name);
        self.len(v.len());
        for n in v {
            self.out.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn u64(&mut self, name: &'static str, n: u64) {
        self.name(name);
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    fn i64(&mut self, name: &'static str, n: i64) {
        self.name(name);
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    fn u32(&mut self, name: &'static str, n: u32) {
        self.name(name);
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    fn u16(&mut self, name: &'static str, n: u16) {
        self.name(name);
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    /// An `Enum8` column: one byte, the enum's value.
    fn enum8(&mut self, name: &'static str, value: i8) {
        self.name(name);
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn bool(&mut self, name: &'static str, b: bool) {
        self.name(name);
        self.out.push(u8::from(b));
    }

    fn uuid(&mut self, name: &'static str, id: &Uuid) {
        self.name(name);
        self.out.extend_from_slice(id.as_bytes());
    }

    fn opt_u64(&mut self, name: &'static str, n: Option<u64>) {
        match n {
            None => self.null(name),
            Some(n) => {
                self.some();
                self.u64(name, n);
            }
        }
    }

    fn null(&mut self, name: &'static str) {
        self.name(name);
        self.out.push(0);
    }

    fn some(&mut self) {
        self.out.push(1);
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
