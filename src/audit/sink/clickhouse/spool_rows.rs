//! What the spool (`audit::spool`) holds for ClickHouse. The spool stores
//! opaque frames, `seq | tag | body`; here the tag is the row's `Table` (its
//! table and column layout: see there for the tags so far and the rule for
//! new ones) and the body is the row in RowBinary, exactly as the INSERT
//! carries it, so the sender ships spooled rows without decoding them.
//!
//! Spools written by earlier builds hold `u64 seq | serde_json of the
//! Record` instead; the spool hands such a frame over with the JSON's
//! first byte, `{`, as its tag (no `Table` has that tag), and `decode`
//! turns the record into its RowBinary row.

use std::io;

use super::rowbinary::{encode_record, encode_row, EncodedRow, Table};
use super::rows::AnyRow;
use crate::audit::record::Record;
use crate::audit::spool::SpooledFrame;

/// The tag under which frames of earlier builds (JSON) read.
const JSON_TAG: u8 = b'{';

/// Appends `record`'s row to `out` as a frame body; returns its tag (the
/// body writer `spool::frame::encode` takes).
pub fn encode(record: &Record, out: &mut Vec<u8>) -> io::Result<u8> {
    let table = encode_row(&AnyRow::from_record(record), out)?;
    Ok(table as u8)
}

/// The row a spooled frame holds.
pub fn decode(frame: SpooledFrame) -> io::Result<EncodedRow> {
    if frame.tag == JSON_TAG {
        let mut json = Vec::with_capacity(1 + frame.body.len());
        json.push(JSON_TAG);
        json.extend_from_slice(&frame.body);
        let record: Record = serde_json::from_slice(&json).map_err(io::Error::other)?;
        return Ok(encode_record(&record)?);
    }
    match Table::from_tag(frame.tag) {
        Some(table) => Ok(EncodedRow {
            table,
            row: frame.body,
        }),
        None => Err(io::Error::other(format!(
            "spool frame of unknown kind {} (written by a newer pgtrail?)",
            frame.tag
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::spool::frame::{self, read_frame, Read1, HEADER};
    use crate::audit::spool::tests::gap;

    /// Appends the frame the spool writer makes of `record`.
    fn write(seq: u64, record: &Record, out: &mut Vec<u8>) {
        frame::encode(seq, out, |out| encode(record, out)).unwrap();
    }

    /// The rows of the frames in `buf`, with their seqs.
    fn read_all(buf: &[u8]) -> Vec<(u64, io::Result<EncodedRow>)> {
        let mut r = buf;
        let mut p = Vec::new();
        let mut rows = Vec::new();
        while let Read1::Frame { seq, .. } = read_frame(&mut r, &mut p).unwrap() {
            rows.push((seq, SpooledFrame::from_payload(&p).and_then(decode)));
        }
        rows
    }

    #[test]
    fn a_spooled_row_is_the_row_encode_row_makes() {
        let mut buf = Vec::new();
        write(7, &gap(7), &mut buf);
        write(8, &gap(8), &mut buf);
        let rows = read_all(&buf);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 7);
        let mut want = Vec::new();
        encode_row(&AnyRow::from_record(&gap(7)), &mut want).unwrap();
        assert_eq!(
            *rows[0].1.as_ref().unwrap(),
            EncodedRow {
                table: Table::Gaps,
                row: want
            }
        );
        assert_eq!(rows[1].0, 8);
    }

    /// A frame as earlier builds wrote them: the Record as JSON, no tag.
    fn legacy_frame(seq: u64, record: &Record, out: &mut Vec<u8>) {
        frame::encode(seq, out, |out| {
            let json = serde_json::to_vec(record).map_err(io::Error::other)?;
            out.extend_from_slice(&json[1..]);
            Ok(json[0])
        })
        .unwrap();
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
            decode(SpooledFrame::from_payload(&payload).unwrap()).unwrap(),
            EncodedRow {
                table: Table::SessionsV1,
                row: old_row
            }
        );
        let mut buf = Vec::new();
        write(9, &session("x"), &mut buf);
        assert_eq!(buf[HEADER + 8], Table::Sessions as u8);
    }

    #[test]
    fn json_frames_of_older_spools_read_as_the_same_row() {
        let mut buf = Vec::new();
        legacy_frame(7, &gap(7), &mut buf);
        // Byte for byte what earlier builds wrote: the JSON right after the seq.
        let json = serde_json::to_vec(&gap(7)).unwrap();
        assert_eq!(buf[HEADER + 8..], json[..]);
        write(7, &gap(7), &mut buf);
        let rows: Vec<EncodedRow> = read_all(&buf)
            .into_iter()
            .map(|(seq, row)| {
                assert_eq!(seq, 7);
                row.unwrap()
            })
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], rows[1]);
        // A tag no version wrote is an error, not a guess.
        let unknown = SpooledFrame {
            tag: 9,
            body: rows[0].row.clone(),
        };
        assert!(decode(unknown).is_err());
    }
}
