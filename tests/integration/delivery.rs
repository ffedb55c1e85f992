//! Delivery guarantees against a real ClickHouse: the failure policy at a
//! full spool (`fail_closed` refuses, `fail_open` records the gap), a long
//! outage under load, and `before_ack` across a SIGKILL of the pgtrail
//! binary.

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::clickhouse::unique_ch_db;
use crate::harness::clickhouse::ChServer;
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{fresh_db, statements, Proxy};
use pgtrail::config::{Config, FailurePolicy};

fn tiny_spool(cfg: &mut Config, ch: &ChServer, db: &str, spool: &std::path::Path) {
    cfg.audit.clickhouse_url = Some(ch.http_url());
    cfg.audit.clickhouse.database = db.to_string();
    cfg.audit.clickhouse.batch_ms = 20;
    cfg.audit.spool_dir = Some(spool.to_path_buf());
    cfg.audit.spool_max_bytes = 16 * 1024;
    cfg.audit.spool_segment_bytes = 4 * 1024;
}

/// Polls `sql` on ClickHouse until it returns `want` (60 s at most).
async fn wait_ch(ch: &ChServer, sql: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = ch.try_query(sql).unwrap_or_default();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: got {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// ClickHouse down and the spool full under `fail_closed`: idle sessions
/// get SQLSTATE 53000 for simple and extended statements, nothing refused
/// runs, the session stays open, and once ClickHouse is back statements run
/// again and every one that ran is in ClickHouse exactly once.
#[tokio::test]
async fn fail_closed_refuses_statements_while_the_spool_is_full() {
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("closed");
    let (pg, db) = fresh_db("fail_closed");
    let spool = tempfile::tempdir().unwrap();
    let proxy = Proxy::start_with(pg, |c| tiny_spool(c, &ch, &ch_db, spool.path())).await;
    let client = proxy.connect(pg, &db).await;
    client.simple_query("CREATE TABLE t (i int)").await.unwrap();
    let mut ran = 1;
    let refused = loop {
        assert!(ran < 5000, "the spool never filled");
        match client
            .simple_query(&format!("INSERT INTO t VALUES ({ran})"))
            .await
        {
            Ok(_) => ran += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(sqlstate(&refused), "53000", "{refused:?}");
    let text = refused.as_db_error().map(|e| e.message().to_string());
    assert!(
        text.as_deref()
            .is_some_and(|m| m.contains("cannot be audited") && m.contains("spool is full")),
        "{text:?}"
    );
    // Extended protocol too, and the session is still there.
    let e = client.query("SELECT $1::int", &[&7i32]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "53000", "{e:?}");
    let metrics = pgtrail::admin::metrics_text(&proxy.ctx).unwrap();
    assert!(
        metrics.contains("\npgtrail_statements_refused_total 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\npgtrail_audit_blocked 1\n"), "{metrics}");
    let lag = metric(&metrics, "pgtrail_audit_oldest_unshipped_seconds");
    assert!(lag > 0.0, "{metrics}");
    // ClickHouse never answered: everything written is still unacknowledged.
    let unacked = metric(&metrics, "pgtrail_spool_unacked_records");
    let written = metric(&metrics, "pgtrail_audit_records_written_total");
    assert!(unacked > 0.0 && unacked == written, "{metrics}");

    ch.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .simple_query("INSERT INTO t VALUES (0)")
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "statements still refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ran += 1;
    let row = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        i64::from(ran - 1),
        "a refused INSERT ran"
    );
    let inserts = format!(
        "SELECT count(), uniqExact(seq) FROM `{ch_db}`.statements FINAL WHERE kind = 'insert'"
    );
    wait_ch(&ch, &inserts, &format!("{}\t{}", ran - 1, ran - 1)).await;
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.gaps")),
        "0"
    );
    drop(client);
    proxy.stop().await;
}

/// The same outage under `fail_open`: every statement runs, and the seqs
/// that did not reach ClickHouse are exactly those the gap rows name.
#[tokio::test]
async fn fail_open_serves_statements_and_records_the_gap() {
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("open");
    let (pg, db) = fresh_db("fail_open");
    let spool = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let proxy_file = files.path().join("audit.jsonl");
    let proxy = Proxy::start_with(pg, |c| {
        tiny_spool(c, &ch, &ch_db, spool.path());
        c.audit.failure_policy = FailurePolicy::FailOpen;
        c.audit.file = Some(proxy_file.clone());
    })
    .await;
    let client = proxy.connect(pg, &db).await;
    for i in 0..300 {
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    // The writer fills the spool behind the relay; under load it may not
    // have reached the limit when the 300th result arrives.
    let mut i = 300;
    while proxy.ctx.audit.gate().dropped() == 0 {
        assert!(i < 5000, "the spool never filled");
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
        i += 1;
    }
    ch.restart();
    // Until the spool has room again, even these are skipped.
    ch.send_until_recorded(&ch_db, &client).await;
    drop(client);
    let dropped = proxy.ctx.audit.gate().dropped();
    let metrics = pgtrail::admin::metrics_text(&proxy.ctx).unwrap();
    assert_eq!(
        metric(&metrics, "pgtrail_audit_records_dropped_total"),
        dropped as f64
    );
    let records = proxy.stop().await;

    let seqs = |table: &str| -> BTreeSet<u64> {
        ch.query(&format!("SELECT seq FROM `{ch_db}`.{table}"))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    let mut in_ch = seqs("statements");
    in_ch.extend(seqs("sessions"));
    in_ch.extend(seqs("transactions"));
    in_ch.extend(seqs("checkpoints"));
    in_ch.extend(seqs("lifecycle"));
    let mut in_gaps = BTreeSet::new();
    let gaps = ch.query(&format!("SELECT seq, missing_events FROM `{ch_db}`.gaps"));
    for line in gaps.lines() {
        let (seq, n) = line.split_once('\t').unwrap();
        let (seq, n): (u64, u64) = (seq.parse().unwrap(), n.parse().unwrap());
        in_gaps.extend(seq..seq + n);
    }
    assert_eq!(in_gaps.len() as u64, dropped, "gap rows: {gaps}");
    assert!(in_ch.is_disjoint(&in_gaps));
    // Every record pgtrail made (the JSON Lines file has them all) is in
    // ClickHouse or named by a gap row.
    let made: BTreeSet<u64> = records
        .iter()
        .filter(|r| r["record"] != "gaps")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let covered: BTreeSet<u64> = in_ch.union(&in_gaps).copied().collect();
    assert_eq!(made, covered);
    assert!(statements(&records).len() > 300);
    // The chain holds across the records ClickHouse never got: each gap
    // record says where it goes on, and verify reports the gaps.
    // With the outside copy (checkpoints and the gap records) too.
    let options = pgtrail::audit::chain::verify::VerifyOptions {
        checkpoints: vec![spool.path().join("checkpoints.jsonl")],
        ..Default::default()
    };
    let report = crate::integrity::verify_ch_with(&ch, &ch_db, &options).await;
    assert!(report.ok, "{}", report.human());
    assert!(
        crate::integrity::kinds_of(&report).contains("gap"),
        "{}",
        report.human()
    );
    let outside = std::fs::read_to_string(spool.path().join("checkpoints.jsonl")).unwrap();
    assert!(outside.contains("\"record\":\"gaps\""), "{outside}");
    let file = proxy_file.clone();
    let items = pgtrail::audit::chain::verify::jsonl::read_all(&[file]).unwrap();
    let report = pgtrail::audit::chain::verify::walk_all(items, &Default::default()).unwrap();
    assert!(report.ok, "{}", report.human());
}

/// ClickHouse stopped during a 50,000-statement workload from four
/// sessions and started again: exactly 50,000 statement rows, no
/// duplicates, no gaps.
#[tokio::test]
async fn long_outage_under_load_loses_nothing() {
    const PER_CLIENT: usize = 12_500;
    let ch = std::sync::Arc::new(ChServer::start());
    let ch_db = unique_ch_db("outage50k");
    let (pg, db) = fresh_db("outage50k");
    let spool = tempfile::tempdir().unwrap();
    let proxy = Proxy::start_with(pg, |c| {
        c.audit.clickhouse_url = Some(ch.http_url());
        c.audit.clickhouse.database = ch_db.clone();
        c.audit.clickhouse.batch_ms = 50;
        c.audit.spool_dir = Some(spool.path().to_path_buf());
        c.audit.spool_segment_bytes = 1 << 20;
    })
    .await;
    let mut tasks = Vec::new();
    for n in 0..4 {
        let client = proxy.connect(pg, &db).await;
        let ch = (n == 0).then(|| ch.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                if let Some(ch) = &ch {
                    match i {
                        2_500 => ch.kill(),
                        7_500 => ch.restart(),
                        _ => {}
                    }
                }
                client
                    .simple_query(&format!("SELECT {n}, {i}"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let want = 4 * PER_CLIENT;
    let sql =
        format!("SELECT count(), uniqExact(instance_id, seq) FROM `{ch_db}`.statements FINAL");
    wait_ch(&ch, &sql, &format!("{want}\t{want}")).await;
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.gaps")),
        "0"
    );
    let records: Vec<Value> = proxy.stop().await;
    assert_eq!(statements(&records).len(), want);
}

/// `before_ack`: pgtrail killed with SIGKILL under load while ClickHouse is
/// down, restarted on the same spool with ClickHouse back: every statement
/// whose result a client received is in ClickHouse, once.
#[tokio::test]
async fn before_ack_survives_sigkill() {
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("beforeack");
    let (pg, db) = fresh_db("before_ack");
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::harness::proxy::config_for(pg, dir.path());
    config.audit.file = None;
    config.audit.clickhouse_url = Some(ch.http_url());
    config.audit.clickhouse.database = ch_db.clone();
    config.audit.clickhouse.batch_ms = 20;
    config.audit.spool_dir = Some(dir.path().join("spool"));
    config.audit.durability = pgtrail::config::Durability::BeforeAck;
    pg.psql(&db, "CREATE TABLE k (who int, i int)");

    let first = PgtrailProcess::start(&config, dir.path()).await;
    let conn = |port: u16| {
        format!(
            "host=127.0.0.1 port={port} user={} password={} dbname={db}",
            pg.superuser(),
            pg.password()
        )
    };
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for who in 0..4 {
        let client = crate::harness::proxy::connect(&conn(first.port)).await;
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let sql = format!("INSERT INTO k VALUES ({who}, {i})");
                if client.simple_query(&sql).await.is_err() {
                    return;
                }
                acked.lock().unwrap().push(sql);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(first); // SIGKILL, mid-statement
    for t in tasks {
        t.await.unwrap();
    }
    let acked: BTreeSet<String> = std::mem::take(&mut *acked.lock().unwrap())
        .into_iter()
        .collect();
    assert!(acked.len() > 50, "only {} statements ran", acked.len());

    ch.restart();
    let _second = PgtrailProcess::start(&config, dir.path()).await;
    let query = format!("SELECT statement FROM `{ch_db}`.statements FINAL WHERE kind = 'insert'");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let landed: BTreeSet<String> = ch
            .try_query(&query)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let missing = acked.difference(&landed).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged statements never reached ClickHouse",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sql = format!("SELECT count() = uniqExact(instance_id, seq) FROM `{ch_db}`.statements");
    assert_eq!(ch.query(&sql), "1", "duplicate rows");
    // The chain: the second run's start says the first did not stop
    // cleanly, and everything before it still checks.
    wait_ch(
        &ch,
        &format!(
            "SELECT (SELECT count() FROM `{ch_db}`.lifecycle WHERE event_type = 'start'), \
             (SELECT count() FROM `{ch_db}`.checkpoints WHERE seq > (SELECT max(seq) FROM `{ch_db}`.lifecycle WHERE event_type = 'start'))"
        ),
        "2\t1",
    )
    .await;
    // Rows of one batch land table by table: poll until the whole trail is
    // in. The spool's last frame told the new run where the chain stood.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = crate::integrity::verify_ch(&ch, &ch_db).await;
        let continued = report.instances.iter().flat_map(|i| &i.findings).any(|f| {
            f.kind.name() == "crash" && f.detail.contains("continues from its last record kept")
        });
        if report.ok && continued {
            break;
        }
        assert!(Instant::now() < deadline, "{}", report.human());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `INSERT INTO t` until pgtrail refuses one; returns how many ran.
async fn insert_until_refused(client: &tokio_postgres::Client) -> usize {
    client.simple_query("CREATE TABLE t (i int)").await.unwrap();
    for i in 0..5000 {
        if let Err(e) = client
            .simple_query(&format!("INSERT INTO t VALUES ({i})"))
            .await
        {
            assert_eq!(sqlstate(&e), "53000", "{e:?}");
            return i;
        }
    }
    panic!("never refused");
}

/// Stopping while the spool is full and ClickHouse down does not hang, and
/// the next start delivers every statement that ran.
#[tokio::test]
async fn stopping_with_a_full_spool_keeps_every_record() {
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("fullstop");
    let (pg, db) = fresh_db("full_stop");
    let spool = tempfile::tempdir().unwrap();
    let tweak = |c: &mut Config| tiny_spool(c, &ch, &ch_db, spool.path());
    let proxy = Proxy::start_with(pg, tweak).await;
    let client = proxy.connect(pg, &db).await;
    let ran = insert_until_refused(&client).await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(30), proxy.stop())
        .await
        .expect("shutdown hung with the spool full");
    ch.restart();
    let proxy = Proxy::start_with(pg, tweak).await;
    let inserts = format!("SELECT count() FROM `{ch_db}`.statements FINAL WHERE kind = 'insert'");
    wait_ch(&ch, &inserts, &ran.to_string()).await;
    proxy.stop().await;
}

/// Without a spool, a full in-memory backlog refuses statements under
/// `fail_closed`, and stopping does not wait for ClickHouse forever.
#[tokio::test]
async fn full_memory_backlog_refuses_and_stops() {
    let ch = ChServer::start();
    ch.kill();
    let ch_db = unique_ch_db("backlog");
    let (pg, db) = fresh_db("backlog");
    let proxy = Proxy::start_with(pg, |c| {
        c.audit.clickhouse_url = Some(ch.http_url());
        c.audit.clickhouse.database = ch_db.clone();
        c.audit.clickhouse.batch_rows = 5;
    })
    .await;
    let client = proxy.connect(pg, &db).await;
    let ran = insert_until_refused(&client).await;
    // Refused only once the backlog (4 batches of 5 rows) is full: each
    // autocommit INSERT makes two records, its statement and its transaction.
    assert!(2 * ran >= 20, "refused after {ran}");
    let metrics = pgtrail::admin::metrics_text(&proxy.ctx).unwrap();
    assert!(metrics.contains("\npgtrail_audit_blocked 1\n"), "{metrics}");
    drop(client);
    tokio::time::timeout(Duration::from_secs(30), proxy.stop())
        .await
        .expect("shutdown hung with the backlog full");
}
