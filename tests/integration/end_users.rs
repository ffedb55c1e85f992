//! The person behind the service account (issue 18): end-user claims from
//! real clients (psycopg with sqlcommenter comments, node-postgres with
//! set_config and tokens, tokio-postgres with a startup option), scoped as
//! PostgreSQL scopes the setting (checked against `current_setting` in
//! the same session), verified when signed, and required per role.

use pgtrail::config::{Config, IdentityKey, RoleIdentity, Secret};
use serde_json::Value;

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db, http_get, statements, Proxy};
use crate::python::run_client;

const SECRET: &str = "the shop's pgtrail secret, 32 bytes or more";

fn with_keys(c: &mut Config) {
    c.identity.keys.push(IdentityKey {
        id: Some("shop".into()),
        hmac_secret: Some(Secret(SECRET.into())),
        ..Default::default()
    });
    c.identity.audience = "pgtrail".into();
    c.admin_listen = Some("127.0.0.1:0".parse().expect("addr"));
}

/// The statement record whose text contains `needle` (the only one).
fn record<'a>(records: &'a [Value], needle: &str) -> &'a Value {
    let found: Vec<&Value> = statements(records)
        .into_iter()
        .filter(|r| r["statement"].as_str().is_some_and(|s| s.contains(needle)))
        .collect();
    assert_eq!(found.len(), 1, "one record with {needle:?}: {found:#?}");
    found[0]
}

/// (end_user, source, verified, reason) of a record; JSON leaves defaults out.
fn claim(r: &Value) -> (String, String, bool, String) {
    let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    let source = r["end_user_source"].as_str().unwrap_or("none").to_string();
    let verified = r["end_user_verified"].as_bool().unwrap_or(false);
    (text("end_user"), source, verified, text("end_user_reason"))
}

#[tokio::test]
async fn psycopg_sqlcommenter_comments_plain_signed_forged_and_stale() {
    let (pg, db) = fresh_db("eu_django");
    let proxy = Proxy::start_with(pg, with_keys).await;
    let port = proxy.port();
    let script = format!(
        "{}/tests/python/end_user_django.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::task::spawn_blocking(move || {
        run_client(
            "python3",
            &script,
            PgCluster::shared(),
            port,
            &db,
            &[SECRET],
        )
    })
    .await
    .expect("psycopg run");
    assert!(
        out.contains("alice total 10") && out.contains("done"),
        "{out}"
    );
    let admin = proxy.admin_addr.expect("admin");
    let (_, metrics) = http_get(admin, "/metrics").await;
    let records = proxy.stop().await;

    let insert = record(&records, "INSERT INTO dj_orders");
    assert_eq!(
        claim(insert),
        (
            "alice@example.com".into(),
            "comment".into(),
            false,
            "not signed".into()
        )
    );
    assert_eq!(insert["request_id"], "req-1");
    assert_eq!(insert["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        insert["user"],
        pg.superuser(),
        "the claim never replaces the login"
    );
    let update = record(&records, "UPDATE dj_orders");
    assert_eq!(
        claim(update),
        ("bob".into(), "comment".into(), true, String::new())
    );
    let forged = record(&records, "'mallory'");
    let (who, _, verified, why) = claim(forged);
    assert_eq!((who.as_str(), verified), ("mallory", false));
    assert!(why.contains("signature"), "{why}");
    let stale = record(&records, "'carol'");
    let (who, _, verified, why) = claim(stale);
    assert_eq!((who.as_str(), verified), ("carol", false));
    assert!(!why.is_empty() && why != "not signed", "{why}");
    let plain = statements(&records)
        .into_iter()
        .find(|r| r["statement"] == "SELECT count(*) FROM dj_orders")
        .expect("the statement without a comment");
    assert_eq!(claim(plain).1, "none");
    assert!(
        metrics.contains(r#"pgtrail_end_user_claims_total{state="rejected",reason="signature"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"pgtrail_end_user_claims_total{state="verified",reason=""} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn node_postgres_set_config_per_request_tokens_and_discard_all() {
    let (pg, db) = fresh_db("eu_node");
    let proxy = Proxy::start_with(pg, with_keys).await;
    let port = proxy.port();
    let script = format!("{}/tests/node/end_user.js", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::task::spawn_blocking(move || {
        run_client("node", &script, PgCluster::shared(), port, &db, &[SECRET])
    })
    .await
    .expect("node run");
    assert!(
        out.contains("duplicate 23505") && out.contains("done"),
        "{out}"
    );
    let records = proxy.stop().await;

    // Two inserts share the text: the first (dave's) succeeded.
    let inserts: Vec<&Value> = statements(&records)
        .into_iter()
        .filter(|r| r["statement"] == "INSERT INTO node_orders VALUES ($1, $2)")
        .collect();
    assert_eq!(inserts.len(), 2);
    assert_eq!(
        claim(inserts[0]),
        ("dave".into(), "set".into(), false, "not signed".into())
    );
    assert_eq!(inserts[0]["request_id"], "node-1");
    assert_eq!(claim(inserts[1]).0, "erin");
    assert_eq!(inserts[1]["sqlstate"], "23505");
    // The transaction record names dave too.
    let txn = records
        .iter()
        .find(|r| {
            r["record"] == "transactions" && r["transaction_id"] == inserts[0]["transaction_id"]
        })
        .expect("dave's transaction");
    assert_eq!(txn["end_user"], "dave");
    // set_config(..., true) ended with each transaction.
    let count = record(&records, "SELECT count(*) FROM node_orders");
    assert_eq!(claim(count).1, "none");
    assert_eq!(claim(record(&records, "as_frank")).0, "frank");
    assert_eq!(claim(record(&records, "after_discard")).1, "none");
    let valid = record(&records, "'valid' AS token_case");
    assert_eq!(
        claim(valid),
        ("grace".into(), "set".into(), true, String::new())
    );
    let (who, _, verified, why) = claim(record(&records, "'expired' AS token_case"));
    assert_eq!((who.as_str(), verified), ("heidi", false));
    assert!(why.contains("expired"), "{why}");
    let (who, _, verified, why) = claim(record(&records, "'audience' AS token_case"));
    assert_eq!((who.as_str(), verified), ("ivan", false));
    assert!(why.contains("audience"), "{why}");
}

/// Each step through pgtrail, then `current_setting` in the same session:
/// the probe's record names exactly the end user PostgreSQL has.
#[tokio::test]
async fn scoping_matches_postgresql_from_a_startup_option_on() {
    let (pg, db) = fresh_db("eu_scope");
    let proxy = Proxy::start(pg).await;
    let conn = format!(
        "{} options='-c pgtrail.end_user=carol'",
        proxy.conn_string(pg, &db)
    );
    let client = connect(&conn).await;
    let steps = [
        "SELECT 'start'",
        "SET pgtrail.end_user = 'u1'",
        "BEGIN; SET pgtrail.end_user = 'u2'; ROLLBACK",
        "BEGIN",
        "SET LOCAL pgtrail.end_user = 'u3'",
        "SAVEPOINT a",
        "SET pgtrail.end_user = 'u4'",
        "ROLLBACK TO a",
        "SAVEPOINT b",
        "SET LOCAL pgtrail.end_user = 'u5'",
        "RELEASE b",
        "COMMIT",
        "SET pgtrail.end_user = 'u6'; SELECT 1/0",
        "SELECT set_config('pgtrail.end_user', 'u7', false)",
        "BEGIN; SELECT set_config('pgtrail.end_user', 'u8', true); SET pgtrail.end_user = 'u9'; COMMIT",
        "RESET pgtrail.end_user",
        "SET pgtrail.end_user = 'u10'",
        "DISCARD ALL",
        "START TRANSACTION; SET pgtrail.end_user = 'u11'; SELECT 1/0",
        "ROLLBACK",
        "SET pgtrail.end_user TO DEFAULT",
        "BEGIN; SET pgtrail.end_user = 'u12'; SET LOCAL pgtrail.end_user = 'u13'",
        "COMMIT",
    ];
    let mut want = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let _ = client.simple_query(step).await;
        let probe = format!("SELECT current_setting('pgtrail.end_user', true) AS probe_{i}");
        // In a failed block the probe fails too: nothing to compare.
        let Ok(rows) = client.simple_query(&probe).await else {
            continue;
        };
        let value = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        });
        want.push((i, step.to_string(), value.unwrap_or_default()));
    }
    assert!(want.len() >= steps.len() - 2, "{want:?}");
    drop(client);
    let records = proxy.stop().await;
    let mut saw_set = false;
    for (i, step, value) in want {
        let text = format!("SELECT current_setting('pgtrail.end_user', true) AS probe_{i}");
        let r = statements(&records)
            .into_iter()
            .find(|r| r["statement"] == text.as_str())
            .expect("the probe's record");
        let (who, source, _, _) = claim(r);
        assert_eq!(
            who, value,
            "after {step:?}: pgtrail says {who:?}, PostgreSQL {value:?}"
        );
        let expected_source = match value.as_str() {
            "" => "none",
            "carol" => "startup",
            _ => "set",
        };
        saw_set |= source == "set";
        assert_eq!(source, expected_source, "after {step:?}");
    }
    assert!(saw_set);
}

#[tokio::test]
async fn require_verified_end_user_refuses_and_lets_the_next_valid_statement_through() {
    let (pg, db) = fresh_db("eu_require");
    let role = pg.superuser().to_string();
    let proxy = Proxy::start_with(pg, |c| {
        with_keys(c);
        c.identity.roles.insert(
            role,
            RoleIdentity {
                require_verified_end_user: true,
            },
        );
    })
    .await;
    let client = proxy.connect(pg, &db).await;
    let code = |e: &tokio_postgres::Error| e.code().map(|c| c.code().to_string());

    // Simple and extended protocol: refused with 28000 and a clear message.
    let e = client
        .simple_query("SELECT 'no claim'")
        .await
        .expect_err("refused");
    assert_eq!(code(&e).as_deref(), Some("28000"));
    let message = db_message(&e);
    assert!(
        message.contains("must name a verified end user")
            && message.contains("no end user is claimed"),
        "{message}"
    );
    let e = client
        .query("SELECT $1::int AS extended", &[&1i32])
        .await
        .expect_err("refused");
    assert_eq!(code(&e).as_deref(), Some("28000"));
    // In a block the refusal fails the block, as any error would.
    client
        .simple_query("BEGIN")
        .await
        .expect("BEGIN needs no claim");
    let e = client
        .simple_query("SELECT 'in block'")
        .await
        .expect_err("refused");
    assert_eq!(code(&e).as_deref(), Some("28000"));
    let e = client
        .simple_query("SELECT 'after refusal'")
        .await
        .expect_err("aborted");
    assert_eq!(code(&e).as_deref(), Some("25P02"));
    client.simple_query("ROLLBACK").await.expect("rollback");
    // An unsigned claim is not enough; a forged token neither.
    client
        .simple_query("SET pgtrail.end_user = 'alice'")
        .await
        .expect("set");
    let e = client
        .simple_query("SELECT 'unsigned'")
        .await
        .expect_err("refused");
    assert!(db_message(&e).contains("not signed"), "{e:?}");
    let forged = pgtrail::identity::verify::sign_hs256_token(
        b"not the shop's secret, but long enough to be one",
        &format!(
            r#"{{"sub":"alice","aud":"pgtrail","exp":{}}}"#,
            unix_now() + 600
        ),
    );
    client
        .simple_query(&format!("SET pgtrail.end_user_token = '{forged}'"))
        .await
        .expect("set");
    let e = client
        .simple_query("SELECT 'forged'")
        .await
        .expect_err("refused");
    assert!(db_message(&e).contains("signature"), "{e:?}");
    // A valid token: the next statement goes through, in both protocols.
    let token = pgtrail::identity::verify::sign_hs256_token(
        SECRET.as_bytes(),
        &format!(
            r#"{{"sub":"alice","aud":"pgtrail","exp":{}}}"#,
            unix_now() + 600
        ),
    );
    client
        .simple_query(&format!("SET pgtrail.end_user_token = '{token}'"))
        .await
        .expect("set");
    client
        .simple_query("SELECT 'verified'")
        .await
        .expect("allowed");
    let row = client
        .query_one("SELECT $1::int AS extended_ok", &[&7i32])
        .await
        .expect("allowed");
    assert_eq!(row.get::<_, i32>(0), 7);
    let admin = proxy.admin_addr.expect("admin");
    let (_, metrics) = http_get(admin, "/metrics").await;
    drop(client);
    let records = proxy.stop().await;

    assert!(
        metrics.contains("pgtrail_end_user_refused_statements_total 5"),
        "{metrics}"
    );
    let refused = record(&records, "'no claim'");
    assert_eq!(
        (refused["success"].as_bool(), refused["sqlstate"].as_str()),
        (Some(false), Some("28000"))
    );
    let allowed = record(&records, "'verified'");
    assert_eq!(
        claim(allowed),
        ("alice".into(), "set".into(), true, String::new())
    );
    let extended = record(&records, "extended_ok");
    assert_eq!(extended["success"], true);
    assert_eq!(extended["end_user_verified"], true);
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A row change names the end user of the statement that made it (and,
/// attributed to its transaction only, the transaction's): in JSON Lines
/// and in ClickHouse's `changes` and `row_history`.
#[tokio::test]
async fn row_changes_name_the_end_user_of_their_statement() {
    use crate::changes::{cdc_setup, changes, to_clickhouse, wait_changes};
    use crate::harness::clickhouse::{unique_ch_db, ChServer};
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("end_user_changes");
    let (pg, db) = fresh_db("eu_changes");
    connect(&pg.conn_string(&db))
        .await
        .batch_execute("CREATE TABLE cards (id int PRIMARY KEY, holder text, pan text)")
        .await
        .expect("table");
    let slot = format!("end_users_{}", std::process::id());
    let _guard = crate::cdc_stream::SlotGuard(pg, slot.clone());
    let keydir = tempfile::tempdir().expect("tempdir");
    let key = keydir.path().join("marker.key");
    let mut base = Config::default();
    base.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
    cdc_setup(pg, &db, &slot, &key, &mut base).await;
    let proxy = Proxy::start_with(pg, |cfg| to_clickhouse(cfg, &base, ch, &ch_db)).await;
    let client = proxy.connect(pg, &db).await;
    client
        .batch_execute("SET pgtrail.end_user = 'alice'")
        .await
        .expect("set");
    for sql in [
        "BEGIN",
        "INSERT INTO cards VALUES (1, 'a', '4111')",
        "UPDATE cards SET holder = 'b' WHERE id = 1 /*end_user='bob',request_id='r-9'*/",
        "COMMIT",
    ] {
        client.batch_execute(sql).await.expect("writes");
    }
    let records = wait_changes(&proxy.audit_path, 2).await;
    let c = changes(&records);
    assert_eq!(
        (c[0]["op"].as_str(), c[1]["op"].as_str()),
        (Some("insert"), Some("update"))
    );
    assert_eq!(c[0]["attribution"], "statement");
    assert_eq!(c[0]["end_user"], "alice");
    assert_eq!(c[0]["end_user_source"], "set");
    assert_eq!(c[1]["end_user"], "bob");
    assert_eq!(c[1]["request_id"], "r-9");
    assert_eq!(c[1]["end_user_source"], "comment");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let sql = format!(
        "SELECT op, end_user, toString(end_user_source), request_id FROM `{ch_db}`.row_history ORDER BY lsn"
    );
    loop {
        if let Ok(rows) = ch.try_query(&sql) {
            if rows.lines().count() == 2 {
                assert_eq!(rows, "insert\talice\tset\t\nupdate\tbob\tcomment\tr-9");
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "changes never reached ClickHouse"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(client);
    proxy.stop().await;
}
