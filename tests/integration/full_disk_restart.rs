//! Seqs across a SIGKILL while the spool's disk is full: the records the
//! writer numbered but could not spool are gone with the process, yet the
//! next start must not give their seqs to new records (that would hide the
//! hole). The audit file, on a disk with room, shows every seq handed out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::clickhouse::unique_ch_db;
use crate::full_disk::{
    conn, file_records, refused_then_running, spool_config, spool_outage, start_clients,
    stop_clients, wait_until, Seen, SpoolOutage,
};
use crate::harness::clickhouse::ChServer;
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{connect, fresh_db};
use crate::harness::tmpfs::mount_or_skip;

#[tokio::test]
async fn no_seq_is_reused_after_sigkill_with_the_spool_disk_full() {
    let Some(mnt) = mount_or_skip("2m", "no_seq_is_reused_after_sigkill") else {
        return;
    };
    mnt.fill_leaving(300 * 1024);
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("diskseq");
    let (pg, db) = fresh_db("disk_seq");
    pg.psql(&db, "CREATE TABLE t (who int, i int)");
    let dir = tempfile::tempdir().unwrap();
    let mut config = spool_config(pg, dir.path(), &ch, &ch_db, mnt.path());
    let file = dir.path().join("audit.jsonl");
    config.audit.file = Some(file.clone());
    let first = PgtrailProcess::start(&config, dir.path()).await;
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let tasks = start_clients(&conn(pg, &db, first.port), 4, &seen, &stop).await;
    wait_until("the disk never filled", 60, || {
        seen.refused.load(Ordering::Relaxed) >= 8
    })
    .await;
    stop_clients(&stop, tasks).await;
    drop(first); // SIGKILL with records numbered but not spooled
                 // Room again, so that the restart is about seqs, not space.
    mnt.free();
    ch.restart();
    let second = PgtrailProcess::start(&config, dir.path()).await;
    let client = connect(&conn(pg, &db, second.port)).await;
    // Refused (53000) while the restart is still busy, if at all.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut i = 0;
    while i < 100 {
        let sql = format!("INSERT INTO t VALUES (99, {i})");
        match client.simple_query(&sql).await {
            Ok(_) => i += 1,
            Err(e) => {
                assert_eq!(e.code().map(|c| c.code()), Some("53000"), "{e:?}");
                assert!(std::time::Instant::now() < deadline, "refused for good");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    wait_until("records of the second run", 30, || {
        file_records(&file)
            .iter()
            .filter(|r| r["statement"].as_str().is_some_and(|s| s.contains("(99, ")))
            .count()
            == 100
    })
    .await;
    // seq → event ids seen with it (gap records reuse the first seq they
    // tell by design; records only).
    let mut by_seq: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in file_records(&file).iter().filter(|r| r["record"] != "gaps") {
        let seq = r["seq"].as_u64().unwrap();
        by_seq
            .entry(seq)
            .or_default()
            .push(r["event_id"].to_string());
    }
    let reused: Vec<_> = by_seq.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        reused.is_empty(),
        "{} seqs used twice, first {:?}",
        reused.len(),
        reused.first()
    );
}

/// One `before_ack` client: distinct INSERTs until `stop`; a refusal or a
/// record that could not be made durable (FATAL 53000, the session ends)
/// is counted and the client connects again.
async fn before_ack_client(conn: String, who: i32, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let mut client = connect(&conn).await;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let sql = format!("INSERT INTO t VALUES ({who}, {i})");
        i += 1;
        match client.simple_query(&sql).await {
            Ok(_) => seen.ok.lock().unwrap().push(sql),
            Err(e) => {
                let code = e.code().map(|c| c.code().to_string());
                assert_eq!(code.as_deref(), Some("53000"), "{e:?}");
                seen.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if client.is_closed() {
                    client = connect(&conn).await;
                }
            }
        }
    }
}

/// `before_ack` with the spool's disk full and ClickHouse down: statements
/// are refused (53000) until ClickHouse is back, then run again without a
/// restart; after a SIGKILL and restart every statement a client saw
/// succeed is in ClickHouse exactly once (it was fsynced before its answer).
#[tokio::test]
async fn before_ack_with_the_spool_disk_full_loses_no_acknowledged_statement() {
    let Some(rig) = spool_outage("1m", "before_ack_with_the_spool_disk_full", "disk_ack") else {
        return;
    };
    let SpoolOutage {
        mnt: _mnt,
        ch,
        ch_db,
        pg,
        db,
        dir,
        mut config,
    } = rig;
    config.audit.durability = pgtrail::config::Durability::BeforeAck;
    let first = PgtrailProcess::start(&config, dir.path()).await;
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let mut tasks = Vec::new();
    for who in 0..4 {
        let args = (conn(pg, &db, first.port), seen.clone(), stop.clone());
        tasks.push(tokio::spawn(before_ack_client(args.0, who, args.1, args.2)));
    }
    refused_then_running(&seen, || ch.restart(), "ClickHouse came back", 60).await;
    stop_clients(&stop, tasks).await;
    drop(first); // SIGKILL: what is only in memory is gone
    let _second = PgtrailProcess::start(&config, dir.path()).await;
    let ok = std::mem::take(&mut *seen.ok.lock().unwrap());
    let inserts = |ch: &ChServer| -> BTreeMap<String, u64> {
        let sql = format!("SELECT statement, uniqExact(seq) FROM `{ch_db}`.statements WHERE kind = 'insert' GROUP BY statement");
        ch.try_query(&sql)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, n)| (s.to_string(), n.parse().unwrap()))
            .collect()
    };
    wait_until(
        "acknowledged statements never reached ClickHouse",
        60,
        || {
            let landed = inserts(&ch);
            ok.iter().all(|sql| landed.contains_key(sql))
        },
    )
    .await;
    let landed = inserts(&ch);
    for sql in &ok {
        assert_eq!(landed.get(sql), Some(&1), "{sql}");
    }
}
