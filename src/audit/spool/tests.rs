//! Spool behaviour across writer, reader, marker and recovery.

use std::fs;
use std::time::Duration;

use super::recover::{list, segment_name, QUARANTINE};
use super::*;
use crate::audit::record::{GapRecord, Record, RecordHeader};
use crate::audit::sink::{Offer, Room};

/// A gap record with seq `seq` (what these tests spool).
pub(crate) fn gap(seq: u64) -> Record {
    Record::Gap(GapRecord {
        header: RecordHeader {
            event_id: uuid::Uuid::from_u64_pair(0x0190_d6c8_0000_7000, 0x8000_0000_0000_0000),
            instance_id: "i1".into(),
            seq,
            event_time: 1_795_953_600_000_000, // 2026-11-29T12:00:00Z
            chain: None,
        },
        missing_events: seq * 2,
        reason: format!("r{seq}"),
        skipped_seqs: 0,
    })
}

fn opts(segment_bytes: u64) -> SpoolOptions {
    SpoolOptions {
        max_bytes: 1 << 30,
        segment_bytes,
    }
}

/// Offers `record` until the spool takes it, waiting while it is full
/// (what `audit::policy` does under `fail_closed`).
fn put(writer: &mut SpoolWriter, record: &crate::audit::record::Record) {
    loop {
        // The frames the ClickHouse sink writes (the spool itself holds
        // any tag and body).
        let body =
            |out: &mut Vec<u8>| crate::audit::sink::clickhouse::spool_rows::encode(record, out);
        let entry = Entry {
            end_chain: None,
            seq: record.seq(),
            end_seq: record.seq() + 1,
            body: &body,
        };
        match writer.offer(entry, Room::WithinLimit) {
            Offer::Taken => return,
            Offer::Full => writer.wait(),
            Offer::Failing(e) => panic!("spool write failed: {e}"),
        }
    }
}

fn write(spool: &mut Spool, seqs: std::ops::RangeInclusive<u64>) {
    for s in seqs {
        put(&mut spool.writer, &gap(s));
    }
    spool.writer.flush().unwrap();
}

fn read_all(reader: &mut SpoolReader) -> Vec<u64> {
    let mut out = Vec::new();
    reader.read(usize::MAX, &mut out).unwrap();
    out.iter().map(|(s, _)| *s).collect()
}

#[test]
fn records_flow_and_acked_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts(120)).unwrap();
    assert_eq!(spool.next_seq, 1);
    put(&mut spool.writer, &gap(1));
    // Not durable yet: the reader sees nothing.
    assert!(read_all(&mut spool.reader).is_empty());
    spool.writer.flush().unwrap();
    write(&mut spool, 2..=10);
    assert_eq!(read_all(&mut spool.reader), (1..=10).collect::<Vec<_>>());
    let segments = list(dir.path()).unwrap();
    assert!(segments.len() > 2, "{segments:?}");
    // A segment goes only when every record in it is acknowledged.
    let second = segments[1].0;
    spool.reader.ack(second).unwrap();
    let left = list(dir.path()).unwrap();
    assert_eq!(left[0].0, second, "{left:?}");
    spool.reader.ack(10).unwrap();
    // The active segment stays even when fully acknowledged.
    assert_eq!(list(dir.path()).unwrap().len(), 1);
    drop(spool);

    // Restart: nothing to resend, the sequence continues.
    let mut spool = Spool::open(dir.path(), opts(120)).unwrap();
    assert_eq!(spool.next_seq, 11);
    assert!(read_all(&mut spool.reader).is_empty());
    write(&mut spool, 11..=12);
    assert_eq!(read_all(&mut spool.reader), vec![11, 12]);
}

#[test]
fn unacknowledged_records_are_sent_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts(1 << 20)).unwrap();
    write(&mut spool, 1..=5);
    assert_eq!(read_all(&mut spool.reader).len(), 5);
    spool.reader.ack(3).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(spool.next_seq, 6);
    assert_eq!(read_all(&mut spool.reader), vec![4, 5]);
}

#[test]
fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts(1 << 20)).unwrap();
    write(&mut spool, 1..=3);
    drop(spool);
    let path = dir.path().join(segment_name(1));
    let good = fs::metadata(&path).unwrap().len();
    for tail in [&b"\x20\x00\x00\x00\x01\x02"[..], &[0u8; 64][..]] {
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(good as usize);
        bytes.extend_from_slice(tail);
        fs::write(&path, &bytes).unwrap();
        let mut spool = Spool::open(dir.path(), opts(1 << 20)).unwrap();
        assert!(spool.gaps.is_empty());
        assert_eq!(spool.next_seq, 4);
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        assert_eq!(read_all(&mut spool.reader), vec![1, 2, 3]);
    }
    assert!(!dir.path().join(QUARANTINE).exists());
}

#[test]
fn corruption_is_quarantined_and_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts(150)).unwrap();
    write(&mut spool, 1..=12);
    drop(spool);
    let segments = list(dir.path()).unwrap();
    assert!(segments.len() >= 3, "{segments:?}");
    // Damage the second frame of the first segment (not the tail).
    let (first, path) = &segments[0];
    let mut bytes = fs::read(path).unwrap();
    let frame_len = 8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[frame_len + 20] ^= 0xff;
    let size = bytes.len();
    fs::write(path, &bytes).unwrap();

    let mut spool = Spool::open(dir.path(), opts(150)).unwrap();
    assert_eq!(spool.next_seq, 13);
    let name = segment_name(*first);
    let missing = segments[1].0 - first - 1;
    assert_eq!(
        spool.gaps,
        vec![Gap {
            missing_events: missing,
            reason: format!(
                "spool corruption: {name} at offset {frame_len}, {} bytes quarantined",
                size - frame_len
            ),
        }]
    );
    let q = dir
        .path()
        .join(QUARANTINE)
        .join(format!("{name}.{frame_len}"));
    assert_eq!(fs::read(q).unwrap(), bytes[frame_len..]);
    let got = read_all(&mut spool.reader);
    assert_eq!(got[0], 1);
    assert_eq!(got[1], segments[1].0, "{got:?}");
    assert_eq!(*got.last().unwrap(), 12);
}

#[test]
fn corruption_in_the_last_segment_keeps_seqs_unique() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts(1 << 20)).unwrap();
    write(&mut spool, 1..=5);
    drop(spool);
    let path = dir.path().join(segment_name(1));
    let mut bytes = fs::read(&path).unwrap();
    bytes[12] ^= 0xff; // in frame 1, far from the end
    fs::write(&path, &bytes).unwrap();
    let spool = Spool::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(spool.gaps.len(), 1);
    // Seqs 2..=5 still check out in the quarantined bytes: not reused.
    assert_eq!(spool.next_seq, 6);
    assert_eq!(spool.gaps[0].missing_events, 5);
}

#[test]
fn a_full_spool_makes_the_writer_wait_for_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let options = SpoolOptions {
        max_bytes: 600,
        segment_bytes: 200,
    };
    let spool = Spool::open(dir.path(), options).unwrap();
    let mut reader = spool.reader;
    let mut writer = spool.writer;
    let t = std::thread::spawn(move || {
        for s in 1..=40 {
            put(&mut writer, &gap(s));
            writer.flush().unwrap();
        }
        writer.close().unwrap();
    });
    let mut got = Vec::new();
    loop {
        let mut out = Vec::new();
        reader.read(3, &mut out).unwrap();
        if let Some((last, _)) = out.last() {
            reader.ack(*last).unwrap();
        }
        got.extend(out.iter().map(|(s, _)| *s));
        let total: u64 = list(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::metadata(p).unwrap().len())
            .sum();
        assert!(total < 600 + 200, "{total}");
        if out.is_empty() {
            if reader.is_closed() && got.len() == 40 {
                break;
            }
            reader.wait(Duration::from_millis(50));
        }
    }
    t.join().unwrap();
    assert_eq!(got, (1..=40).collect::<Vec<_>>());
}
