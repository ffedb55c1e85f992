//! Applications see PostgreSQL's own backend pid through pgtrail: in
//! BackendKeyData, in notifications, for pg_terminate_backend and
//! pg_stat_activity; cancels still need pgtrail's secret; every connect ends
//! in one disconnect record that says why.

use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{fresh_db, sessions, wait_for, Proxy};
use crate::harness::raw;

/// `SELECT pg_backend_pid()` over a raw connection.
async fn backend_pid(conn: &mut tokio::net::TcpStream) -> i32 {
    conn.write_all(&raw::query(b"SELECT pg_backend_pid()"))
        .await
        .unwrap();
    let msgs = raw::read_until(conn, b'Z').await;
    let (_, row) = msgs.iter().find(|m| m.0 == b'D').expect("a row");
    // DataRow: column count (2), length (4), text.
    std::str::from_utf8(&row[6..]).unwrap().parse().unwrap()
}

#[tokio::test]
async fn backend_key_pid_is_the_servers_and_notifications_agree() {
    let (pg, db) = fresh_db("pid_key");
    let proxy = Proxy::start(pg).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let (mut conn, pid, _) = raw::login_with_key(proxy.addr, &params, pg.password()).await;
    assert_eq!(pid, backend_pid(&mut conn).await);

    // tokio-postgres: a notification's pid is the sender's pg_backend_pid(),
    // for its own and for another session's.
    let (listener, mut rx) =
        crate::harness::proxy::notified_client(&proxy.conn_string(pg, &db)).await;
    listener.batch_execute("LISTEN pids").await.unwrap();
    let own: i32 = listener
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    listener.batch_execute("NOTIFY pids, 'own'").await.unwrap();
    conn.write_all(&raw::query(b"NOTIFY pids, 'other'"))
        .await
        .unwrap();
    raw::read_until(&mut conn, b'Z').await;
    let mut got = HashMap::new();
    while got.len() < 2 {
        let (payload, from) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        got.insert(payload, from);
    }
    assert_eq!(got["own"], own);
    assert_eq!(got["other"], pid);
    let seen: i64 = listener
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        seen, 1,
        "pg_stat_activity finds the pid the client was given"
    );
}

fn run_script(pg: &PgCluster, port: u16, db: &str) -> String {
    crate::python::run_python("backend_pid.py", pg, port, db)
}

#[tokio::test]
async fn psycopg_and_its_pool_use_the_backend_pid_as_directly() {
    let (pg, db) = fresh_db("pid_psycopg");
    let proxy = Proxy::start(pg).await;
    let port = proxy.port();
    let (direct, proxied) = tokio::task::spawn_blocking(move || {
        let pg = PgCluster::shared();
        (run_script(pg, pg.port(), &db), run_script(pg, port, &db))
    })
    .await
    .unwrap();
    assert_eq!(direct, proxied);
    for line in [
        "backend_pid is pg_backend_pid(): True",
        "own notification has own pid: True",
        "other's notification has other's pid: True",
        "pg_stat_activity finds backend_pid: 1",
        "terminate own backend: 57P01",
        "victim after terminate: 57P01",
        "pool: new backend after health check: True",
        "pool: query works: 42",
    ] {
        assert!(proxied.contains(line), "missing {line:?} in:\n{proxied}");
    }
}

#[tokio::test]
async fn forged_cancels_with_the_right_pid_cancel_nothing() {
    let (pg, db) = fresh_db("pid_forged");
    let proxy = Proxy::start(pg).await;
    let direct = crate::harness::proxy::connect(&pg.conn_string(&db)).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let (mut conn, pid, secret) = raw::login_with_key(proxy.addr, &params, pg.password()).await;
    conn.write_all(&raw::query(b"SELECT pg_sleep(60)"))
        .await
        .unwrap();
    let active = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'";
    wait_for(&direct, active, 1).await;
    let addr = proxy.addr;
    let forged = (1..=10_000i32).filter(|i| secret.wrapping_add(*i) != secret);
    futures_util::stream::iter(forged)
        .for_each_concurrent(32, |i| raw::cancel(addr, pid, secret.wrapping_add(i)))
        .await;
    let n: i64 = direct.query_one(active, &[]).await.unwrap().get(0);
    assert_eq!(n, 1, "a forged cancel stopped the query");
    raw::cancel(proxy.addr, pid, secret).await;
    let msgs = raw::read_until(&mut conn, b'Z').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("57014"));

    // Audited: the forwarded cancel names the session it cancelled; the
    // 10,000 forged ones are summarised, not one record each.
    let records = proxy
        .wait_records(|r| {
            sessions(r)
                .iter()
                .any(|s| s["event_type"] == "cancel" && s["user"] == pg.superuser())
        })
        .await;
    let cancels: Vec<_> = sessions(&records)
        .into_iter()
        .filter(|s| s["event_type"] == "cancel")
        .collect();
    let target = sessions(&records)
        .into_iter()
        .find(|s| s["event_type"] == "auth_ok")
        .unwrap()["session_id"]
        .clone();
    let forwarded: Vec<_> = cancels.iter().filter(|c| c["session_id"] != "").collect();
    assert_eq!(forwarded.len(), 1, "{cancels:#?}");
    assert_eq!(forwarded[0]["session_id"], target);
    assert_eq!(forwarded[0]["client_addr"], "127.0.0.1");
    assert!(forwarded[0]["reason"]
        .as_str()
        .unwrap()
        .contains("forwarded"));
    let unmatched = cancels.len() - 1;
    assert!(
        (1..=3).contains(&unmatched),
        "{unmatched} records for 10,000 forged cancels"
    );
    let first = cancels.iter().find(|c| c["session_id"] == "").unwrap();
    assert!(first["reason"].as_str().unwrap().contains("unknown key"));
}

#[tokio::test]
async fn a_fatal_during_a_statement_is_the_disconnect_reason() {
    let (pg, db) = fresh_db("pid_fatal");
    let proxy = Proxy::start(pg).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let mut conn = raw::login(proxy.addr, &params, pg.password()).await;
    conn.write_all(&raw::query(
        b"SELECT pg_terminate_backend(pg_backend_pid())",
    ))
    .await
    .unwrap();
    let msgs = raw::read_until(&mut conn, b'Z').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("57P01"));
    let records = proxy
        .wait_records(|r| sessions(r).iter().any(|s| s["event_type"] == "disconnect"))
        .await;
    let end = sessions(&records)
        .into_iter()
        .find(|s| s["event_type"] == "disconnect")
        .unwrap()
        .clone();
    let reason = end["reason"].as_str().unwrap();
    assert!(
        reason.contains("FATAL 57P01") && reason.contains("administrator command"),
        "{reason}"
    );
    let st = crate::harness::proxy::statements(&records);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["sqlstate"], "57P01");
}

#[tokio::test]
async fn every_connect_ends_in_exactly_one_disconnect_record() {
    let (pg, db) = fresh_db("pid_reconcile");
    let proxy = Proxy::start(pg).await;
    let good = proxy.connect(pg, &db).await;
    good.batch_execute("SELECT 1").await.unwrap();
    drop(good);
    let wrong = format!(
        "host=127.0.0.1 port={} user={} password=wrong dbname={db}",
        proxy.port(),
        pg.superuser()
    );
    for _ in 0..3 {
        assert!(tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
            .await
            .is_err());
    }
    // A client that sends its startup packet and then leaves mid-login.
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    drop(raw::open(proxy.addr, &params).await);
    let records = proxy
        .wait_records(|r| {
            let s = sessions(r);
            let count = |t: &str| s.iter().filter(|x| x["event_type"] == t).count();
            count("connect") == 5 && count("disconnect") == 5
        })
        .await;
    let mut per_session: HashMap<String, Vec<String>> = HashMap::new();
    for s in sessions(&records) {
        per_session
            .entry(s["session_id"].as_str().unwrap().into())
            .or_default()
            .push(s["event_type"].as_str().unwrap().into());
    }
    assert_eq!(per_session.len(), 5);
    let failed: Vec<_> = sessions(&records)
        .into_iter()
        .filter(|s| s["event_type"] == "disconnect")
        .filter(|s| s["reason"].as_str().unwrap().starts_with("login failed"))
        .collect();
    assert_eq!(failed.len(), 3, "{records:#?}");
    let left = sessions(&records)
        .into_iter()
        .filter(|s| s["event_type"] == "disconnect")
        .filter(|s| s["reason"] == "client closed the connection during login")
        .count();
    assert_eq!(left, 1, "{records:#?}");
    for d in failed {
        assert!(d["bytes_in"].as_u64().unwrap() > 0, "{d}");
        assert!(d["bytes_out"].as_u64().unwrap() > 0, "{d}");
        assert!(d["duration_us"].as_u64().unwrap() > 0, "{d}");
        assert!(d["reason"]
            .as_str()
            .unwrap()
            .contains("password authentication failed"));
    }
    for (id, types) in per_session {
        let disconnects = types.iter().filter(|t| *t == "disconnect").count();
        assert_eq!(disconnects, 1, "session {id}: {types:?}");
        assert_eq!(types.last().map(String::as_str), Some("disconnect"));
    }
}

/// Session and statement records carry the server's pid, so a DBA can go
/// from a record to `pg_stat_activity`, the server log or
/// `pg_cancel_backend`; the connect record, written before the server was
/// reached, has 0.
#[tokio::test]
async fn records_carry_the_servers_backend_pid() {
    let (pg, db) = fresh_db("pid_records");
    let proxy = Proxy::start(pg).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let (mut conn, pid, _) = raw::login_with_key(proxy.addr, &params, pg.password()).await;
    assert_eq!(backend_pid(&mut conn).await, pid);
    drop(conn);
    let records = proxy
        .wait_records(|r| sessions(r).iter().any(|s| s["event_type"] == "disconnect"))
        .await;
    let pid = u64::try_from(pid).unwrap();
    let by_type = |t: &str| {
        sessions(&records)
            .into_iter()
            .find(|s| s["event_type"] == t)
            .unwrap_or_else(|| panic!("no {t} record"))["backend_pid"]
            .as_u64()
    };
    assert_eq!(by_type("connect"), Some(0));
    assert_eq!(by_type("auth_ok"), Some(pid));
    assert_eq!(by_type("disconnect"), Some(pid));
    let st = crate::harness::proxy::statements(&records);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["backend_pid"].as_u64(), Some(pid));
}
