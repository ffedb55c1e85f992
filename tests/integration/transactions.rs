//! Transactions through pgtrail: every statement names its transaction,
//! each transaction gets one record with its outcome, and the
//! `rolled_back_statements` view lists exactly the work that was undone,
//! in JSON Lines and in ClickHouse (18.16) alike.

use serde_json::Value;
use std::collections::BTreeMap;

use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::proxy::{fresh_db, statements, Proxy};

#[tokio::test]
async fn outcomes_and_undone_statements_are_recorded() {
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("txn");
    let (pg, db) = fresh_db("txn");
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 50;
    })
    .await;
    let c = proxy.connect(pg, &db).await;
    c.batch_execute(
        "CREATE TABLE parent (id int primary key);
         CREATE TABLE child (id int, p int REFERENCES parent DEFERRABLE INITIALLY DEFERRED)",
    )
    .await
    .unwrap();
    // Committed, with a savepoint rolled back to in the middle.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO parent VALUES (1)")
        .await
        .unwrap();
    c.batch_execute("SAVEPOINT s1").await.unwrap();
    c.batch_execute("INSERT INTO parent VALUES (2)")
        .await
        .unwrap();
    c.batch_execute("ROLLBACK TO SAVEPOINT s1").await.unwrap();
    c.batch_execute("INSERT INTO parent VALUES (3)")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // Rolled back.
    c.batch_execute("BEGIN; INSERT INTO parent VALUES (4)")
        .await
        .unwrap();
    c.batch_execute("ROLLBACK").await.unwrap();
    // Failed at COMMIT: the deferred foreign key.
    c.batch_execute("BEGIN; INSERT INTO child VALUES (1, 99)")
        .await
        .unwrap();
    let err = c.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("23503"));
    drop(c);
    let records = proxy.stop().await;

    let txns: Vec<&Value> = records
        .iter()
        .filter(|r| r["record"] == "transactions")
        .collect();
    let outcomes: Vec<(&str, u64)> = txns
        .iter()
        .map(|t| {
            (
                t["outcome"].as_str().unwrap(),
                t["statements"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("committed", 2),
            ("committed", 7),
            ("rolled_back", 3),
            ("failed", 3)
        ],
        "{txns:#?}"
    );
    // Every statement names a transaction that has a record.
    let by_id: BTreeMap<&str, &Value> = txns
        .iter()
        .map(|t| (t["transaction_id"].as_str().unwrap(), *t))
        .collect();
    let stmts = statements(&records);
    for s in &stmts {
        assert!(
            by_id.contains_key(s["transaction_id"].as_str().unwrap()),
            "{s}"
        );
    }
    let seq_of = |text: &str| {
        stmts
            .iter()
            .find(|s| s["statement"] == text)
            .and_then(|s| s["seq"].as_u64())
            .unwrap_or_else(|| panic!("no record of {text}"))
    };
    let committed = txns[1];
    assert_eq!(committed["first_seq"].as_u64(), Some(seq_of("BEGIN")));
    assert_eq!(committed["last_seq"].as_u64(), Some(seq_of("COMMIT")));
    // The INSERT of 2 was undone by the ROLLBACK TO; 1 and 3 stayed.
    let undone = seq_of("INSERT INTO parent VALUES (2)");
    assert_eq!(committed["undone_from_seq"], serde_json::json!([undone]));
    assert_eq!(committed["undone_to_seq"], serde_json::json!([undone]));
    assert_eq!(committed["rows_changed"].as_u64(), Some(2));
    assert_eq!(txns[2]["rows_changed"].as_u64(), Some(0));

    // The same in ClickHouse, and the view lists what was undone.
    let view = format!(
        "SELECT statement, undone_by FROM `{ch_db}`.rolled_back_statements ORDER BY seq FORMAT TSV"
    );
    let want = "INSERT INTO parent VALUES (2)\trollback_to_savepoint\n\
                INSERT INTO parent VALUES (4)\trolled_back\n\
                INSERT INTO child VALUES (1, 99)\tfailed";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = ch.query(&view);
        if got == want {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "view: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        ch.query(&format!(
            "SELECT outcome, count() FROM `{ch_db}`.transaction_log GROUP BY outcome ORDER BY outcome FORMAT TSV"
        )),
        "committed\t2\nfailed\t1\nrolled_back\t1"
    );
}
