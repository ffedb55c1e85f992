//! A spooled frame whose tag this build does not know (written by a newer
//! pgtrail, then downgraded) is not skipped: a `gaps` row telling its seq
//! and tag reaches ClickHouse in its place.

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
