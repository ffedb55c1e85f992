//! A spooled frame whose tag this build does not know (written by a newer
//! pgtrail, then downgraded) is not skipped: a `gaps` row telling its seq
//! and tag reaches ClickHouse in its place.

use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::proxy::{fresh_db, Proxy};

#[tokio::test]
async fn a_spooled_frame_of_an_unknown_tag_arrives_as_a_gap_row() {
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("spooltag");
    let (pg, db) = fresh_db("ch_spooltag");
    let spool = tempfile::tempdir().unwrap();
    let tweak = |cfg: &mut pgtrail::config::Config| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 20;
        cfg.audit.spool_dir = Some(spool.path().to_path_buf());
    };
    let proxy = Proxy::start_with(pg, tweak).await;
    let client = proxy.connect(pg, &db).await;
    for i in 0..5 {
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    drop(client);
    let first = proxy.stop().await;
    let segment = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("spool-")
        })
        .min()
        .expect("a spool segment");
    // The first frame: `len | crc32c | seq | tag | body`; a tag no build
    // wrote, with a CRC that matches, as a newer build would write it.
    let mut bytes = std::fs::read(&segment).unwrap();
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let seq = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    bytes[16] = 9;
    let crc = crc32c::crc32c(&bytes[8..8 + len]);
    bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, &bytes).unwrap();
    ch.restart();

    let proxy = Proxy::start_with(pg, tweak).await;
    proxy.stop().await;
    let reason = format!(
        "spool frame seq {seq} has tag 9, which this build does not know \
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
