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
//!
//! A frame this build cannot read (a tag it does not know, written by a
//! newer build before a downgrade, or JSON that does not parse) is not
//! skipped: `decode` says why (`Undecodable`), and the sender sends a gap
//! row in its place (`Undecodable::gap_row`).

use std::fmt;
use std::io;

use super::rowbinary::{encode_record, encode_row, EncodedRow, Table};
use super::rows::{AnyRow, GapRow};
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

/// A spooled frame holding no row this build can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub seq: u64,
    pub tag: u8,
    /// Why, after the tag: "which this build does not know ...".
    pub why: String,
}

impl Undecodable {
    /// The gap row's reason: the seq, the tag and why.
    pub fn reason(&self) -> String {
        format!(
            "spool frame seq {} has tag {}, {}: its record is not delivered",
            self.seq, self.tag, self.why
        )
    }

    /// The gap row sent in place of the frame's record: the frame's seq,
    /// one missing event.
    ///
    /// Made here, on the sender thread: the rule that the `RecordBuilder`
    /// makes every gap is about the records the writer makes; this frame
    /// was written earlier (by another build), and no builder exists on
    /// this thread.
    pub fn gap_row(
        &self,
        instance_id: &str,
        event_id: uuid::Uuid,
        event_time: i64,
    ) -> io::Result<EncodedRow> {
        let reason = self.reason();
        let gap = GapRow {
            event_id,
            instance_id,
            seq: self.seq,
            event_time,
            missing_events: 1,
            reason: &reason,
            // It stands for the frame's seq; where the chain goes on after
            // it is not known here.
            skipped_seqs: 1,
            chain: Default::default(),
        };
        let mut row = Vec::new();
        let table = encode_row(&AnyRow::Gap(gap), &mut row)?;
        Ok(EncodedRow { table, row })
    }
}

impl fmt::Display for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

/// The audit chain value a spooled row carries: read from the row's end
/// in the layouts whose last column it is (tags 9 to 15); in layouts with
/// columns after it (16: `statements` of schema version 8; 17 to 19:
/// `statements`, `transactions` and `changes` of 9) the row is decoded.
/// `None` for layouts before `chain` and rows whose value is not known.
pub fn chain_of(frame: &SpooledFrame) -> Option<crate::audit::chain::ChainValue> {
    let table = Table::from_tag(frame.tag)?;
    if (Table::StatementsV4 as u8..=Table::Lifecycle as u8).contains(&frame.tag) {
        let body = &frame.body;
        let at = body.len().checked_sub(65)?;
        if body[at] != 64 {
            return None;
        }
        return crate::audit::chain::parse_hex(std::str::from_utf8(&body[at + 1..]).ok()?);
    }
    let all = crate::audit::sink::clickhouse::schema::table_columns(table.name())?;
    let columns = &all[..all.len().checked_sub(table.columns_after()?)?];
    if !columns.iter().any(|(name, _)| *name == "chain") {
        return None;
    }
    crate::audit::chain::verify::rowbinary::decode_row(table.name(), columns, &frame.body)
        .ok()
        .and_then(|(item, _)| item.chain)
}

/// `(commit_lsn, change_index)` of a spooled `changes` row (every layout:
/// the columns after the header are `commit_lsn`, `lsn`, `change_index`).
pub fn change_position(frame: &SpooledFrame) -> Option<(u64, u32)> {
    if Table::from_tag(frame.tag).map(Table::name) != Some("changes") {
        return None;
    }
    let (instance, _, _) = super::rowbinary::row_header(&frame.body)?;
    // event_id, the instance's length and bytes, seq, event_time.
    let len_bytes = (usize::BITS - instance.len().leading_zeros())
        .div_ceil(7)
        .max(1) as usize;
    let at = 16 + len_bytes + instance.len() + 16;
    let body = &frame.body;
    let commit_lsn = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
    let index = u32::from_le_bytes(body.get(at + 16..at + 20)?.try_into().ok()?);
    Some((commit_lsn, index))
}

/// The row the spooled frame of `seq` holds.
pub fn decode(seq: u64, frame: SpooledFrame) -> Result<EncodedRow, Undecodable> {
    let tag = frame.tag;
    let undecodable = |why: String| Undecodable { seq, tag, why };
    if tag == JSON_TAG {
        let mut json = Vec::with_capacity(1 + frame.body.len());
        json.push(JSON_TAG);
        json.extend_from_slice(&frame.body);
        let record: Record = serde_json::from_slice(&json).map_err(|e| {
            undecodable(format!(
                "a JSON record of an earlier build, which does not parse ({e})"
            ))
        })?;
        return encode_record(&record).map_err(|e| {
            undecodable(format!(
                "a JSON record of an earlier build, which cannot be made a row ({e})"
            ))
        });
    }
    match Table::from_tag(tag) {
        Some(table) => Ok(EncodedRow {
            table,
            row: frame.body,
        }),
        None => Err(undecodable(
            "which this build does not know (written by a newer pgtrail?)".into(),
        )),
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
    fn read_all(buf: &[u8]) -> Vec<(u64, Result<EncodedRow, Undecodable>)> {
        let mut r = buf;
        let mut p = Vec::new();
        let mut rows = Vec::new();
        while let Read1::Frame { seq, .. } = read_frame(&mut r, &mut p).unwrap() {
            let frame = SpooledFrame::from_payload(&p).unwrap();
            rows.push((seq, decode(seq, frame)));
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
            decode(9, SpooledFrame::from_payload(&payload).unwrap()).unwrap(),
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
            tag: 200,
            body: rows[0].row.clone(),
        };
        assert!(decode(7, unknown).is_err());
    }

    /// The gap row `gap_row` should make for the frame of `seq`.
    fn expected_gap(seq: u64, reason: &str) -> EncodedRow {
        let mut row = Vec::new();
        let gap = GapRow {
            event_id: uuid::Uuid::from_u128(1),
            instance_id: "i1",
            seq,
            event_time: 5,
            missing_events: 1,
            reason,
            skipped_seqs: 1,
            chain: Default::default(),
        };
        let table = encode_row(&AnyRow::Gap(gap), &mut row).unwrap();
        EncodedRow { table, row }
    }

    #[test]
    fn a_spooled_change_says_its_commit_and_index() {
        let record = crate::audit::record::json::tests::change("x", 7);
        let crate::audit::record::Record::Change(c) = &record else {
            unreachable!()
        };
        let mut body = Vec::new();
        let tag = encode(&record, &mut body).unwrap();
        let frame = SpooledFrame { tag, body };
        assert_eq!(
            change_position(&frame),
            Some((c.change.commit_lsn, c.change.change_index))
        );
        // The layout before schema version 9 (tag 13) too.
        let old = SpooledFrame {
            tag: Table::ChangesV2 as u8,
            body: frame.body[..frame.body.len() - 6].to_vec(),
        };
        assert_eq!(
            change_position(&old),
            Some((c.change.commit_lsn, c.change.change_index))
        );
        let mut body = Vec::new();
        let tag = encode(&gap(3), &mut body).unwrap();
        assert_eq!(change_position(&SpooledFrame { tag, body }), None);
    }

    #[test]
    fn the_chain_value_is_read_back_from_a_spooled_row() {
        let mut record = gap(5);
        record.header_mut().chain = Some([0x5a; 32]);
        let mut body = Vec::new();
        let tag = encode(&record, &mut body).unwrap();
        let frame = SpooledFrame { tag, body };
        assert_eq!(chain_of(&frame), Some([0x5a; 32]));
        record.header_mut().chain = None;
        let mut body = Vec::new();
        let tag = encode(&record, &mut body).unwrap();
        assert_eq!(chain_of(&SpooledFrame { tag, body }), None);
    }

    /// Every table's row, and the rows of the layouts before schema
    /// version 9 (the same bytes without the six end-user columns' defaults,
    /// under tags 16, 12 and 13), say their chain value.
    #[test]
    fn the_chain_value_is_read_back_from_every_layout_since_chain() {
        use crate::audit::record::json::tests as samples;
        let end_user = samples::end_user("x", 2);
        let records = [
            samples::statement("SELECT 1", None),
            samples::with_end_user(samples::statement("SELECT 2", None), end_user.clone()),
            samples::transaction("t", 3),
            samples::with_end_user(samples::transaction("t", 3), end_user.clone()),
            samples::change("c", 3),
            samples::with_end_user(samples::change("c", 3), end_user),
            samples::session("s", crate::audit::event::SessionEventType::Connect),
            samples::checkpoint("p", 3),
            samples::lifecycle("l", 3),
        ];
        for (i, mut record) in records.into_iter().enumerate() {
            let value = [i as u8 + 1; 32];
            record.header_mut().chain = Some(value);
            let mut body = Vec::new();
            let tag = encode(&record, &mut body).unwrap();
            let frame = SpooledFrame {
                tag,
                body: body.clone(),
            };
            assert_eq!(chain_of(&frame), Some(value), "{}", record.table());
            let before_v9 = match Table::from_tag(tag) {
                Some(Table::Statements) => Table::StatementsV5,
                Some(Table::Transactions) => Table::TransactionsV2,
                Some(Table::Changes) => Table::ChangesV2,
                _ => continue,
            };
            if body.ends_with(&[0; 6]) {
                body.truncate(body.len() - 6);
                let frame = SpooledFrame {
                    tag: before_v9 as u8,
                    body,
                };
                assert_eq!(chain_of(&frame), Some(value), "{before_v9:?}");
            }
        }
    }

    #[test]
    fn a_frame_of_an_unknown_tag_reads_as_a_gap_row_telling_it() {
        let mut buf = Vec::new();
        write(41, &gap(41), &mut buf);
        frame::encode(42, &mut buf, |out| {
            out.extend_from_slice(b"a row of a newer layout");
            Ok(200)
        })
        .unwrap();
        let rows = read_all(&buf);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].1.is_ok());
        let (seq, Err(bad)) = &rows[1] else {
            panic!("tag 200 decoded: {:?}", rows[1]);
        };
        assert_eq!((*seq, bad.seq, bad.tag), (42, 42, 200));
        let reason = "spool frame seq 42 has tag 200, which this build does not know \
                      (written by a newer pgtrail?): its record is not delivered";
        assert_eq!(bad.reason(), reason);
        let row = bad.gap_row("i1", uuid::Uuid::from_u128(1), 5).unwrap();
        assert_eq!(row, expected_gap(42, reason));
        let (instance, seq, time) = super::super::rowbinary::row_header(&row.row).unwrap();
        assert_eq!((instance, seq, time), (&b"i1"[..], 42, 5));
    }

    #[test]
    fn a_json_frame_that_does_not_parse_reads_as_a_gap_row_telling_it() {
        let mut buf = Vec::new();
        frame::encode(7, &mut buf, |out| {
            out.extend_from_slice(b"\"seq\": not json");
            Ok(JSON_TAG)
        })
        .unwrap();
        let rows = read_all(&buf);
        let Err(bad) = &rows[0].1 else {
            panic!("broken JSON decoded");
        };
        assert_eq!((bad.seq, bad.tag), (7, JSON_TAG));
        let reason = bad.reason();
        assert!(
            reason.starts_with(
                "spool frame seq 7 has tag 123, a JSON record of an earlier build, which does not parse ("
            ),
            "{reason}"
        );
        assert!(
            reason.ends_with("): its record is not delivered"),
            "{reason}"
        );
        let row = bad.gap_row("i1", uuid::Uuid::from_u128(1), 5).unwrap();
        assert_eq!(row, expected_gap(7, &reason));
    }
}
