//! A full disk under the spool or the audit file (small tmpfs mounts,
//! skipped with a SKIPPED line where mounting is not allowed), against the
//! real pgtrail binary: `fail_closed` answers no statement whose record is
//! not kept and recovers without a restart once there is room again;
//! `fail_open` accounts for every seq with a record or a gap; seqs are not
//! reused across a SIGKILL and restart.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clickhouse::unique_ch_db;
use crate::harness::clickhouse::ChServer;
use crate::harness::postgres::PgCluster;
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, connect, fresh_db};
use crate::harness::tmpfs::mount_or_skip;
use pgtrail::config::{Config, FailurePolicy};

/// What the clients saw.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) ok: Mutex<Vec<String>>,
    pub(crate) refused: AtomicU64,
}

impl Seen {
    pub(crate) fn ok_count(&self) -> usize {
        self.ok.lock().unwrap().len()
    }
}

pub(crate) fn conn(pg: &PgCluster, db: &str, port: u16) -> String {
    format!(
        "host=127.0.0.1 port={port} user={} password={} dbname={db}",
        pg.superuser(),
        pg.password()
    )
}

/// `n` clients run distinct INSERTs until `stop`; every error must be
/// pgtrail's refusal (53000).
pub(crate) async fn start_clients(
    conn: &str,
    n: i32,
    seen: &Arc<Seen>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for who in 0..n {
        let client = connect(conn).await;
        let (seen, stop) = (seen.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
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
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    tasks
}

pub(crate) async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the full disk makes pgtrail refuse statements, runs
/// `recover` (ClickHouse back, space freed), then waits up to `secs` until
/// statements run again.
pub(crate) async fn refused_then_running(
    seen: &Seen,
    recover: impl FnOnce(),
    recovered: &str,
    secs: u64,
) {
    wait_until("the disk never filled", 60, || {
        seen.refused.load(Ordering::Relaxed) >= 8
    })
    .await;
    let before = seen.ok_count();
    recover();
    wait_until(&format!("still refused after {recovered}"), secs, || {
        seen.ok_count() > before + 200
    })
    .await;
}

pub(crate) async fn stop_clients(stop: &AtomicBool, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
}

/// Every acknowledged INSERT has exactly one record, and every INSERT
/// PostgreSQL ran has one (`records`: statement text → distinct seqs).
fn assert_each_once(ok: &[String], records: &BTreeMap<String, u64>, ran: i64) {
    for sql in ok {
        assert_eq!(
            records.get(sql),
            Some(&1),
            "{sql}: acknowledged, records: {:?}",
            records.get(sql)
        );
    }
    assert!(
        records.values().all(|&n| n == 1),
        "a statement has two records"
    );
    assert_eq!(records.len() as i64, ran, "rows in t vs INSERT records");
}

/// The setup of every full-spool test: a spool on a small tmpfs, ClickHouse
/// started and killed, a database with table `t`, and the configuration
/// tying them together. Fields drop in order, the mount last.
pub(crate) struct SpoolOutage {
    pub ch: ChServer,
    pub ch_db: String,
    pub pg: &'static PgCluster,
    pub db: String,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub mnt: crate::harness::tmpfs::Tmpfs,
}

/// `None`, with a SKIPPED line, where mounting is not permitted.
pub(crate) fn spool_outage(size: &str, test: &str, name: &str) -> Option<SpoolOutage> {
    let mnt = mount_or_skip(size, test)?;
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db(&name.replace('_', ""));
    let (pg, db) = fresh_db(name);
    pg.psql(&db, "CREATE TABLE t (who int, i int)");
    let dir = tempfile::tempdir().unwrap();
    let config = spool_config(pg, dir.path(), &ch, &ch_db, mnt.path());
    Some(SpoolOutage {
        ch,
        ch_db,
        pg,
        db,
        dir,
        config,
        mnt,
    })
}

pub(crate) fn spool_config(
    pg: &PgCluster,
    dir: &std::path::Path,
    ch: &ChServer,
    ch_db: &str,
    spool: &std::path::Path,
) -> Config {
    let mut c = config_for(pg, dir);
    c.audit.file = None;
    c.audit.clickhouse_url = Some(ch.http_url());
    c.audit.clickhouse.database = ch_db.to_string();
    c.audit.clickhouse.batch_ms = 20;
    c.audit.spool_dir = Some(spool.to_path_buf());
    c.audit.spool_segment_bytes = 64 * 1024;
    c
}

/// INSERT texts in ClickHouse → how many distinct seqs each has.
fn ch_inserts(ch: &ChServer, ch_db: &str) -> BTreeMap<String, u64> {
    let sql = format!("SELECT statement, uniqExact(seq) FROM `{ch_db}`.statements WHERE kind = 'insert' GROUP BY statement");
    ch.try_query(&sql)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(s, n)| (s.to_string(), n.parse().unwrap()))
        .collect()
}

async fn rows_in_t(pg: &PgCluster, db: &str) -> i64 {
    let client = connect(&pg.conn_string(db)).await;
    client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0)
}

/// Spool on a 1 MB tmpfs, ClickHouse down, four clients, `fail_closed`:
/// once the disk is full statements get 53000; ClickHouse comes back and
/// the spool drains without a restart; every acknowledged statement is in
/// ClickHouse once. Then SIGKILL and restart: no seq is used twice.
#[tokio::test]
async fn full_spool_disk_fail_closed_refuses_then_drains_without_restart() {
    let Some(rig) = spool_outage("1m", "full_spool_disk_fail_closed", "disk_closed") else {
        return;
    };
    let SpoolOutage {
        mnt: _mnt,
        ch,
        ch_db,
        pg,
        db,
        dir,
        config,
    } = rig;
    let first = PgtrailProcess::start(&config, dir.path()).await;
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let tasks = start_clients(&conn(pg, &db, first.port), 4, &seen, &stop).await;
    refused_then_running(&seen, || ch.restart(), "ClickHouse came back", 60).await;
    stop_clients(&stop, tasks).await;
    let ok = std::mem::take(&mut *seen.ok.lock().unwrap());
    let ran = rows_in_t(pg, &db).await;
    wait_until("the spool never drained", 60, || {
        ch_inserts(&ch, &ch_db).len() as i64 >= ran
    })
    .await;
    assert_each_once(&ok, &ch_inserts(&ch, &ch_db), ran);

    // SIGKILL, restart on the same spool: new records get new seqs.
    drop(first);
    let second = PgtrailProcess::start(&config, dir.path()).await;
    let client = connect(&conn(pg, &db, second.port)).await;
    for i in 0..50 {
        client
            .simple_query(&format!("INSERT INTO t VALUES (99, {i})"))
            .await
            .unwrap();
    }
    let ran = rows_in_t(pg, &db).await;
    wait_until("records after the restart", 60, || {
        ch_inserts(&ch, &ch_db).len() as i64 >= ran
    })
    .await;
    let reused = format!(
        "SELECT seq FROM (SELECT seq, event_id FROM `{ch_db}`.statements UNION ALL SELECT seq, event_id FROM `{ch_db}`.sessions UNION ALL SELECT seq, event_id FROM `{ch_db}`.transactions) GROUP BY seq HAVING uniqExact(event_id) > 1"
    );
    assert_eq!(ch.query(&reused), "", "seqs used for two records");
}

/// The seqs from 1 to the highest that are neither a record nor inside a
/// gap's `[seq, seq + missing_events)`.
fn unaccounted(records: &BTreeSet<u64>, gaps: &[(u64, u64)]) -> Vec<u64> {
    let mut covered = records.clone();
    for &(seq, n) in gaps {
        covered.extend(seq..seq + n);
    }
    let max = covered.iter().max().copied().unwrap_or(0);
    (1..=max).filter(|s| !covered.contains(s)).collect()
}

/// Every seq from 1 to the highest is a record or inside a gap's
/// `[seq, seq + missing_events)`; returns how many gaps there were.
fn assert_every_seq_accounted(records: &BTreeSet<u64>, gaps: &[(u64, u64)]) -> usize {
    let missing = unaccounted(records, gaps);
    assert!(
        missing.is_empty(),
        "{} seqs neither recorded nor in a gap, from {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    gaps.len()
}

/// The same outage under `fail_open`: statements run; every seq is in
/// ClickHouse or in a gap row; delivery resumes without a restart.
#[tokio::test]
async fn full_spool_disk_fail_open_accounts_for_every_seq() {
    let Some(rig) = spool_outage("1m", "full_spool_disk_fail_open", "disk_open") else {
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
    config.audit.failure_policy = FailurePolicy::FailOpen;
    let proc = PgtrailProcess::start(&config, dir.path()).await;
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let tasks = start_clients(&conn(pg, &db, proc.port), 4, &seen, &stop).await;
    // About 3,000 records fit in 1 MB: go well past it.
    wait_until("statements stopped", 60, || seen.ok_count() >= 8000).await;
    ch.restart();
    let client = connect(&conn(pg, &db, proc.port)).await;
    ch.send_until_recorded(&ch_db, &client).await;
    stop_clients(&stop, tasks).await;
    assert_eq!(seen.refused.load(Ordering::Relaxed), 0);
    let seqs = |table: &str| -> BTreeSet<u64> {
        ch.query(&format!("SELECT seq FROM `{ch_db}`.{table}"))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    let read = || {
        let mut records = seqs("statements");
        records.extend(seqs("sessions"));
        records.extend(seqs("transactions"));
        records.extend(seqs("checkpoints"));
        records.extend(seqs("lifecycle"));
        let gaps: Vec<(u64, u64)> = ch
            .query(&format!("SELECT seq, missing_events FROM `{ch_db}`.gaps"))
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, n)| (s.parse().unwrap(), n.parse().unwrap()))
            .collect();
        (records, gaps)
    };
    // A batch's tables are inserted one after the other: its gap rows may
    // land a moment after its statements.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut records, mut gaps) = read();
    while !unaccounted(&records, &gaps).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        (records, gaps) = read();
    }
    assert!(
        assert_every_seq_accounted(&records, &gaps) > 0,
        "the disk never filled"
    );
}

/// JSON Lines records in `path` (lines cut by a full disk are skipped).
pub(crate) fn file_records(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn file_inserts(records: &[Value]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r["record"] == "statements" && r["kind"] == "insert")
    {
        *out.entry(r["statement"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

/// The audit file on an almost full tmpfs under `fail_closed`: statements
/// get 53000 while lines cannot be written; once space is freed they run
/// again without a restart, and every acknowledged statement has one line.
#[tokio::test]
async fn full_audit_file_disk_fail_closed_recovers_when_space_returns() {
    let Some(mnt) = mount_or_skip("2m", "full_audit_file_disk_fail_closed") else {
        return;
    };
    mnt.fill_leaving(200 * 1024);
    let (pg, db) = fresh_db("file_closed");
    pg.psql(&db, "CREATE TABLE t (who int, i int)");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    let file = mnt.path().join("audit.jsonl");
    config.audit.file = Some(file.clone());
    let proc = PgtrailProcess::start(&config, dir.path()).await;
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let tasks = start_clients(&conn(pg, &db, proc.port), 4, &seen, &stop).await;
    refused_then_running(&seen, || mnt.free(), "space was freed", 30).await;
    stop_clients(&stop, tasks).await;
    let ok = std::mem::take(&mut *seen.ok.lock().unwrap());
    let ran = rows_in_t(pg, &db).await;
    wait_until("lines never written", 30, || {
        file_inserts(&file_records(&file)).len() as i64 >= ran
    })
    .await;
    assert_each_once(&ok, &file_inserts(&file_records(&file)), ran);
}

/// The same under `fail_open`: statements run, and every seq is a line or
/// inside a gap line once space is back.
#[tokio::test]
async fn full_audit_file_disk_fail_open_writes_gap_lines() {
    let Some(mnt) = mount_or_skip("2m", "full_audit_file_disk_fail_open") else {
        return;
    };
    mnt.fill_leaving(200 * 1024);
    let (pg, db) = fresh_db("file_open");
    pg.psql(&db, "CREATE TABLE t (who int, i int)");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    let file = mnt.path().join("audit.jsonl");
    config.audit.file = Some(file.clone());
    config.audit.failure_policy = FailurePolicy::FailOpen;
    let proc = PgtrailProcess::start(&config, dir.path()).await;
    let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
    let tasks = start_clients(&conn(pg, &db, proc.port), 4, &seen, &stop).await;
    // About 400 lines fit in 200 KB: go well past it.
    wait_until("statements stopped", 60, || seen.ok_count() >= 3000).await;
    stop_clients(&stop, tasks).await;
    mnt.free();
    let client = connect(&conn(pg, &db, proc.port)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        client.simple_query("SELECT 'done'").await.unwrap();
        let records = file_records(&file);
        if records.iter().any(|r| r["statement"] == "SELECT 'done'") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no line written after space was freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen.refused.load(Ordering::Relaxed), 0);
    let records = file_records(&file);
    let seqs: BTreeSet<u64> = records
        .iter()
        .filter(|r| r["record"] != "gaps")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let gaps: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| r["record"] == "gaps")
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["missing_events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        assert_every_seq_accounted(&seqs, &gaps) > 0,
        "the disk never filled"
    );
}
