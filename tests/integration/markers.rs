//! Attribution markers (`cdc.enabled`): every client transaction that
//! wrote through pgtrail carries exactly one signed `pgtrail` message in
//! the decoding stream, naming the transaction its statements' records
//! name; read-only and failed transactions carry none; the client sees
//! the same results as without pgtrail, and no record tells of the marker.

use bytes::Bytes;
use serde_json::Value;

use pgtrail::cdc::marker::{MarkerKey, MarkerSigner};
use pgtrail::cdc::pgoutput::LogicalMessage;
use pgtrail::cdc::Decoder;

use crate::harness::proxy::{connect, fresh_db, statements, Proxy};

/// One decoded transaction: its inserted first-column values (and
/// `(update)` per updated row), and the content of its `pgtrail` messages.
#[derive(Debug, Default)]
struct Decoded {
    inserted: Vec<String>,
    markers: Vec<Bytes>,
}

async fn decoded(direct: &tokio_postgres::Client, slot: &str) -> Vec<Decoded> {
    let rows = direct
        .query(
            "SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, \
             'proto_version', '1', 'publication_names', 'p', 'messages', 'true')",
            &[&slot],
        )
        .await
        .unwrap();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut current = Decoded::default();
    for row in rows {
        let data: Vec<u8> = row.get(0);
        match decoder.decode(Bytes::from(data)).unwrap() {
            LogicalMessage::Begin(_) => current = Decoded::default(),
            LogicalMessage::Insert(i) => {
                let first = format!("{:?}", i.new.0.first());
                current.inserted.push(first);
            }
            LogicalMessage::Update(_) => current.inserted.push("(update)".into()),
            LogicalMessage::Message(m) if m.prefix == "pgtrail" => {
                assert!(m.transactional, "markers are transactional");
                current.markers.push(m.content);
            }
            LogicalMessage::Commit(_) => out.push(std::mem::take(&mut current)),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn each_writing_transaction_carries_one_signed_marker() {
    let (pg, db) = fresh_db("markers");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute(
            "CREATE TABLE t (v text);
             ALTER TABLE t REPLICA IDENTITY FULL;
             CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (p int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
             CREATE PUBLICATION p FOR TABLE t, child",
        )
        .await
        .unwrap();
    // Slots are the cluster's: named after the test's own database.
    let slot = db.clone();
    direct
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await
        .unwrap();
    let proxy = Proxy::start_with(pg, |cfg| cfg.cdc.enabled = true).await;
    let c = proxy.connect(pg, &db).await;

    // Explicit, simple protocol.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO t VALUES ('simple-block')")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // Implicit, extended protocol (Parse/Bind/Execute/Sync).
    let n = c
        .execute("INSERT INTO t VALUES ($1)", &[&"extended-implicit"])
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Explicit, extended protocol COMMIT.
    c.execute("BEGIN", &[]).await.unwrap();
    c.execute("INSERT INTO t VALUES ($1)", &[&"extended-block"])
        .await
        .unwrap();
    c.execute("COMMIT", &[]).await.unwrap();
    // Read-only block, failed block: no marker may be left.
    c.batch_execute("BEGIN; SELECT count(*) FROM t")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    c.batch_execute("BEGIN; INSERT INTO t VALUES ('failed')")
        .await
        .unwrap();
    let err = c.batch_execute("SELECT 1/0").await.unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("22012"));
    c.batch_execute("COMMIT").await.unwrap();
    // An autocommit pipeline: three Executes, each with its Sync, in flight
    // at once; each transaction gets its own marker.
    let insert = c.prepare("INSERT INTO t VALUES ($1)").await.unwrap();
    let (p1, p2, p3) = (
        "piped-1".to_string(),
        "piped-2".to_string(),
        "piped-3".to_string(),
    );
    type Param<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync); 1];
    let (a1, a2, a3): (Param, Param, Param) = ([&p1], [&p2], [&p3]);
    let (r1, r2, r3) = tokio::join!(
        c.execute(&insert, &a1),
        c.execute(&insert, &a2),
        c.execute(&insert, &a3),
    );
    assert_eq!((r1.unwrap(), r2.unwrap(), r3.unwrap()), (1, 1, 1));
    // Autocommit writes as Query strings: wrapped in a block of pgtrail's.
    c.batch_execute("INSERT INTO t VALUES ('simple-autocommit')")
        .await
        .unwrap();
    let rows = c
        .simple_query("UPDATE t SET v = v WHERE v = 'simple-autocommit' RETURNING v")
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "columns, one row, the completion");
    let err = c
        .batch_execute("INSERT INTO t SELECT (1/0)::text")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("22012"));
    c.batch_execute("UPDATE t SET v = v WHERE false")
        .await
        .unwrap();
    // A deferred constraint fails at the commit: the statement's error.
    let err = c
        .batch_execute("INSERT INTO child VALUES (99)")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("23503"));
    // The client's view is untouched: the rows, and an idle session.
    let rows = c.query("SELECT v FROM t ORDER BY v", &[]).await.unwrap();
    let seen: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        seen,
        [
            "extended-block",
            "extended-implicit",
            "piped-1",
            "piped-2",
            "piped-3",
            "simple-autocommit",
            "simple-block"
        ]
    );
    assert!(c.is_closed() || c.batch_execute("BEGIN; ROLLBACK").await.is_ok());
    // COPY FROM STDIN as psql's \copy sends it (a Query string), and one
    // that fails before it starts: neither may hang or show pgtrail's block.
    let psql = |input: &'static str| {
        let mut cmd = std::process::Command::new(pg.bin("psql"));
        cmd.args(["-X", "-h", "127.0.0.1", "-p", &proxy.port().to_string()])
            .args(["-U", pg.superuser(), "-d", &db, "-v", "ON_ERROR_STOP=0"])
            .env("PGPASSWORD", pg.password())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child
    };
    let copy = psql("COPY t FROM STDIN;\ncopied\n\\.\nCOPY nosuch FROM STDIN;\nSELECT 'after';\n");
    let out = tokio::task::spawn_blocking(move || copy.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("COPY 1") && stdout.contains("after"),
        "{stdout}"
    );
    assert!(stderr.contains("\"nosuch\" does not exist"), "{stderr}");
    // COPY FROM STDIN through the extended protocol in autocommit, as
    // tokio-postgres sends it (Bind, Execute, Sync into COPY mode, the
    // data, CopyDone, Sync): its marker goes after the CopyDone.
    {
        use futures_util::SinkExt;
        let sink = c.copy_in("COPY t FROM STDIN").await.unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"copied-extended\n"))
            .await
            .unwrap();
        assert_eq!(sink.finish().await.unwrap(), 1);
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM t WHERE v = 'copied-extended'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    drop(c);
    // The harness runs with synchronous_commit = off: a synchronous commit
    // flushes the WAL that decoding reads up to.
    direct
        .batch_execute("SET synchronous_commit = on; CREATE TABLE flush_wal ()")
        .await
        .unwrap();
    let key_file = proxy.audit_path.with_file_name("marker.key");
    let signer = MarkerSigner::new(MarkerKey::load_or_create(&key_file).unwrap());
    let records = proxy.stop().await;

    let txns = decoded(&direct, &slot).await;
    direct
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .unwrap();
    let writing: Vec<&Decoded> = txns.iter().filter(|t| !t.inserted.is_empty()).collect();
    // Three through the extended protocol or blocks, three pipelined,
    // three wrapped (the INSERT, the UPDATE that changed a row, the COPY),
    // and the COPY through the extended protocol.
    assert_eq!(writing.len(), 10, "{txns:?}");
    assert!(
        txns.iter()
            .filter(|t| t.inserted.is_empty())
            .all(|t| t.markers.is_empty()),
        "a transaction that wrote nothing left a marker: {txns:?}"
    );
    // Each marker verifies and names the transaction of the INSERT's record.
    let txn_of: Vec<(String, String)> = statements(&records)
        .iter()
        .filter(|s| {
            let text = s["statement"].as_str().unwrap_or("");
            (text.starts_with("INSERT")
                || text.starts_with("UPDATE t SET v = v WHERE v")
                || text.starts_with("COPY t "))
                && s["success"] == true
        })
        .map(|s| {
            (
                s["statement"].as_str().unwrap().to_string(),
                s["transaction_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut named = Vec::new();
    for t in &writing {
        assert_eq!(t.markers.len(), 1, "{t:?}");
        let m = signer.verify(&t.markers[0]).expect("marker verifies");
        assert_eq!(&*m.user, pg.superuser());
        assert_eq!(&*m.client_addr, "127.0.0.1");
        named.push(m.transaction_id.to_string());
    }
    let mut want: Vec<String> = txn_of
        .iter()
        .filter(|(text, _)| !text.contains("failed") && !text.contains("child"))
        .map(|(_, id)| id.clone())
        .collect();
    want.sort();
    named.sort();
    assert_eq!(named, want);
    // pgtrail's own statements are in no record.
    assert!(!records
        .iter()
        .any(|r: &Value| r.to_string().contains("pg_logical_emit_message")));
    let failed: Vec<(&Value, &Value)> = statements(&records)
        .iter()
        .filter(|s| s["success"] == false)
        .map(|s| (&s["statement"], &s["sqlstate"]))
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed
        .iter()
        .any(|(t, code)| t.as_str().unwrap().contains("child") && *code == "23503"));
    let statements_count = statements(&records).len();
    assert_eq!(
        statements_count,
        30,
        "{:#?}",
        statements(&records)
            .iter()
            .map(|s| &s["statement"])
            .collect::<Vec<_>>()
    );
}
