//! The JSON Lines encoding of records, written by hand. The serde derive on
//! the record types stays the reference (and reads records back), but it
//! escapes every key and scans text one byte at a time, which made it the
//! largest cost of the JSON Lines sink. The tests check that both encodings
//! agree byte for byte; the encoders destructure each record without `..`,
//! so a new field does not compile until it is written here too.

use super::{
    write_micros, GapRecord, Record, RecordHeader, SessionRecord, StatementRecord,
    TransactionRecord,
};

/// Appends `record` as one JSON object (no newline) to `out`.
pub fn write_record(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Statement(s) => statement(s, out),
        Record::Session(s) => session(s, out),
        Record::Gap(g) => gap(g, out),
        Record::Transaction(t) => transaction(t, out),
        Record::Change(c) => change::change(c, out),
        Record::Checkpoint(c) => integrity::checkpoint(c, out),
        Record::Lifecycle(l) => integrity::lifecycle(l, out),
    }
    out.push(b'}');
}

fn statement(r: &StatementRecord, out: &mut Vec<u8>) {
    let StatementRecord {
        header,
        duration_us,
        session_id,
        backend_pid,
        user,
        db_role,
        effective_role,
        database,
        client_addr,
        client_port,
        application_name,
        protocol,
        statement,
        statement_truncated,
        statement_escaped,
        fingerprint,
        normalized,
        kind,
        class,
        crud,
        audit_class,
        objects_read,
        objects_written,
        functions,
        parser,
        command_tag,
        rows,
        success,
        sqlstate,
        error_message,
        txn_status,
        transaction_id,
        params,
        columns,
        end_user,
    } = r;
    let mut o = Object::start(out, "statements", header);
    o.u64("duration_us", *duration_us);
    o.str("session_id", session_id);
    o.u64("backend_pid", u64::from(*backend_pid));
    o.str("user", user);
    o.str("db_role", db_role);
    o.str("effective_role", effective_role);
    o.str("database", database);
    o.str("client_addr", client_addr);
    o.u64("client_port", u64::from(*client_port));
    o.str("application_name", application_name);
    o.str("protocol", protocol.name());
    o.str("statement", statement);
    o.bool("statement_truncated", *statement_truncated);
    o.bool("statement_escaped", *statement_escaped);
    o.u64("fingerprint", *fingerprint);
    o.str("normalized", normalized);
    o.str("kind", kind);
    o.str("class", class);
    o.str("crud", crud);
    o.str("audit_class", audit_class);
    o.strs(
        "objects_read",
        objects_read.iter().map(|s| Some(s.as_str())),
    );
    o.strs(
        "objects_written",
        objects_written.iter().map(|s| Some(s.as_str())),
    );
    o.strs("functions", functions.iter().map(|s| Some(s.as_str())));
    o.str("parser", parser);
    o.str("command_tag", command_tag);
    o.u64("rows", *rows);
    o.bool("success", *success);
    o.str("sqlstate", sqlstate);
    o.str("error_message", error_message);
    o.str("txn_status", txn_status);
    o.uuid("transaction_id", transaction_id);
    if let Some(params) = params {
        o.strs("params", params.iter().map(Option::as_deref));
    }
    column_access(&mut o, columns);
    end_user_fields(&mut o, end_user);
}

/// Schema version 8's statement columns; each only when not empty.
fn column_access(o: &mut Object<'_>, c: &crate::audit::record::ColumnAccess) {
    for (key, list) in [
        ("columns_read", &c.columns_read),
        ("columns_written", &c.columns_written),
        ("labels", &c.labels),
        ("via", &c.via),
        ("columns_unresolved", &c.columns_unresolved),
    ] {
        if !list.is_empty() {
            o.strs(key, list.iter().map(|s| Some(s.as_str())));
        }
    }
    if c.catalog_version != 0 {
        o.u64("catalog_version", c.catalog_version);
    }
}

fn session(r: &SessionRecord, out: &mut Vec<u8>) {
    let SessionRecord {
        header,
        event_type,
        session_id,
        backend_pid,
        user,
        db_role,
        effective_role,
        database,
        client_addr,
        client_port,
        application_name,
        tls,
        auth_method,
        reason,
        bytes_in,
        bytes_out,
        statements,
        duration_us,
    } = r;
    let mut o = Object::start(out, "sessions", header);
    o.str("event_type", event_type.name());
    o.str("session_id", session_id);
    o.u64("backend_pid", u64::from(*backend_pid));
    o.str("user", user);
    o.str("db_role", db_role);
    o.str("effective_role", effective_role);
    o.str("database", database);
    o.str("client_addr", client_addr);
    o.u64("client_port", u64::from(*client_port));
    o.str("application_name", application_name);
    o.bool("tls", *tls);
    o.str("auth_method", auth_method);
    o.str("reason", reason);
    o.u64("bytes_in", *bytes_in);
    o.u64("bytes_out", *bytes_out);
    o.u64("statements", *statements);
    o.u64("duration_us", *duration_us);
}

fn transaction(r: &TransactionRecord, out: &mut Vec<u8>) {
    let TransactionRecord {
        header,
        transaction_id,
        session_id,
        backend_pid,
        user,
        db_role,
        effective_role,
        database,
        client_addr,
        client_port,
        application_name,
        outcome,
        statements,
        first_seq,
        last_seq,
        started_at,
        duration_us,
        rows_changed,
        xid,
        undone_from_seq,
        undone_to_seq,
        end_user,
    } = r;
    let mut o = Object::start(out, "transactions", header);
    o.uuid("transaction_id", transaction_id);
    o.str("session_id", session_id);
    o.u64("backend_pid", u64::from(*backend_pid));
    o.str("user", user);
    o.str("db_role", db_role);
    o.str("effective_role", effective_role);
    o.str("database", database);
    o.str("client_addr", client_addr);
    o.u64("client_port", u64::from(*client_port));
    o.str("application_name", application_name);
    o.str("outcome", outcome.name());
    o.u64("statements", *statements);
    o.u64("first_seq", *first_seq);
    o.u64("last_seq", *last_seq);
    o.time("started_at", *started_at);
    o.u64("duration_us", *duration_us);
    o.u64("rows_changed", *rows_changed);
    o.opt_u64("xid", *xid);
    o.u64s("undone_from_seq", undone_from_seq);
    o.u64s("undone_to_seq", undone_to_seq);
    end_user_fields(&mut o, end_user);
}

/// Schema version 9's end-user fields (statements, transactions,
/// changes); each only when not its default, as serde's
/// `skip_serializing_if` on `EndUser` leaves them out.
fn end_user_fields(o: &mut Object<'_>, e: &crate::identity::EndUser) {
    let crate::identity::EndUser {
        end_user,
        end_user_source,
        end_user_verified,
        end_user_reason,
        request_id,
        trace_id,
    } = e;
    if !end_user.is_empty() {
        o.str("end_user", end_user);
    }
    if *end_user_source != crate::identity::Source::None {
        o.str("end_user_source", end_user_source.name());
    }
    if *end_user_verified {
        o.bool("end_user_verified", true);
    }
    for (key, value) in [
        ("end_user_reason", end_user_reason),
        ("request_id", request_id),
        ("trace_id", trace_id),
    ] {
        if !value.is_empty() {
            o.str(key, value);
        }
    }
}

fn gap(r: &GapRecord, out: &mut Vec<u8>) {
    let GapRecord {
        header,
        missing_events,
        reason,
        skipped_seqs,
    } = r;
    let mut o = Object::start(out, "gaps", header);
    o.u64("missing_events", *missing_events);
    o.str("reason", reason);
    o.u64("skipped_seqs", *skipped_seqs);
}

/// An object being written; keys are pgtrail's own field names, which need
/// no escaping.
struct Object<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Object<'a> {
    /// `{"record":TABLE` and the header fields, as serde's internally
    /// tagged enum with a flattened header writes them.
    fn start(out: &'a mut Vec<u8>, table: &str, header: &RecordHeader) -> Object<'a> {
        let RecordHeader {
            event_id,
            instance_id,
            seq,
            event_time,
            chain,
        } = header;
        out.extend_from_slice(b"{\"record\":");
        string(out, table);
        let mut o = Object { out };
        o.uuid("event_id", event_id);
        o.str("instance_id", instance_id);
        o.u64("seq", *seq);
        o.time("event_time", *event_time);
        o.str(
            "chain",
            crate::audit::chain::ChainText::of(chain.as_ref()).as_str(),
        );
        o
    }

    fn key(&mut self, key: &str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        string(self.out, value);
    }

    fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn uuid(&mut self, key: &str, id: &uuid::Uuid) {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.str(key, id.hyphenated().encode_lower(&mut text));
    }

    /// A time as RFC 3339 text.
    fn time(&mut self, key: &str, micros: i64) {
        self.key(key);
        self.out.push(b'"');
        write_micros(micros, self.out);
        self.out.push(b'"');
    }

    fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        match value {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    fn null(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    fn u64s(&mut self, key: &str, values: &[u64]) {
        self.key(key);
        self.out.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out
                .extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
        }
        self.out.push(b']');
    }

    /// An array of strings, `None` as `null`.
    fn strs<'s>(&mut self, key: &str, values: impl Iterator<Item = Option<&'s str>>) {
        self.key(key);
        self.out.push(b'[');
        for (i, value) in values.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            match value {
                Some(s) => string(self.out, s),
                None => self.out.extend_from_slice(b"null"),
            }
        }
        self.out.push(b']');
    }
}

/// `s` as a JSON string, escaped as serde_json escapes: `"`, `\` and the
/// control characters, nothing else.
fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Most text needs no escape: step over it eight bytes at a time.
        if let Some(word) = bytes.get(i..i + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            if !any_needs_escape(u64::from_le_bytes(eight)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if b >= 0x20 && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[clean_from..i]);
        escape(out, b);
        i += 1;
        clean_from = i;
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// Whether any byte of `word` is a control character, `"` or `\`
/// ("determine if a word has a byte less than n" and "has a zero byte"
/// from Bit Twiddling Hacks; exact for "any", which is all that is asked).
fn any_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let has_control = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
    has_control
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
}

fn escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

#[path = "json_change.rs"]
mod change;

#[path = "json_integrity.rs"]
mod integrity;

#[cfg(test)]
#[path = "json_tests.rs"]
pub(crate) mod tests;
