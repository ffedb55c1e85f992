//! ClickHouse delivery: the schema on the local server (18.16) and on a
//! modern engine (`ch-modern-check`), and a known workload through the proxy
//! landing in ClickHouse exactly once with every field right.

use serde_json::Value;
use std::collections::BTreeMap;

use crate::harness::clickhouse::ChServer;
use crate::harness::proxy::{fresh_db, sessions, statements, Proxy};
use crate::harness::spool::SpoolLeft;
use pgtrail::audit::record::parse_time_micros;
use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};

pub(crate) use crate::harness::clickhouse::unique_ch_db;

#[test]
fn old_schema_applies_idempotently_on_the_local_server() {
    let ch = ChServer::shared();
    let version = ServerVersion::parse(&ch.version()).expect("version");
    let opts = SchemaOptions {
        database: unique_ch_db("schema"),
        ..SchemaOptions::default()
    };
    for _ in 0..2 {
        for ddl in schema::statements(version, &opts) {
            ch.query(&ddl);
        }
    }
    ch.query(&schema::record_migrations(&opts, &[]).unwrap());
    assert_eq!(
        ch.query(&schema::applied_migrations_query(&opts)),
        "1\n2\n3\n4\n5\n6\n7\n8\n9"
    );
    for table in ["statements", "sessions", "gaps", "transactions", "changes"] {
        let got = ch.query(&format!(
            "SELECT name FROM system.columns WHERE database = '{}' AND table = '{table}' FORMAT TSV",
            opts.database
        ));
        let mut want = schema::column_names(table);
        if !version.is_modern() {
            want.push("event_date");
        }
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "{table}");
    }
}

#[test]
fn modern_schema_passes_ch_modern_check() {
    let opts = SchemaOptions::default();
    let version = ServerVersion::DEFAULT;
    // The DDL twice (idempotent), the migration mark, a row written the way
    // the sink writes it (micros into DateTime64(6)), and the documented
    // duplicate-free reads (FINAL, argMax) plus a statement-text search.
    let mut sql = schema::script(version, &opts);
    sql.push_str(&schema::script(version, &opts));
    sql.push_str(&format!(
        "{};\n",
        schema::record_migrations(&opts, &[]).unwrap()
    ));
    let cols = schema::column_names("statements")
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = "generateUUIDv4(), 'i1', 1, fromUnixTimestamp64Micro(toInt64(1796041530123456), 'UTC'), 5, 's1', 4242, 'alice', 'app', 'app', 'db', '127.0.0.1', 5432, 'psql', 'simple', 'SELECT * FROM t WHERE id = 1', 0, 0, 42, 'SELECT * FROM t WHERE id = $1', 'select', 'read', 'R', 'READ', ['t'], [], [], 'sqlparser', 'SELECT 1', 1, 1, '', '', 'I', toUUID('00000000-0000-0000-0000-000000000000'), [], '', ['public.t.a'], [], [], [], [], 1, 'alice', 'comment', 1, '', 'req-1', '4bf92f3577b34da6a3ce929d0e0e4736'";
    for _ in 0..2 {
        sql.push_str(&format!(
            "INSERT INTO pgtrail.statements ({cols}) SELECT {row};\n"
        ));
    }
    sql.push_str("OPTIMIZE TABLE pgtrail.statements FINAL;\n");
    sql.push_str("SELECT throwIf(count() != 1) FROM pgtrail.statements FINAL WHERE hasToken(statement, 'SELECT') AND has(objects_read, 't');\n");
    sql.push_str("SELECT instance_id, seq, argMax(kind, event_time) FROM pgtrail.statements GROUP BY instance_id, seq;\n");
    sql.push_str("SELECT throwIf(toUnixTimestamp64Micro(event_time) != 1796041530123456) FROM pgtrail.statements;\n");
    sql.push_str("SELECT throwIf(count() != 1) FROM pgtrail.end_user_activity WHERE end_user = 'alice' AND end_user_source = 'comment' AND end_user_verified;\n");
    crate::harness::modern::check(&sql, "the modern DDL");
}

/// JSON values compared as text: ClickHouse quotes 64-bit integers and
/// writes booleans as 0/1.
fn norm(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::String(u8::from(*b).to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        other => other.clone(),
    }
}

fn ch_rows(ch: &ChServer, db: &str, table: &str) -> BTreeMap<u64, Value> {
    let body = ch.query(&format!(
        "SELECT * FROM `{db}`.`{table}` FINAL ORDER BY seq FORMAT JSONEachRow"
    ));
    body.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSONEachRow line");
            (norm(&v["seq"]).as_str().unwrap().parse().unwrap(), v)
        })
        .collect()
}

/// Every field of the JSON Lines record equals the ClickHouse column.
fn assert_same(record: &Value, row: &Value) {
    for (key, want) in record.as_object().unwrap() {
        match key.as_str() {
            "record" => {}
            "event_time" | "started_at" => {
                let micros = parse_time_micros(want.as_str().unwrap()).unwrap();
                assert_eq!(norm(&row[key]), Value::String(micros.to_string()), "{key}");
            }
            _ => assert_eq!(norm(&row[key]), norm(want), "{key} of {record}"),
        }
    }
}

#[tokio::test]
async fn workload_lands_in_clickhouse_exactly_once() {
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("e2e");
    let (pg, db) = fresh_db("ch_e2e");
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 50;
        cfg.audit.clickhouse.batch_rows = 4;
    })
    .await;
    let client = proxy.connect(pg, &db).await;
    client
        .batch_execute("CREATE TABLE t (id int primary key, v text)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .await
        .unwrap();
    // Later statements of one Query string can get duration_us = 0 when
    // their CommandComplete arrives in the same read as the previous one
    // (the tracker's timing, not delivery); checked apart below.
    client.batch_execute("SELECT 1; SELECT 2").await.unwrap();
    client
        .simple_query("SELECT * FROM t ORDER BY id")
        .await
        .unwrap();
    client
        .execute("UPDATE t SET v = $1 WHERE id > $2", &[&"z", &0i32])
        .await
        .unwrap();
    let err = client
        .simple_query("SELECT * FROM missing_table")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    drop(client);
    let records = proxy.stop().await;

    let stmts = statements(&records);
    let sess = sessions(&records);
    let txns: Vec<&Value> = records
        .iter()
        .filter(|r| r["record"] == "transactions")
        .collect();
    assert_eq!(stmts.len(), 7, "{records:#?}");
    assert!(sess.len() >= 3, "{records:#?}");
    // Autocommit: a transaction per Query string (`SELECT 1; SELECT 2` is
    // one) or extended-protocol statement.
    assert_eq!(txns.len(), 6, "{records:#?}");

    // Exactly once: as many physical rows as records, before any merge.
    let tables = [
        ("statements", stmts.len()),
        ("sessions", sess.len()),
        ("transactions", txns.len()),
    ];
    for (table, n) in tables {
        let count = ch.query(&format!(
            "SELECT count(), uniqExact(seq) FROM `{ch_db}`.`{table}`"
        ));
        assert_eq!(count, format!("{n}\t{n}"), "{table}");
    }
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.gaps")),
        "0"
    );
    // The chain holds from ClickHouse's rows.
    crate::integrity::assert_intact(ch, &ch_db).await;

    // Every field as in the JSON Lines record.
    let ch_stmts = ch_rows(ch, &ch_db, "statements");
    let ch_sess = ch_rows(ch, &ch_db, "sessions");
    let ch_txns = ch_rows(ch, &ch_db, "transactions");
    for r in &txns {
        let seq = r["seq"].as_u64().unwrap();
        assert_same(r, &ch_txns[&seq]);
    }
    for r in &stmts {
        let seq = r["seq"].as_u64().unwrap();
        assert_same(r, &ch_stmts[&seq]);
    }
    for r in &sess {
        let seq = r["seq"].as_u64().unwrap();
        assert_same(r, &ch_sess[&seq]);
    }

    // seq is contiguous across the tables.
    let mut seqs: Vec<u64> = ch_stmts
        .keys()
        .chain(ch_sess.keys())
        .chain(ch_txns.keys())
        .copied()
        .collect();
    seqs.sort_unstable();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>());

    // And the values themselves, read from ClickHouse.
    let by_kind = |kind: &str| -> &Value {
        ch_stmts
            .values()
            .find(|r| r["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} row in {ch_stmts:#?}"))
    };
    for row in ch_stmts.values() {
        assert_eq!(row["user"], pg.superuser());
        assert_eq!(row["db_role"], pg.superuser());
        assert_eq!(row["database"], db.as_str());
        let duration: u64 = norm(&row["duration_us"]).as_str().unwrap().parse().unwrap();
        assert!(
            duration > 0 || row["statement"] == "SELECT 2",
            "duration_us = 0: {row}"
        );
    }
    let insert = by_kind("insert");
    assert_eq!(norm(&insert["rows"]), Value::String("2".into()));
    assert_eq!(insert["objects_written"][0], "t");
    assert_eq!(insert["class"], "write");
    let select = ch_stmts
        .values()
        .find(|r| r["statement"] == "SELECT * FROM t ORDER BY id")
        .expect("select row");
    assert_eq!(select["kind"], "select");
    let failed = ch_stmts
        .values()
        .find(|r| r["sqlstate"] == "42P01")
        .expect("failed statement row");
    assert_eq!(norm(&failed["success"]), Value::String("0".into()));
    assert_eq!(select["objects_read"][0], "t");
    assert_eq!(norm(&select["rows"]), Value::String("2".into()));
    let update = by_kind("update");
    assert_eq!(update["protocol"], "extended");
    assert_eq!(update["objects_written"][0], "t");
    let types: Vec<&str> = ch_sess
        .values()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    for t in ["connect", "auth_ok", "disconnect"] {
        assert!(types.contains(&t), "{types:?}");
    }
    // Every version applied is listed, not only the latest.
    let migrations = ch.query(&format!(
        "SELECT version FROM `{ch_db}`.schema_migrations ORDER BY version"
    ));
    assert_eq!(migrations, "1\n2\n3\n4\n5\n6\n7\n8\n9");
}

/// ClickHouse killed mid-workload and started again: the held batches are
/// retried and every record lands once.
#[tokio::test]
async fn outage_is_retried_without_loss_or_duplicates() {
    let ch = ChServer::start();
    let ch_db = unique_ch_db("outage");
    let (pg, db) = fresh_db("ch_outage");
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 20;
    })
    .await;
    let client = proxy.connect(pg, &db).await;
    for i in 0..20 {
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    ch.kill();
    for i in 20..40 {
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    // A send must really fail (and be held) before the server comes back.
    let stats = proxy
        .ctx
        .observed
        .clickhouse
        .clone()
        .expect("ClickHouse sink");
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while load(&stats.batches_failed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no send failed while ClickHouse was down"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sent_during_outage = load(&stats.batches_sent);
    ch.restart();
    drop(client);
    let records = proxy.stop().await;
    assert!(
        load(&stats.batches_sent) > sent_during_outage,
        "the failed batch was not retried once ClickHouse was back"
    );
    assert_eq!(load(&stats.rows_lost), 0);
    let n = statements(&records).len();
    assert_eq!(n, 40);
    let count = ch.query(&format!(
        "SELECT count(), uniqExact(seq) FROM `{ch_db}`.statements"
    ));
    assert_eq!(count, format!("{n}\t{n}"));
    let sess = sessions(&records).len();
    let count = ch.query(&format!(
        "SELECT count(), uniqExact(seq) FROM `{ch_db}`.sessions"
    ));
    assert_eq!(count, format!("{sess}\t{sess}"));
}

/// With `audit.spool_dir`: ClickHouse killed twice during a few thousand
/// statements, pgtrail stopped while it is down (rows left in the spool),
/// then restarted on the same spool: every statement lands exactly once,
/// the new run continues the sequence under the same instance id.
#[tokio::test]
async fn spool_survives_outages_and_a_restart() {
    let ch = ChServer::start();
    let ch_db = unique_ch_db("spool");
    let (pg, db) = fresh_db("ch_spool");
    let spool = tempfile::tempdir().unwrap();
    let tweak = |cfg: &mut pgtrail::config::Config| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 20;
        cfg.audit.clickhouse.batch_rows = 500;
        cfg.audit.spool_dir = Some(spool.path().to_path_buf());
        cfg.audit.spool_segment_bytes = 256 * 1024;
    };
    let proxy = Proxy::start_with(pg, tweak).await;
    let client = proxy.connect(pg, &db).await;
    for i in 0..3500 {
        match i {
            1000 | 3000 => ch.kill(),
            2000 => ch.restart(),
            _ => {}
        }
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    drop(client);
    let first = proxy.stop().await;
    // ClickHouse is still down: what it has not acknowledged is spooled.
    let left = std::fs::read_dir(spool.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("spool-")
        })
        .count();
    assert!(left > 0, "no spool segment left");
    // No `acked` file yet means nothing was acknowledged (seq 0), which
    // happens when ClickHouse was down at every batch of the first run.
    let read_acked = || pgtrail::audit::spool::marker::read_acked(spool.path()).unwrap();
    let max_seq = |rs: &[Value]| rs.iter().map(|r| r["seq"].as_u64().unwrap()).max();
    assert!(
        read_acked() < max_seq(&first).unwrap(),
        "nothing was left over"
    );
    ch.restart();

    let proxy = Proxy::start_with(pg, tweak).await;
    let client = proxy.connect(pg, &db).await;
    for i in 0..100 {
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    drop(client);
    let second = proxy.stop().await;

    let (s1, s2) = (statements(&first), statements(&second));
    assert_eq!((s1.len(), s2.len()), (3500, 100));
    let min_seq = |rs: &[Value]| rs.iter().map(|r| r["seq"].as_u64().unwrap()).min();
    assert_eq!(min_seq(&second).unwrap(), max_seq(&first).unwrap() + 1);
    assert_eq!(first[0]["instance_id"], second[0]["instance_id"]);
    let n = s1.len() + s2.len();
    let count = ch.query(&format!(
        "SELECT count(), uniqExact(instance_id, seq) FROM `{ch_db}`.statements FINAL"
    ));
    assert_eq!(count, format!("{n}\t{n}"));
    let sess = sessions(&first).len() + sessions(&second).len();
    let count = ch.query(&format!(
        "SELECT count(), uniqExact(instance_id, seq) FROM `{ch_db}`.sessions FINAL"
    ));
    assert_eq!(count, format!("{sess}\t{sess}"));
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.gaps")),
        "0"
    );
    // The chain holds across the outages (retried batches are duplicates
    // of the same bytes) and the restart; the last run's stop may still be
    // on its way.
    crate::integrity::assert_intact(&ch, &ch_db).await;
    // Everything acknowledged.
    assert_eq!(read_acked(), max_seq(&second).unwrap());
}

/// A spool segment corrupted while pgtrail was down: the next start moves
/// the damaged part to `quarantine/`, writes a gap row saying so, and does
/// not reuse the seqs the damaged part held.
#[tokio::test]
async fn corrupt_spool_is_quarantined_with_a_gap_row() {
    let left = SpoolLeft::make("spoolbad", 20).await;
    let SpoolLeft {
        ch,
        ch_db,
        spool,
        first,
        segment,
        ..
    } = &left;
    let mut bytes = std::fs::read(segment).unwrap();
    bytes[20] ^= 0xff; // inside the first frame, far from the tail
    std::fs::write(segment, &bytes).unwrap();
    let second = left.second_run().await;
    let first_max = first.iter().map(|r| r["seq"].as_u64().unwrap()).max();
    let gap = second
        .iter()
        .find(|r| r["record"] == "gaps")
        .unwrap_or_else(|| panic!("no gap record: {second:#?}"));
    assert!(gap["seq"].as_u64() > first_max, "{gap} vs {first_max:?}");
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let reason = format!(
        "spool corruption: {name} at offset 0, {} bytes quarantined",
        bytes.len()
    );
    assert_eq!(gap["reason"], reason.as_str());
    assert_eq!(gap["missing_events"].as_u64(), first_max);
    assert!(spool
        .path()
        .join("quarantine")
        .join(format!("{name}.0"))
        .is_file());
    assert_eq!(
        ch.query(&format!("SELECT reason FROM `{ch_db}`.gaps")),
        reason
    );
}

/// The DDL of schema version 8: today's without the end-user columns, their
/// skip index, the statements that add them and `end_user_activity`.
fn ddl_of_version_8(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    let added = schema::END_USER_COLUMNS;
    schema::statements(v, opts)
        .into_iter()
        .filter(|s| {
            !s.contains("end_user_activity")
                && !s.contains("ADD INDEX")
                && !added
                    .iter()
                    .any(|c| s.contains(&format!("ADD COLUMN IF NOT EXISTS `{c}`")))
        })
        .map(|s| {
            let kept: Vec<&str> = s
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !l.starts_with("INDEX end_user_idx")
                        && !added.iter().any(|c| l.starts_with(&format!("`{c}` ")))
                })
                .collect();
            added
                .iter()
                .fold(kept.join("\n"), |s, c| s.replace(&format!(", `{c}`"), ""))
        })
        .collect()
}

/// A schema of version 8 with a row in it, brought to version 9 by
/// pgtrail's start (the columns added, the views that list every column
/// replaced before the new view is made), on the local server; the same
/// DDL order on a modern engine.
#[tokio::test]
async fn a_schema_of_version_8_is_brought_to_version_9() {
    let ch = ChServer::shared();
    let version = ServerVersion::parse(&ch.version()).expect("version");
    let opts = SchemaOptions {
        database: unique_ch_db("v8"),
        ..SchemaOptions::default()
    };
    let v8 = ddl_of_version_8(version, &opts);
    for ddl in &v8 {
        ch.query(ddl);
    }
    ch.query(&schema::record_migrations(&opts, &[9]).unwrap());
    let db = &opts.database;
    assert!(!ch
        .query(&format!(
            "SELECT name FROM system.columns WHERE database = '{db}' AND table = 'statement_log' FORMAT TSV"
        ))
        .contains("end_user"));
    let (pg, pg_db) = fresh_db("ch_v8");
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = db.clone();
        cfg.audit.clickhouse.batch_ms = 20;
    })
    .await;
    let client = proxy.connect(pg, &pg_db).await;
    client.simple_query("SELECT 'after'").await.unwrap();
    drop(client);
    proxy.stop().await;
    assert_eq!(
        ch.query(&format!(
            "SELECT end_user, toString(end_user_source), end_user_verified FROM `{db}`.statement_log WHERE statement = 'SELECT ''after'''"
        )),
        "\tnone\t0"
    );
    for (table, view) in [
        ("statements", "statement_log"),
        ("transactions", "transaction_log"),
    ] {
        let columns = |t: &str| {
            ch.query(&format!(
                "SELECT name FROM system.columns WHERE database = '{db}' AND table = '{t}' FORMAT TSV"
            ))
        };
        let got = columns(table);
        let got: Vec<&str> = got.lines().filter(|c| *c != "event_date").collect();
        assert_eq!(got, schema::column_names(table), "{table}");
        assert!(columns(view).contains("trace_id"), "{view}");
    }
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{db}`.end_user_activity")),
        "0"
    );
    assert_eq!(
        ch.query(&format!(
            "SELECT max(version), count() FROM `{db}`.schema_migrations"
        )),
        format!("{}\t{}", schema::SCHEMA_VERSION, schema::MIGRATIONS.len())
    );

    // Modern: version 8's DDL, then what pgtrail's start runs (the columns
    // are added by the DDL there).
    let modern = ServerVersion::DEFAULT;
    let opts = SchemaOptions::default();
    let mut sql = String::new();
    for ddl in ddl_of_version_8(modern, &opts) {
        sql.push_str(&format!("{ddl};\n"));
    }
    for ddl in schema::view_drops(modern, &opts)
        .into_iter()
        .chain(schema::statements(modern, &opts))
    {
        sql.push_str(&format!("{ddl};\n"));
    }
    sql.push_str("SELECT end_user, end_user_source, trace_id FROM pgtrail.statement_log;\n");
    sql.push_str("SELECT end_user FROM pgtrail.transaction_log;\n");
    sql.push_str("SELECT count() FROM pgtrail.end_user_activity;\n");
    crate::harness::modern::check(&sql, "the upgrade from schema version 8");
}
