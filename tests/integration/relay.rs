//! Traffic through pgtrail behaves as it does directly.

use futures_util::{SinkExt, TryStreamExt};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::harness::proxy::{connect, fresh_db, statements, wait_for, Proxy};
use crate::harness::raw;

#[tokio::test]
async fn simple_and_extended_queries() {
    let (pg, db) = fresh_db("relay_basic");
    let proxy = Proxy::start(pg).await;
    let client = proxy.connect(pg, &db).await;
    client
        .batch_execute("CREATE TABLE t (id int primary key, name text, data bytea)")
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO t VALUES ($1, $2, $3)",
            &[&1i32, &"one", &vec![0u8, 255, 7]],
        )
        .await
        .unwrap();
    let row = client
        .query_one("SELECT id, name, data FROM t WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, &str>(1), "one");
    assert_eq!(row.get::<_, Vec<u8>>(2), vec![0u8, 255, 7]);
    // Text format through the simple protocol.
    let msgs = client
        .simple_query("SELECT id::text, name FROM t")
        .await
        .unwrap();
    let rows: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(1).map(str::to_string)),
            _ => None,
        })
        .collect();
    assert_eq!(rows, vec![Some("one".to_string())]);
    drop(client);
    let records = proxy.stop().await;
    assert!(statements(&records).len() >= 4);
}

const NUMS: [i32; 50] = {
    let mut n = [0; 50];
    let mut i = 0;
    while i < 50 {
        n[i] = i as i32;
        i += 1;
    }
    n
};

#[tokio::test]
async fn pipelined_and_prepared_statements() {
    let (pg, db) = fresh_db("relay_pipeline");
    let proxy = Proxy::start(pg).await;
    let client = proxy.connect(pg, &db).await;
    let stmt = client.prepare("SELECT $1::int + 1").await.unwrap();
    for i in 0..1000i32 {
        let row = client.query_one(&stmt, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
    // tokio-postgres pipelines concurrent queries on one connection.
    let args: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        (0..50).map(|i| [&NUMS[i] as _]).collect();
    let futures: Vec<_> = args.iter().map(|a| client.query_one(&stmt, a)).collect();
    let rows = futures_util::future::try_join_all(futures).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).sum::<i32>(),
        (1..=50).sum::<i32>()
    );
    drop(client);
    let records = proxy.stop().await;
    let executed = statements(&records)
        .into_iter()
        .filter(|r| r["statement"] == "SELECT $1::int + 1")
        .count();
    assert_eq!(executed, 1050);
}

#[tokio::test]
async fn error_in_transaction_then_rollback() {
    let (pg, db) = fresh_db("relay_txn");
    let proxy = Proxy::start(pg).await;
    let client = proxy.connect(pg, &db).await;
    client
        .batch_execute("CREATE TABLE t (id int primary key)")
        .await
        .unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    let err = client
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23505"));
    let err = client.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"));
    client.batch_execute("ROLLBACK").await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    drop(client);
    let records = proxy.stop().await;
    let st = statements(&records);
    let dup = st
        .iter()
        .find(|r| r["sqlstate"] == "23505")
        .expect("failed insert audited");
    assert_eq!(dup["success"], false);
    assert_eq!(dup["txn_status"], "E");
    let rollback = st.iter().find(|r| r["statement"] == "ROLLBACK").unwrap();
    assert_eq!(rollback["txn_status"], "I");
}

#[tokio::test]
async fn copy_in_and_out_100_mb() {
    let (pg, db) = fresh_db("relay_copy");
    let proxy = Proxy::start(pg).await;
    let client = proxy.connect(pg, &db).await;
    client
        .batch_execute("CREATE TABLE big (id int, payload text)")
        .await
        .unwrap();
    let sink = client.copy_in("COPY big FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    let payload = "x".repeat(1000);
    let rows = 100_000;
    let mut chunk = String::new();
    for i in 0..rows {
        chunk.push_str(&format!("{i}\t{payload}\n"));
        if chunk.len() > 256 * 1024 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut chunk)))
                .await
                .unwrap();
        }
    }
    sink.send(bytes::Bytes::from(chunk)).await.unwrap();
    let copied = sink.finish().await.unwrap();
    assert_eq!(copied, rows);
    let stream = client.copy_out("COPY big TO STDOUT").await.unwrap();
    let total: usize = stream
        .map_ok(|b| b.len())
        .try_fold(0, |a, n| async move { Ok(a + n) })
        .await
        .unwrap();
    assert!(total > 100_000_000, "copied out {total} bytes");
    drop(client);
    let records = proxy.stop().await;
    let st = statements(&records);
    let copy_in = st
        .iter()
        .find(|r| r["statement"] == "COPY big FROM STDIN")
        .unwrap();
    assert_eq!(copy_in["rows"], rows);
    let copy_out = st
        .iter()
        .find(|r| r["statement"] == "COPY big TO STDOUT")
        .unwrap_or_else(|| {
            panic!(
                "{:?}",
                st.iter()
                    .map(|r| (
                        r["statement"].clone(),
                        r["command_tag"].clone(),
                        r["sqlstate"].clone()
                    ))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(copy_out["rows"], rows);
}

#[tokio::test]
async fn listen_notify_while_idle() {
    let (pg, db) = fresh_db("relay_notify");
    let proxy = Proxy::start(pg).await;
    let (listener, mut rx) =
        crate::harness::proxy::notified_client(&proxy.conn_string(pg, &db)).await;
    listener.batch_execute("LISTEN ch").await.unwrap();
    let notifier = proxy.connect(pg, &db).await;
    notifier.batch_execute("NOTIFY ch, 'hello'").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(got.map(|(payload, _)| payload).as_deref(), Some("hello"));
}

#[tokio::test]
async fn cancel_reaches_the_right_backend() {
    let (pg, db) = fresh_db("relay_cancel");
    let proxy = Proxy::start(pg).await;
    let direct = connect(&pg.conn_string(&db)).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let (mut conn, pid, secret) = raw::login_with_key(proxy.addr, &params, pg.password()).await;
    conn.write_all(&raw::query(b"SELECT pg_sleep(30)"))
        .await
        .unwrap();
    let active = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'";
    wait_for(&direct, active, 1).await;
    // A wrong secret cancels nothing.
    raw::cancel(proxy.addr, pid, secret.wrapping_add(1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n: i64 = direct.query_one(active, &[]).await.unwrap().get(0);
    assert_eq!(n, 1, "a wrong cancel key stopped the query");
    let started = std::time::Instant::now();
    raw::cancel(proxy.addr, pid, secret).await;
    let msgs = raw::read_until(&mut conn, b'Z').await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cancel took {:?}",
        started.elapsed()
    );
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("57014"));
    wait_for(&direct, active, 0).await;
}
