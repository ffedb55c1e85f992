//! kill -9 of pgtrail (the real binary) while 200,000 rows are committed,
//! then a restart: decoding resumes from the slot and every committed
//! change is recorded, once per `(commit_lsn, change_index)`. A copy can
//! only come from the one transaction whose records were fsynced when the
//! process died and whose position was not yet (ARCHITECTURE.md, "Exactly
//! once"); no other is replayed.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::cdc_stream::SlotGuard;
use crate::changes::{cdc_setup_full, changes};
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, connect, fresh_db, read_records};

const ROWS: i32 = 200_000;
const PER_TXN: i32 = 2_000;

#[tokio::test]
async fn kill_9_mid_load_then_restart_records_each_committed_change_once() {
    let (pg, db) = fresh_db("cdc_crash");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute("CREATE TABLE bulk (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    let slot = format!("crash_{}", std::process::id());
    let _guard = SlotGuard(pg, slot.clone());
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("marker.key");
    let mut config = config_for(pg, dir.path());
    cdc_setup_full(pg, &db, &slot, &key, &mut config, "public.bulk").await;
    config.audit.spool_dir = None;
    let audit = config.audit.file.clone().unwrap();

    let pgtrail = PgtrailProcess::start(&config, dir.path()).await;
    let load = tokio::spawn(async move {
        for start in (0..ROWS).step_by(PER_TXN as usize) {
            direct
                .execute(
                    "INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series($1::int, $2::int) g",
                    &[&(start + 1), &(start + PER_TXN)],
                )
                .await
                .unwrap();
            // A steady load rather than one burst, so the kill lands in it.
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        // The harness's synchronous_commit = off: push the WAL out.
        direct
            .batch_execute("SET synchronous_commit = on; CREATE TABLE flush_wal ()")
            .await
            .unwrap();
    });
    // Kill once a good part is recorded, while the load goes on.
    wait_for(&audit, ROWS as usize / 4, Duration::from_secs(120)).await;
    drop(pgtrail); // SIGKILL
    let seen_at_kill = changes(&read_records(&audit)).len();
    load.await.unwrap();
    assert!(
        seen_at_kill < ROWS as usize,
        "the load was over before the kill"
    );

    let _again = PgtrailProcess::start(&config, dir.path()).await;
    let records = wait_for(&audit, ROWS as usize, Duration::from_secs(180)).await;
    let all = changes(&records);
    let mut unique = HashSet::new();
    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for c in &all {
        let at = (
            c["commit_lsn"].as_u64().unwrap(),
            c["change_index"].as_u64().unwrap(),
        );
        if !unique.insert(at) {
            *copies.entry(at.0).or_default() += 1;
        }
        ids.insert(c["new"]["id"].as_str().unwrap().parse::<i32>().unwrap());
    }
    assert_eq!(ids.len(), ROWS as usize, "every committed row");
    assert_eq!(unique.len(), ROWS as usize);
    // The restart read the last change the file holds and did not record
    // again what the kill made it decode twice.
    assert!(copies.is_empty(), "changes recorded twice: {copies:?}");
    // And the trail's chain holds across the kill.
    let lines =
        pgtrail::audit::chain::verify::jsonl::read_all(std::slice::from_ref(&audit)).unwrap();
    let report = pgtrail::audit::chain::verify::walk_all(lines, &Default::default()).unwrap();
    assert!(report.ok, "{}", report.human());
    eprintln!(
        "{seen_at_kill} changes recorded before the kill; {} recorded twice",
        all.len() - unique.len()
    );
}

/// Waits until the audit file holds `n` distinct change records (or
/// `limit`); lines are counted first, parsed only when there are enough.
async fn wait_for(audit: &std::path::Path, n: usize, limit: Duration) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(audit).unwrap_or_default();
        let lines = text.matches("\"record\":\"changes\"").count();
        if lines >= n || std::time::Instant::now() > deadline {
            let records = read_records(audit);
            let distinct: HashSet<_> = changes(&records)
                .iter()
                .map(|c| (c["commit_lsn"].as_u64(), c["change_index"].as_u64()))
                .collect();
            if distinct.len() >= n || std::time::Instant::now() > deadline {
                return records;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
