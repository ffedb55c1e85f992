//! The audit events of a known script, exactly.

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::harness::proxy::{fresh_db, sessions, statements, Proxy};
use crate::harness::raw;

fn summary(r: &Value) -> (String, String, u64, bool, String, String) {
    (
        r["statement"].as_str().unwrap().to_string(),
        r["command_tag"].as_str().unwrap().to_string(),
        r["rows"].as_u64().unwrap(),
        r["success"].as_bool().unwrap(),
        r["sqlstate"].as_str().unwrap().to_string(),
        r["txn_status"].as_str().unwrap().to_string(),
    )
}

fn s(
    statement: &str,
    tag: &str,
    rows: u64,
    ok: bool,
    sqlstate: &str,
    txn: &str,
) -> (String, String, u64, bool, String, String) {
    (
        statement.into(),
        tag.into(),
        rows,
        ok,
        sqlstate.into(),
        txn.into(),
    )
}

#[tokio::test]
async fn known_script_gives_exact_records() {
    let (pg, db) = fresh_db("events_script");
    let proxy = Proxy::start(pg).await;
    let client = proxy.connect(pg, &db).await;
    client
        .batch_execute(
            "CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        )
        .await
        .unwrap();
    client
        .simple_query("SELECT * FROM t ORDER BY id")
        .await
        .unwrap();
    client
        .execute("UPDATE t SET v = $1 WHERE id > $2", &[&"z", &0i32])
        .await
        .unwrap();
    let err = client
        .batch_execute("BEGIN; DELETE FROM t WHERE id = 1; SELECT 1/0; SELECT 2")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    client.batch_execute("ROLLBACK").await.unwrap();
    let err = client.batch_execute("SELECT 1; SELEC 2").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42601"));
    drop(client);
    let records = proxy.stop().await;
    let got: Vec<_> = statements(&records).into_iter().map(summary).collect();
    let update = "UPDATE t SET v = $1 WHERE id > $2";
    let want = vec![
        s(
            "CREATE TABLE t (id int primary key, v text)",
            "CREATE TABLE",
            0,
            true,
            "",
            "I",
        ),
        s(
            "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
            "INSERT 0 2",
            2,
            true,
            "",
            "I",
        ),
        s("SELECT * FROM t ORDER BY id", "SELECT 2", 2, true, "", "I"),
        s(update, "UPDATE 2", 2, true, "", "I"),
        s("BEGIN", "BEGIN", 0, true, "", "E"),
        s("DELETE FROM t WHERE id = 1", "DELETE 1", 1, true, "", "E"),
        s("SELECT 1/0", "", 0, false, "22012", "E"),
        s("ROLLBACK", "ROLLBACK", 0, true, "", "I"),
        s("SELEC 2", "", 0, false, "42601", "I"),
    ];
    assert_eq!(got, want);
    // Every record carries the session's identity, and sequence numbers are strictly increasing.
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let st = statements(&records);
    assert!(st.iter().all(|r| r["user"] == pg.superuser()
        && r["database"] == db.as_str()
        && r["client_addr"] == "127.0.0.1"));
    assert!(st
        .iter()
        .all(|r| r["protocol"] == "simple" || r["statement"] == update));
    assert_eq!(st[3]["protocol"], "extended");
    let kinds: Vec<&str> = sessions(&records)
        .iter()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["connect", "auth_ok", "disconnect"]);
    let end = sessions(&records)[2];
    assert_eq!(end["statements"], 9);
    assert!(end["bytes_in"].as_u64().unwrap() > 0 && end["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(end["auth_method"], "scram-sha-256");
}

#[tokio::test]
async fn non_utf8_text_is_recorded_losslessly() {
    let (pg, _) = fresh_db("unused_latin1");
    let db = crate::harness::postgres::PgCluster::unique_db_name("events_latin1");
    pg.create_database_with_encoding(&db, "LATIN1");
    let proxy = Proxy::start(pg).await;
    let params = [
        ("user", pg.superuser()),
        ("database", db.as_str()),
        ("client_encoding", "LATIN1"),
    ];
    let mut conn = raw::login(proxy.addr, &params, pg.password()).await;
    conn.write_all(&raw::query(b"SELECT 'caf\xe9' AS word"))
        .await
        .unwrap();
    let msgs = raw::read_until(&mut conn, b'Z').await;
    let row = msgs.iter().find(|m| m.0 == b'D').expect("a row");
    assert!(
        row.1.ends_with(b"caf\xe9"),
        "the byte passed through unchanged: {:?}",
        row.1
    );
    conn.write_all(&raw::message(b'X', b"")).await.unwrap();
    drop(conn);
    let records = proxy.stop().await;
    let st = statements(&records);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["statement"], "SELECT 'caf\\xE9' AS word");
    assert_eq!(st[0]["statement_escaped"], true);
    let bytes = pgtrail::text::unescape(st[0]["statement"].as_str().unwrap());
    assert_eq!(bytes, b"SELECT 'caf\xe9' AS word");
}

#[tokio::test]
async fn records_carry_the_statement_analysis() {
    let (pg, db) = fresh_db("events_analysis");
    let proxy = Proxy::start(pg).await;
    let client = proxy.connect(pg, &db).await;
    let role = crate::harness::postgres::PgCluster::unique_db_name("r");
    client
        .batch_execute(&format!(
            "CREATE TABLE accounts (id int primary key, owner text); \
             CREATE TABLE audit_copy (id int); \
             INSERT INTO accounts VALUES (1, 'ann'); \
             WITH moved AS (DELETE FROM accounts WHERE id = 1 RETURNING id) INSERT INTO audit_copy SELECT id FROM moved; \
             SELECT a.owner FROM accounts a JOIN audit_copy c ON c.id = a.id FOR UPDATE; \
             CREATE ROLE {role} PASSWORD 'hunter2'; \
             GRANT SELECT ON accounts TO {role}; \
             SELECT pg_catalog.pg_sleep(0)"
        ))
        .await
        .unwrap();
    client
        .execute(
            "UPDATE accounts SET owner = $1 WHERE id = $2",
            &[&"bob", &1i32],
        )
        .await
        .unwrap();
    drop(client);
    let records = proxy.stop().await;
    let st = statements(&records);
    let by_kind = |kind: &str| {
        st.iter()
            .find(|r| r["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {st:#?}"))
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };

    let create = by_kind("create_table");
    assert_eq!(
        (create["class"].as_str(), create["audit_class"].as_str()),
        (Some("ddl"), Some("DDL"))
    );
    let insert = by_kind("insert");
    assert_eq!(strings(&insert["objects_written"]), ["accounts"]);
    assert_eq!(insert["crud"], "C");
    // A data-modifying CTE writes both tables; the CTE name is not a table.
    let cte = st
        .iter()
        .find(|r| r["statement"].as_str().unwrap().starts_with("WITH moved"))
        .unwrap();
    assert_eq!(cte["class"], "write");
    let mut written = strings(&cte["objects_written"]);
    written.sort();
    assert_eq!(written, ["accounts", "audit_copy"]);
    assert!(!strings(&cte["objects_read"]).contains(&"moved".to_string()));
    let select = by_kind("select");
    let mut read = strings(&select["objects_read"]);
    read.sort();
    assert_eq!(read, ["accounts", "audit_copy"]);
    let role_rec = by_kind("create_role");
    assert_eq!(role_rec["audit_class"], "ROLE");
    assert!(
        !role_rec["statement"].as_str().unwrap().contains("hunter2"),
        "password leaked: {role_rec}"
    );
    assert!(!serde_json::to_string(&records).unwrap().contains("hunter2"));
    assert_eq!(by_kind("grant")["class"], "dcl");
    let update = by_kind("update");
    assert_eq!(update["protocol"], "extended");
    assert_eq!(strings(&update["objects_written"]), ["accounts"]);
    assert!(update["fingerprint"].as_u64().is_some());
    assert!(
        st.iter()
            .all(|r| r["parser"] != "" && r["kind"] != "unknown"),
        "{st:#?}"
    );
    let sleep = st
        .iter()
        .find(|r| r["statement"].as_str().unwrap().contains("pg_sleep"))
        .unwrap();
    assert!(
        strings(&sleep["functions"])
            .iter()
            .any(|f| f.contains("pg_sleep")),
        "{sleep}"
    );
}
