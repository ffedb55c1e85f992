//! Frame encoding: `u32 length (LE) | u32 CRC32C of payload (LE) | payload`,
//! payload = `u64 seq (LE) | u8 table (1 statements, 2 sessions, 3 gaps) |
//! the row in RowBinary`, exactly as the INSERT carries it, so the sender
//! ships spooled rows without decoding them.
//!
//! Spools written by earlier builds hold `u64 seq | serde_json of the Record`
//! instead (the JSON starts with `{`, which is no table tag); those frames
//! are still read, and turned into RowBinary when read.
//!
//! The seq is in front so that recovery, acknowledgement and segment
//! deletion never have to parse records; the CRC covers it too.
//!
//! The tag fixes the row's columns as well as its table: a release that
//! changes a row type must give the new layout new tags and keep inserting
//! rows of the old tags under their own column list (ClickHouse fills
//! columns added since with their defaults), because a spool outlives the
//! binary that wrote it. An older pgtrail cannot read these frames: drain
//! the spool before a downgrade. Tags so far (`rowbinary::Table`): 1 and 2,
//! `statements` and `sessions` before `effective_role`; 3 `gaps`; 4 and 5,
//! `statements` and `sessions` with `effective_role`.

use std::io::{self, Read};

use crate::audit::clickhouse::rowbinary::{encode_record, encode_row, EncodedRow, Table};
use crate::audit::clickhouse::rows::AnyRow;
use crate::audit::record::Record;

/// Length and CRC.
pub const HEADER: usize = 8;
/// Smallest valid payload: the seq alone (a zero-filled tail is not a frame).
pub const MIN_PAYLOAD: usize = 8;
/// Larger lengths are treated as damage (records are at most a few MiB).
pub const MAX_PAYLOAD: usize = 256 << 20;

/// Appends one frame holding `record` to `out`.
pub fn encode(seq: u64, record: &Record, out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(0); // the table tag, known once the row is encoded
    let tag_at = out.len() - 1;
    match encode_row(&AnyRow::from_record(record), out) {
        Ok(table) => out[tag_at] = table as u8,
        Err(e) => {
            out.truncate(start);
            return Err(e.into());
        }
    }
    seal(start, out)
}

/// The seq of the frame at `at` in a buffer of whole frames made by `encode`.
pub fn seq_at(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at + HEADER..at + HEADER + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The longest run of whole frames at the start of `buf` (made by
/// `encode`) not over `max` bytes, one frame at least: its length, the
/// seq of its last frame and how many frames it holds.
pub fn prefix(buf: &[u8], max: usize) -> (usize, u64, u64) {
    let (mut len, mut last_seq, mut frames) = (0usize, 0u64, 0u64);
    while let Some(size) = buf
        .get(len..len + 4)
        .and_then(|b| b.try_into().ok())
        .map(|b| HEADER + u32::from_le_bytes(b) as usize)
    {
        if frames > 0 && len + size > max {
            break;
        }
        last_seq = seq_at(buf, len).unwrap_or(last_seq);
        len += size;
        frames += 1;
    }
    (len.min(buf.len()), last_seq, frames)
}

/// Fills in the length and CRC of the frame that starts at `start`.
fn seal(start: usize, out: &mut [u8]) -> io::Result<()> {
    let payload_len = out.len() - start - HEADER;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|&l| l as usize <= MAX_PAYLOAD)
        .ok_or_else(|| io::Error::other("audit record too large for the spool"))?;
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What was found at one position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Read1 {
    /// A valid frame: its seq and payload (seq included), `size` bytes in all.
    Frame { seq: u64, size: u64 },
    /// Clean end of data.
    End,
    /// Fewer bytes than the header or the declared payload.
    Short,
    /// Implausible length or CRC mismatch.
    Bad,
}

/// Reads one frame from `r` into `payload` (cleared first).
pub fn read_frame(r: &mut impl Read, payload: &mut Vec<u8>) -> io::Result<Read1> {
    let mut header = [0u8; HEADER];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(Read1::End);
    }
    if got < HEADER {
        return Ok(Read1::Short);
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return Ok(Read1::Bad);
    }
    payload.clear();
    payload.resize(len, 0);
    if read_full(r, payload)? < len {
        return Ok(Read1::Short);
    }
    if crc32c::crc32c(payload) != crc {
        return Ok(Read1::Bad);
    }
    let seq = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    Ok(Read1::Frame {
        seq,
        size: (HEADER + len) as u64,
    })
}

/// The row of a payload read by `read_frame`.
pub fn decode(payload: &[u8]) -> io::Result<EncodedRow> {
    let body = &payload[MIN_PAYLOAD..];
    match body.first() {
        Some(b'{') => {
            let record: Record = serde_json::from_slice(body).map_err(io::Error::other)?;
            Ok(encode_record(&record)?)
        }
        Some(&tag) => match Table::from_tag(tag) {
            Some(table) => Ok(EncodedRow {
                table,
                row: body[1..].to_vec(),
            }),
            None => Err(io::Error::other(format!(
                "spool frame of unknown kind {tag} (written by a newer pgtrail?)"
            ))),
        },
        None => Err(io::Error::other("spool frame without a row")),
    }
}

/// Like `read_exact`, but returns how much was read at end of file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::record::{GapRecord, RecordHeader};

    pub fn gap(seq: u64) -> Record {
        Record::Gap(GapRecord {
            header: RecordHeader {
                event_id: uuid::Uuid::from_u64_pair(0x0190_d6c8_0000_7000, 0x8000_0000_0000_0000),
                instance_id: "i1".into(),
                seq,
                event_time: 1_795_953_600_000_000, // 2026-11-29T12:00:00Z
            },
            missing_events: seq * 2,
            reason: format!("r{seq}"),
        })
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let mut buf = Vec::new();
        encode(7, &gap(7), &mut buf).unwrap();
        encode(8, &gap(8), &mut buf).unwrap();
        let mut r = &buf[..];
        let mut p = Vec::new();
        let Read1::Frame { seq, size } = read_frame(&mut r, &mut p).unwrap() else {
            panic!()
        };
        assert_eq!(seq, 7);
        let row = decode(&p).unwrap();
        let mut want = Vec::new();
        encode_row(&AnyRow::from_record(&gap(7)), &mut want).unwrap();
        assert_eq!(
            row,
            EncodedRow {
                table: Table::Gaps,
                row: want
            }
        );
        assert!(matches!(
            read_frame(&mut r, &mut p).unwrap(),
            Read1::Frame { seq: 8, .. }
        ));
        assert_eq!(read_frame(&mut r, &mut p).unwrap(), Read1::End);

        // A flipped bit anywhere in the payload fails the CRC.
        let mut bad = buf.clone();
        bad[size as usize - 3] ^= 1;
        assert_eq!(read_frame(&mut &bad[..], &mut p).unwrap(), Read1::Bad);
        // Cut short: in the header, in the payload.
        assert_eq!(read_frame(&mut &buf[..5], &mut p).unwrap(), Read1::Short);
        assert_eq!(read_frame(&mut &buf[..20], &mut p).unwrap(), Read1::Short);
        // Zeros (a file extended but not written) are not a frame.
        assert_eq!(read_frame(&mut &[0u8; 32][..], &mut p).unwrap(), Read1::Bad);
    }

    /// A frame as earlier builds wrote them: the Record as JSON.
    fn legacy_frame(seq: u64, record: &Record, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER]);
        out.extend_from_slice(&seq.to_le_bytes());
        serde_json::to_writer(&mut *out, record).unwrap();
        seal(start, out).unwrap();
    }

    /// A frame as the build before `effective_role` wrote it: tag 2 and the
    /// row without that column (found as the one byte, the length of an
    /// empty string, where the row with a value first differs).
    #[test]
    fn rows_of_the_layout_before_effective_role_keep_their_tag() {
        use crate::audit::event::SessionEventType;
        use crate::audit::record::SessionRecord;
        let session = |role: &str| {
            Record::Session(Box::new(SessionRecord {
                header: match gap(9) {
                    Record::Gap(g) => g.header,
                    _ => unreachable!(),
                },
                event_type: SessionEventType::Connect,
                session_id: "s".into(),
                backend_pid: 0,
                user: "u".into(),
                db_role: "r".into(),
                effective_role: role.into(),
                database: "d".into(),
                client_addr: "::1".into(),
                client_port: 1,
                application_name: String::new(),
                tls: false,
                auth_method: String::new(),
                reason: String::new(),
                bytes_in: 0,
                bytes_out: 0,
                statements: 0,
                duration_us: 0,
            }))
        };
        let (mut empty, mut full) = (Vec::new(), Vec::new());
        assert_eq!(
            encode_row(&AnyRow::from_record(&session("")), &mut empty).unwrap(),
            Table::Sessions
        );
        encode_row(&AnyRow::from_record(&session("x")), &mut full).unwrap();
        let at = empty.iter().zip(&full).position(|(a, b)| a != b).unwrap();
        let mut old_row = empty.clone();
        old_row.remove(at);
        let mut payload = 9u64.to_le_bytes().to_vec();
        payload.push(2);
        payload.extend_from_slice(&old_row);
        assert_eq!(
            decode(&payload).unwrap(),
            EncodedRow {
                table: Table::SessionsV1,
                row: old_row
            }
        );
        let mut buf = Vec::new();
        encode(9, &session("x"), &mut buf).unwrap();
        assert_eq!(buf[HEADER + 8], Table::Sessions as u8);
    }

    #[test]
    fn json_frames_of_older_spools_read_as_the_same_row() {
        let mut buf = Vec::new();
        legacy_frame(7, &gap(7), &mut buf);
        encode(7, &gap(7), &mut buf).unwrap();
        let mut r = &buf[..];
        let mut p = Vec::new();
        let mut rows = Vec::new();
        while let Read1::Frame { seq, .. } = read_frame(&mut r, &mut p).unwrap() {
            assert_eq!(seq, 7);
            rows.push(decode(&p).unwrap());
        }
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], rows[1]);
        // A tag no version wrote is an error, not a guess.
        p[MIN_PAYLOAD] = 9;
        assert!(decode(&p).is_err());
    }

    #[test]
    fn prefix_takes_whole_frames_up_to_the_limit() {
        let mut buf = Vec::new();
        for seq in 5..=7 {
            encode(seq, &gap(seq), &mut buf).unwrap();
        }
        let one = buf.len() / 3;
        assert_eq!(prefix(&buf, 1), (one, 5, 1));
        assert_eq!(prefix(&buf, 2 * one + 1), (2 * one, 6, 2));
        assert_eq!(prefix(&buf, usize::MAX), (buf.len(), 7, 3));
        assert_eq!(seq_at(&buf, one), Some(6));
    }
}
