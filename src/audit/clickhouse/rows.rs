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
//! Spooled rows are stored in this layout (`audit::spool::frame`): changing
//! a row type's fields needs new frame tags, see there.

use clickhouse::Row;
use serde::Serialize;
use uuid::Uuid;

use crate::audit::record::{GapRecord, Record, RecordHeader, SessionRecord, StatementRecord};

#[derive(Debug, Clone, Row, Serialize)]
pub struct StatementRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub duration_us: u64,
    pub session_id: &'a str,
    pub user: &'a str,
    pub db_role: &'a str,
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
    /// Empty when parameters are not recorded.
    pub params: &'a [Option<String>],
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
    pub user: &'a str,
    pub db_role: &'a str,
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
}

/// A row for one of the contract's tables.
#[derive(Debug, Clone)]
pub enum AnyRow<'a> {
    Statement(StatementRow<'a>),
    Session(SessionRow<'a>),
    Gap(GapRow<'a>),
}

impl<'a> AnyRow<'a> {
    pub fn from_record(record: &'a Record) -> AnyRow<'a> {
        match record {
            Record::Statement(s) => AnyRow::Statement(statement_row(s)),
            Record::Session(s) => AnyRow::Session(session_row(s)),
            Record::Gap(g) => AnyRow::Gap(gap_row(g)),
        }
    }
}

fn header(h: &RecordHeader) -> (Uuid, &str, u64, i64) {
    (
        Uuid::parse_str(&h.event_id).unwrap_or_default(),
        &h.instance_id,
        h.seq,
        parse_time_micros(&h.event_time).unwrap_or(0),
    )
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
        user: &r.user,
        db_role: &r.db_role,
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
        params: r.params.as_deref().unwrap_or_default(),
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
        user: &r.user,
        db_role: &r.db_role,
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
    }
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (the
/// form `record::format_time` writes).
pub fn parse_time_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut micros = 0i64;
    let rest = &s[19..];
    let rest = if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut scaled = 0i64;
        for (i, c) in frac[..digits].bytes().enumerate().take(6) {
            scaled += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
        }
        micros = scaled;
        &frac[digits..]
    } else {
        rest
    };
    if rest != "Z" || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros)
}

/// Days since 1970-01-01 of a Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::clickhouse::schema::column_names;
    use crate::audit::record::format_time;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_round_trip() {
        for micros in [0i64, 1, 951_782_400_000_000, 1_796_041_530_123_456] {
            let t = UNIX_EPOCH + Duration::from_micros(micros as u64);
            assert_eq!(parse_time_micros(&format_time(t)), Some(micros));
        }
        assert_eq!(
            parse_time_micros("2026-11-29T00:00:00Z"),
            Some(1_795_910_400_000_000)
        );
        assert_eq!(parse_time_micros("garbage"), None);
    }

    #[test]
    fn rows_match_the_schema() {
        assert_eq!(StatementRow::COLUMN_NAMES, column_names("statements"));
        assert_eq!(SessionRow::COLUMN_NAMES, column_names("sessions"));
        assert_eq!(GapRow::COLUMN_NAMES, column_names("gaps"));
    }
}
