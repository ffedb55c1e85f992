//! Audit records as written to sinks. Field names follow the record contract
//! of the design brief; JSON Lines and ClickHouse use the same names.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

use super::event::{Protocol, SessionEventType};

/// Columns shared by every record: identity and order of the record itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordHeader {
    /// UUIDv7.
    pub event_id: String,
    pub instance_id: String,
    /// Per-instance sequence, shared by every record type, so a gap shows.
    pub seq: u64,
    /// UTC, microsecond precision, RFC 3339.
    pub event_time: String,
}

/// One row of `statements`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub duration_us: u64,
    pub session_id: String,
    pub user: String,
    pub db_role: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub application_name: String,
    pub protocol: Protocol,
    pub statement: String,
    pub statement_truncated: bool,
    /// The text held bytes that are not UTF-8; they are escaped as `\xNN`.
    pub statement_escaped: bool,
    /// Stable hash of the normalized statement (see `sql`).
    pub fingerprint: u64,
    pub normalized: String,
    pub kind: String,
    pub class: String,
    pub crud: String,
    pub audit_class: String,
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    pub functions: Vec<String>,
    pub parser: String,
    pub command_tag: String,
    pub rows: u64,
    pub success: bool,
    pub sqlstate: String,
    pub error_message: String,
    pub txn_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Option<String>>>,
}

/// One row of `sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub event_type: SessionEventType,
    pub session_id: String,
    pub user: String,
    pub db_role: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub application_name: String,
    pub tls: bool,
    pub auth_method: String,
    pub reason: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub statements: u64,
    pub duration_us: u64,
}

/// Events that could not be audited (`fail_open` with a full queue).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GapRecord {
    #[serde(flatten)]
    pub header: RecordHeader,
    pub missing_events: u64,
    pub reason: String,
}

/// What a sink writes; `record` in JSON names the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    #[serde(rename = "statements")]
    Statement(Box<StatementRecord>),
    #[serde(rename = "sessions")]
    Session(Box<SessionRecord>),
    #[serde(rename = "gaps")]
    Gap(GapRecord),
}

impl Record {
    pub fn header(&self) -> &RecordHeader {
        match self {
            Record::Statement(s) => &s.header,
            Record::Session(s) => &s.header,
            Record::Gap(g) => &g.header,
        }
    }

    pub fn seq(&self) -> u64 {
        self.header().seq
    }
}

/// RFC 3339 UTC time with microseconds, e.g. `2026-11-29T12:00:00.000001Z`.
/// Written digit by digit: every record has one, and `format!` made this a
/// tenth of the audit writer's time.
pub fn format_time(t: SystemTime) -> String {
    let micros = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    };
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside what four digits hold; never for a real clock.
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        );
    }
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut out[0..4], y as u32);
    put_digits(&mut out[5..7], m);
    put_digits(&mut out[8..10], d);
    put_digits(&mut out[11..13], sod / 3600);
    put_digits(&mut out[14..16], sod % 3600 / 60);
    put_digits(&mut out[17..19], sod % 60);
    put_digits(&mut out[20..26], frac);
    out.iter().map(|&b| char::from(b)).collect()
}

/// Writes `n` as decimal into `out`, zero-padded to its length.
fn put_digits(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_796_041_530_123_456);
        assert_eq!(format_time(t), "2026-11-30T12:25:30.123456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_time(leap), "2000-02-29T00:00:00.000000Z");
        let before = UNIX_EPOCH - Duration::from_micros(1);
        assert_eq!(format_time(before), "1969-12-31T23:59:59.999999Z");
        let end = UNIX_EPOCH + Duration::from_micros(253_402_300_799_999_999);
        assert_eq!(format_time(end), "9999-12-31T23:59:59.999999Z");
    }
}
