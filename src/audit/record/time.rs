//! Record times: microseconds since the epoch, as RFC 3339 UTC text with
//! six fractional digits, written and read without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the epoch (negative before it).
pub fn micros_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// RFC 3339 UTC time with microseconds, e.g. `2026-11-29T12:00:00.000001Z`.
pub fn format_time(t: SystemTime) -> String {
    format_micros(micros_since_epoch(t))
}

/// `format_time` of microseconds since the epoch. Written digit by digit:
/// every record has one, and `format!` made this a tenth of the audit
/// writer's time.
pub fn format_micros(micros: i64) -> String {
    let mut text = Vec::with_capacity(27);
    write_micros(micros, &mut text);
    // Only ASCII digits and punctuation were written.
    String::from_utf8(text).unwrap_or_default()
}

/// Appends `format_micros(micros)` to `out`.
pub fn write_micros(micros: i64, out: &mut Vec<u8>) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside what four digits hold; never for a real clock.
        let text = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        );
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], y as u32);
    put_digits(&mut text[5..7], m);
    put_digits(&mut text[8..10], d);
    put_digits(&mut text[11..13], sod / 3600);
    put_digits(&mut text[14..16], sod % 3600 / 60);
    put_digits(&mut text[17..19], sod % 60);
    put_digits(&mut text[20..26], frac);
    out.extend_from_slice(&text);
}

/// Writes `n` as decimal into `out`, zero-padded to its length.
fn put_digits(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (the
/// form `format_time` writes).
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
    use crate::audit::record::RecordHeader;
    use std::time::Duration;
    use uuid::Uuid;

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
    fn header_is_text_in_json_and_reads_back() {
        let header = RecordHeader {
            event_id: Uuid::from_u64_pair(0x0190_d6c8_0000_7000, 0x8000_0000_0000_0001),
            instance_id: "i".into(),
            seq: 7,
            event_time: 1_796_041_530_123_456,
            chain: None,
        };
        let json = serde_json::to_value(&header).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event_id": "0190d6c8-0000-7000-8000-000000000001",
                "instance_id": "i",
                "seq": 7,
                "event_time": "2026-11-30T12:25:30.123456Z",
                "chain": "",
            })
        );
        let back: RecordHeader = serde_json::from_value(json).unwrap();
        assert_eq!(
            (back.event_id, back.event_time),
            (header.event_id, header.event_time)
        );
        // Damaged text reads as nil / the epoch instead of failing the record.
        let damaged: RecordHeader = serde_json::from_value(serde_json::json!({
            "event_id": "x", "instance_id": "i", "seq": 1, "event_time": "y",
        }))
        .unwrap();
        assert_eq!((damaged.event_id, damaged.event_time), (Uuid::nil(), 0));
    }

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
