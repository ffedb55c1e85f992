//! A spooled frame whose tag this build does not know (written by a newer
//! pgtrail, then downgraded) is not skipped: a `gaps` row telling its seq
//! and tag reaches ClickHouse in its place. Frames of the layouts a
//! build before wrote (before schema version 9) are inserted under their
//! own column lists.

use crate::harness::spool::SpoolLeft;

#[tokio::test]
async fn a_spooled_frame_of_an_unknown_tag_arrives_as_a_gap_row() {
    let left = SpoolLeft::make("spooltag", 5).await;
    let SpoolLeft {
        ch,
        ch_db,
        first,
        segment,
        ..
    } = &left;
    // The first frame: `len | crc32c | seq | tag | body`; a tag no build
    // wrote, with a CRC that matches, as a newer build would write it.
    let mut bytes = std::fs::read(segment).unwrap();
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let seq = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    bytes[16] = 200;
    let crc = crc32c::crc32c(&bytes[8..8 + len]);
    bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(segment, &bytes).unwrap();
    left.second_run().await;
    let reason = format!(
        "spool frame seq {seq} has tag 200, which this build does not know \
         (written by a newer pgtrail?): its record is not delivered"
    );
    assert_eq!(
        ch.query(&format!(
            "SELECT seq, missing_events, reason FROM `{ch_db}`.gaps"
        )),
        format!("{seq}\t1\t{reason}")
    );
    // Every other record of the first run arrived.
    let others = first.iter().filter(|r| r["seq"].as_u64() != Some(seq));
    let count = |table: &str| -> usize {
        ch.query(&format!("SELECT count() FROM `{ch_db}`.{table}"))
            .parse()
            .unwrap()
    };
    let (statements, sessions) = others.fold((0, 0), |(s, c), r| match r["record"].as_str() {
        Some("statements") => (s + 1, c),
        Some("sessions") => (s, c + 1),
        _ => (s, c),
    });
    assert_eq!(count("statements"), statements);
    assert_eq!(count("sessions"), sessions);
}

/// Frames of the layouts before schema version 9 (`statements` tag 16,
/// `transactions` 12, `changes` 13: no end-user columns), as a spool of
/// the build before holds them, are inserted under their own column
/// lists: ClickHouse fills the six columns with their defaults, and the
/// records keep their chain.
#[tokio::test]
async fn spooled_frames_of_the_layouts_before_end_users_arrive_with_defaults() {
    let left = SpoolLeft::make("spoolv8", 5).await;
    let SpoolLeft {
        ch, ch_db, segment, ..
    } = &left;
    // Every frame `len | crc32c | seq | tag | body` of tags 17 to 19 made
    // one of the earlier layout: the tag, and the body without the six
    // columns' default bytes ("", 'none', 0, "", "", "").
    let bytes = std::fs::read(segment).unwrap();
    let (mut out, mut at) = (Vec::new(), 0);
    let mut rewritten = std::collections::BTreeMap::<u8, usize>::new();
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let mut payload = bytes[at + 8..at + 8 + len].to_vec();
        at += 8 + len;
        let old = match payload[8] {
            17 => 16,
            18 => 12,
            19 => 13,
            _ => 0,
        };
        if old != 0 {
            assert!(
                payload.ends_with(&[0; 6]),
                "tag {} ends in defaults",
                payload[8]
            );
            payload.truncate(payload.len() - 6);
            payload[8] = old;
            *rewritten.entry(old).or_default() += 1;
        }
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&bytes[at..]);
    std::fs::write(segment, &out).unwrap();
    assert!(
        rewritten.get(&16) >= Some(&5) && rewritten.contains_key(&12),
        "{rewritten:?}"
    );
    left.second_run().await;
    for table in ["statements", "transactions"] {
        let (all, defaults) = ch
            .query(&format!(
                "SELECT count(), countIf(end_user = '' AND end_user_source = 'none' AND end_user_verified = 0 \
                 AND end_user_reason = '' AND request_id = '' AND trace_id = '') FROM `{ch_db}`.{table}"
            ))
            .split_once('\t')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        assert_eq!(all, defaults, "{table}");
        assert_ne!(all, "0", "{table}");
    }
    let statements = left
        .first
        .iter()
        .filter(|r| r["record"] == "statements")
        .count();
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.statements")),
        statements.to_string()
    );
    crate::integrity::assert_intact(ch, ch_db).await;
}
