//! Attribution markers the server answers otherwise than expected: a
//! marker refused before a Query (the Query fails, nothing hangs), a
//! marked Query that fails (its record keeps the transaction status), and
//! a role that may not emit markers at all (it gets none).

use serde_json::Value;

use crate::harness::proxy::{connect, fresh_db, http_get, statements, Proxy};

const REVOKE: &str =
    "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC";

/// A marker goes right before a Query with no Sync of its own. When the
/// server refuses it (here: the role lost the right to call
/// `pg_logical_emit_message` after its session checked it at login), the
/// server skips everything up to a Sync:
/// the Query gets the marker's error and pgtrail's Sync its ReadyForQuery,
/// and a Query the client pipelined behind it waits, then runs, so nothing
/// hangs and the session goes on.
#[tokio::test]
async fn a_refused_marker_before_a_query_fails_that_query_and_nothing_hangs() {
    use crate::harness::raw;
    use tokio::io::AsyncWriteExt;
    let (pg, db) = fresh_db("marker_refused");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute(
            "CREATE TABLE t (v text);
             CREATE ROLE nomark LOGIN PASSWORD 'pw-nomark';
             GRANT ALL ON t TO nomark",
        )
        .await
        .unwrap();
    let proxy = Proxy::start_with(pg, |cfg| cfg.cdc.enabled = true).await;
    let params = [("user", "nomark"), ("database", db.as_str())];
    let mut s = raw::login(proxy.addr, &params, "pw-nomark").await;
    direct.batch_execute(REVOKE).await.unwrap();
    s.write_all(&raw::query(b"BEGIN")).await.unwrap();
    raw::read_until(&mut s, b'Z').await;
    // The first write of a block needs no marker.
    s.write_all(&raw::query(b"INSERT INTO t VALUES ('a')"))
        .await
        .unwrap();
    let first = raw::read_until(&mut s, b'Z').await;
    assert_eq!(raw::sqlstate(&first), None, "{first:?}");
    // The second gets one right before it, refused; a Query pipelined
    // behind it in the same write.
    let pipelined = [
        raw::query(b"INSERT INTO t VALUES ('b')"),
        raw::query(b"SELECT 1"),
    ]
    .concat();
    s.write_all(&pipelined).await.unwrap();
    let second = raw::read_until(&mut s, b'Z').await;
    assert_eq!(
        raw::sqlstate(&second).as_deref(),
        Some("42501"),
        "{second:?}"
    );
    assert_eq!(second.last().map(|(_, b)| b.as_slice()), Some(&b"E"[..]));
    let third = raw::read_until(&mut s, b'Z').await;
    assert_eq!(raw::sqlstate(&third).as_deref(), Some("25P02"), "{third:?}");
    s.write_all(&raw::query(b"ROLLBACK")).await.unwrap();
    let rollback = raw::read_until(&mut s, b'Z').await;
    assert_eq!(rollback.last().map(|(_, b)| b.as_slice()), Some(&b"I"[..]));
    s.write_all(&raw::query(b"SELECT count(*) FROM t"))
        .await
        .unwrap();
    let count = raw::read_until(&mut s, b'Z').await;
    assert!(
        count.iter().any(|(t, b)| *t == b'D' && b.ends_with(b"0")),
        "{count:?}"
    );
    let records = proxy.stop().await;
    let outcomes: Vec<(&str, bool)> = statements(&records)
        .iter()
        .map(|r| (r["statement"].as_str().unwrap(), r["success"] == true))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("BEGIN", true),
            ("INSERT INTO t VALUES ('a')", true),
            ("INSERT INTO t VALUES ('b')", false),
            ("SELECT 1", false),
            ("ROLLBACK", true),
            ("SELECT count(*) FROM t", true),
        ]
    );
}

/// A Query with a marker before it fails: the marker's answers come in
/// the same write as the Query's error (the server flushes only then), and
/// its ReadyForQuery in a write of its own. The error still waits for that ReadyForQuery,
/// so its record has the transaction status (`E`), as without markers.
#[tokio::test]
async fn a_marked_query_that_fails_keeps_its_transaction_status() {
    let (pg, db) = fresh_db("marker_failed");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute("CREATE TABLE t (v text)")
        .await
        .unwrap();
    let proxy = Proxy::start_with(pg, |cfg| cfg.cdc.enabled = true).await;
    let c = proxy.connect(pg, &db).await;
    // The two writes may reach pgtrail in one read or two: often enough
    // in two for a bug here to show.
    const ROUNDS: usize = 200;
    for _ in 0..ROUNDS {
        c.batch_execute("BEGIN").await.unwrap();
        c.batch_execute("INSERT INTO t VALUES ('a')").await.unwrap();
        let err = c
            .batch_execute("INSERT INTO t VALUES ((1/0)::text)")
            .await
            .unwrap_err();
        assert_eq!(err.code().map(|s| s.code()), Some("22012"));
        c.batch_execute("ROLLBACK").await.unwrap();
    }
    drop(c);
    let records = proxy.stop().await;
    let failed: Vec<&Value> = statements(&records)
        .into_iter()
        .filter(|r| r["success"] == false)
        .collect();
    assert_eq!(failed.len(), ROUNDS);
    let statuses: Vec<&Value> = failed.iter().map(|r| &r["txn_status"]).collect();
    assert!(statuses.iter().all(|s| *s == "E"), "{statuses:?}");
}

/// A role that may not call `pg_logical_emit_message` when its session
/// logs in gets no markers: without the check at login, the first marker
/// would fail and take the client's statement with it. Its writes go
/// through as they would without pgtrail, in a block (where a marker would
/// go before the second write and before COMMIT) and in autocommit (where
/// a write is wrapped with one), and the metric counts the session.
#[tokio::test]
async fn a_role_that_may_not_emit_markers_gets_none_and_its_writes_succeed() {
    let (pg, db) = fresh_db("marker_denied");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute(&format!(
            "CREATE TABLE t (v text);
             CREATE ROLE nomark2 LOGIN PASSWORD 'pw-nomark2';
             GRANT ALL ON t TO nomark2;
             {REVOKE}"
        ))
        .await
        .unwrap();
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.cdc.enabled = true;
        cfg.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let url = format!(
        "host={} port={} user=nomark2 password=pw-nomark2 dbname={db}",
        proxy.addr.ip(),
        proxy.addr.port()
    );
    let c = connect(&url).await;
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO t VALUES ('a')").await.unwrap();
    c.batch_execute("INSERT INTO t VALUES ('b')").await.unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    c.batch_execute("INSERT INTO t VALUES ('c')").await.unwrap();
    c.execute("INSERT INTO t VALUES ($1)", &[&"d"])
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
    let (_, metrics) = http_get(proxy.admin_addr.expect("admin"), "/metrics").await;
    drop(c);
    let records = proxy.stop().await;
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .map(str::to_string)
    };
    assert_eq!(
        line("pgtrail_cdc_sessions_without_markers_total ").as_deref(),
        Some("pgtrail_cdc_sessions_without_markers_total 1")
    );
    assert_eq!(
        line("pgtrail_cdc_markers_sent_total ").as_deref(),
        Some("pgtrail_cdc_markers_sent_total 0")
    );
    assert!(statements(&records).iter().all(|r| r["success"] == true));
}
