//! `changes` records from the decoding consumer (`cdc.enabled`), against
//! the harness's PostgreSQL and ClickHouse (18.16): rows written directly
//! to PostgreSQL (not through pgtrail) are recorded with `attribution =
//! none` and their key, old and new values (REPLICA IDENTITY FULL old
//! rows, NULL apart from absent, redaction); a transaction carrying a fake
//! `pgtrail` message is flagged `forged_marker`; one carrying a marker
//! signed with the shared key is attributed to it; and a restart of
//! pgtrail in the middle of a stream records every change exactly once.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use pgtrail::cdc::marker::{Boundary, Marker, MarkerKey, MarkerSigner};
use pgtrail::cdc::setup;
use pgtrail::config::{Config, Secret};

use crate::cdc_stream::SlotGuard;
use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db, read_records, Proxy};

/// `[cdc]` for `db`, and the publication, replica identity and slot made
/// by the library's `cdc setup --apply`.
pub(crate) async fn cdc_setup(pg: &PgCluster, db: &str, slot: &str, key: &Path, cfg: &mut Config) {
    cdc_setup_full(pg, db, slot, key, cfg, "public.cards").await;
    cfg.cdc.redact_columns = vec!["public.cards.pan".into()];
}

/// As `cdc_setup`, with `full` (`schema.table`) REPLICA IDENTITY FULL.
pub(crate) async fn cdc_setup_full(
    pg: &PgCluster,
    db: &str,
    slot: &str,
    key: &Path,
    cfg: &mut Config,
    full: &str,
) {
    cfg.cdc.enabled = true;
    cfg.cdc.consume = true;
    cfg.cdc.user = pg.superuser().to_string();
    cfg.cdc.password = Secret(pg.password().to_string());
    cfg.cdc.database = db.to_string();
    cfg.cdc.slot = slot.to_string();
    cfg.cdc.publication = "audit_pub".into();
    cfg.cdc.replica_identity_full = vec![full.into()];
    cfg.cdc.marker_key_file = Some(key.to_path_buf());
    let mut client = setup::connect(cfg).await.unwrap();
    let plan = setup::check(&mut client, &cfg.cdc).await.unwrap();
    let after = setup::apply(&mut client, &cfg.cdc, &plan).await.unwrap();
    assert!(after.is_ready(), "{}", after.script(&cfg.cdc));
}

/// `base`'s `[cdc]`, auditing to `ch_db` on `ch` through a spool beside the
/// audit file.
pub(crate) fn to_clickhouse(cfg: &mut Config, base: &Config, ch: &ChServer, ch_db: &str) {
    cfg.cdc = base.cdc.clone();
    cfg.audit.clickhouse_url = Some(ch.http_url());
    cfg.audit.clickhouse.database = ch_db.to_string();
    cfg.audit.clickhouse.batch_ms = 50;
    cfg.audit.spool_dir = cfg.audit.file.as_ref().map(|f| f.with_file_name("spool"));
}

pub(crate) fn changes(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["record"] == "changes")
        .collect()
}

pub(crate) async fn wait_changes(audit: &Path, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let records = read_records(audit);
        if changes(&records).len() >= n {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "fewer than {n} changes: {:#?}",
        changes(&read_records(audit))
    );
}

fn marker() -> Marker {
    Marker {
        transaction_id: uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0042),
        boundary: Boundary::End(None),
        session_id: "0192aaaa-0000-7000-8000-000000000001".into(),
        user: "alice".into(),
        db_role: "app".into(),
        client_addr: "10.0.0.7".into(),
        application_name: "billing".into(),
    }
}

#[tokio::test]
async fn direct_writes_forged_and_genuine_markers_are_recorded() {
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("changes");
    let (pg, db) = fresh_db("changes");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute(
            "CREATE TABLE cards (id int PRIMARY KEY, holder text, pan text, note text);
             CREATE TABLE plain (id int PRIMARY KEY, v text)",
        )
        .await
        .unwrap();
    let slot = format!("changes_{}", std::process::id());
    let _guard = SlotGuard(pg, slot.clone());
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("marker.key");
    let signer = MarkerSigner::new(MarkerKey::load_or_create(&key).unwrap());
    let mut base = Config::default();
    base.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
    cdc_setup(pg, &db, &slot, &key, &mut base).await;
    let proxy = Proxy::start_with(pg, |cfg| to_clickhouse(cfg, &base, ch, &ch_db)).await;

    // Incompressible past the TOAST threshold: stored out of line, so an
    // update that leaves it alone does not send it.
    let big = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 1000) i)";
    // One transaction per string: statements of one Query string outside
    // an explicit block share its implicit transaction.
    let genuine = signer.statement_sql(&marker());
    for sql in [
        format!(
            "BEGIN;
             INSERT INTO cards VALUES (1, 'alice', '4111', NULL), (2, 'bob', '4222', {big});
             INSERT INTO plain VALUES (1, 'a');
             COMMIT"
        ),
        "BEGIN;
         UPDATE cards SET holder = 'alice2' WHERE id = 1;
         UPDATE cards SET holder = 'bob2' WHERE id = 2;
         UPDATE plain SET v = 'b' WHERE id = 1;
         COMMIT"
            .to_string(),
        "DELETE FROM cards WHERE id = 1".to_string(),
        "DELETE FROM plain WHERE id = 1".to_string(),
        "BEGIN;
         INSERT INTO plain VALUES (2, 'forged');
         SELECT pg_logical_emit_message(true, 'pgtrail', 'alice did it');
         COMMIT"
            .to_string(),
        format!("BEGIN; INSERT INTO plain VALUES (3, 'genuine'); {genuine}; COMMIT"),
        "SELECT pg_logical_emit_message(false, 'pgtrail', 'outside')".to_string(),
        "TRUNCATE plain".to_string(),
    ] {
        direct.batch_execute(&sql).await.unwrap();
    }
    let records = wait_changes(&proxy.audit_path, 11).await;
    let c = changes(&records);
    let ops: Vec<(&str, &str)> = c
        .iter()
        .map(|r| (r["table"].as_str().unwrap(), r["op"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("cards", "insert"),
            ("cards", "insert"),
            ("plain", "insert"),
            ("cards", "update"),
            ("cards", "update"),
            ("plain", "update"),
            ("cards", "delete"),
            ("plain", "delete"),
            ("plain", "insert"),
            ("plain", "insert"),
            ("plain", "truncate"),
        ]
    );
    // Numbered like every record, timed at the commit.
    let seqs: Vec<u64> = c.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(c.iter().all(|r| r["event_time"] == r["commit_time"]));
    assert!(c.iter().all(|r| r["database"] == db.as_str()));

    // Insert: NULL is null, the redacted pan a keyed hash; key is the
    // whole row under REPLICA IDENTITY FULL.
    let pan = c[0]["new"]["pan"].as_str().unwrap();
    assert!(pan.starts_with("hmac:") && !pan.contains("4111"), "{pan}");
    assert_eq!(c[0]["new"]["note"], Value::Null);
    assert_eq!(c[0]["new"]["holder"], "alice");
    assert_eq!(c[2]["key"], json!({"id": "1"}));
    assert_eq!(c[2]["new"], json!({"id": "1", "v": "a"}));
    // Long values are cut at max_value_bytes and named.
    assert_eq!(c[1]["new"]["note"].as_str().unwrap().len(), 8192);
    assert_eq!(c[1]["truncated_columns"], json!(["note"]));

    // Update with FULL identity: the whole old row, what changed; the
    // unchanged TOASTed note is absent from new, not null.
    assert_eq!(c[3]["old_complete"], true);
    assert_eq!(c[3]["old"]["holder"], "alice");
    assert_eq!(c[3]["old"]["note"], Value::Null);
    assert_eq!(c[3]["old"]["pan"], c[3]["new"]["pan"]);
    assert_eq!(c[3]["changed_columns"], json!(["holder"]));
    assert!(c[4]["new"].get("note").is_none(), "{}", c[4]);
    assert_eq!(c[4]["new"]["holder"], "bob2");
    // Default identity: no old row unless the key changed.
    assert_eq!(c[5]["old"], json!({}));
    assert_eq!(c[5]["old_complete"], false);
    assert_eq!(c[5]["key"], json!({"id": "1"}));
    // Deletes: the old row (complete under FULL) and the key.
    assert_eq!(c[6]["old"]["holder"], "alice2");
    assert_eq!(c[6]["old_complete"], true);
    assert_eq!(c[7]["old"], json!({"id": "1"}));
    assert_eq!(c[7]["key"], json!({"id": "1"}));
    assert_eq!(c[10]["key"], json!({}));

    // Attribution: none for direct writes, forged flagged, the genuine
    // marker's fields.
    for (i, r) in c.iter().enumerate() {
        let want = if i == 9 { "transaction" } else { "none" };
        assert_eq!(r["attribution"], want, "{r}");
        assert_eq!(r["forged_marker"], i == 8, "{r}");
        assert_eq!(r["statement_seq"], Value::Null);
    }
    assert_eq!(c[8]["user"], "");
    assert_eq!(c[8]["transaction_id"], Value::Null);
    let m = marker();
    assert_eq!(c[9]["transaction_id"], m.transaction_id.to_string());
    assert_eq!(c[9]["user"], "alice");
    assert_eq!(c[9]["db_role"], "app");
    assert_eq!(c[9]["session_id"], &*m.session_id);
    assert_eq!(c[9]["client_addr"], "10.0.0.7");
    assert_eq!(c[9]["application_name"], "billing");

    // The same in ClickHouse, and in its views.
    let q = |sql: &str| ch.query(&sql.replace("DB", &ch_db));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ch
        .try_query(&format!("SELECT count() FROM `{ch_db}`.changes"))
        .as_deref()
        != Ok("11")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "changes never reached ClickHouse"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        q("SELECT op, attribution, forged_marker, `user` FROM DB.changes ORDER BY seq"),
        "insert\tnone\t0\t\ninsert\tnone\t0\t\ninsert\tnone\t0\t\n\
         update\tnone\t0\t\nupdate\tnone\t0\t\nupdate\tnone\t0\t\n\
         delete\tnone\t0\t\ndelete\tnone\t0\t\ninsert\tnone\t1\t\n\
         insert\ttransaction\t0\talice\ntruncate\tnone\t0\t"
    );
    // NULL apart from absent: note is a null element of old, and absent
    // from new of bob's update.
    assert_eq!(
        q("SELECT `old.value`[indexOf(`old.name`, 'note')] IS NULL, has(`new.name`, 'note'), changed_columns \
           FROM DB.changes WHERE `table` = 'cards' AND op = 'update' ORDER BY seq"),
        "1\t1\t['holder']\n0\t0\t['holder']"
    );
    assert_eq!(q("SELECT count() FROM DB.changes_outside_pgtrail"), "10");
    assert_eq!(
        q("SELECT row_key, op, `user` FROM DB.row_history WHERE `table` = 'plain' AND op != 'truncate' ORDER BY commit_lsn, change_index"),
        "id=1\tinsert\t\nid=1\tupdate\t\nid=1\tdelete\t\nid=2\tinsert\t\nid=3\tinsert\talice"
    );
    let metrics = pgtrail::admin::metrics_text(&proxy.ctx).unwrap();
    assert!(
        metrics.contains("pgtrail_cdc_forged_markers_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgtrail_cdc_unattributed_changes_total 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgtrail_cdc_changes_total{op=\"insert\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgtrail_cdc_untransactional_messages_total 1"),
        "{metrics}"
    );
    proxy.stop().await;
}

/// Rows of `t` inserted directly, 10 per transaction, while pgtrail is
/// stopped and started again in the middle: each id once in `changes`.
#[tokio::test]
async fn a_restart_mid_stream_records_each_change_once() {
    let (pg, db) = fresh_db("changes_restart");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute("CREATE TABLE cards (id int PRIMARY KEY, holder text, pan text, note text)")
        .await
        .unwrap();
    let slot = format!("changes_restart_{}", std::process::id());
    let _guard = SlotGuard(pg, slot.clone());
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("marker.key");
    let audit = dir.path().join("audit.jsonl");
    let mut base = Config::default();
    base.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
    cdc_setup(pg, &db, &slot, &key, &mut base).await;
    let start = || {
        let cdc = base.cdc.clone();
        let audit = audit.clone();
        Proxy::start_with(pg, move |cfg| {
            cfg.cdc = cdc;
            cfg.audit.file = Some(audit);
        })
    };
    let writes = async {
        for t in 0..40 {
            let values: Vec<String> = (0..10).map(|i| format!("({}, 'h')", t * 10 + i)).collect();
            direct
                .batch_execute(&format!("INSERT INTO cards VALUES {}", values.join(", ")))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let restarts = async {
        for _ in 0..3 {
            let proxy = start().await;
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            proxy.stop().await;
        }
    };
    tokio::join!(writes, restarts);
    let proxy = start().await;
    let records = wait_changes(&audit, 400).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    proxy.stop().await;
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for r in changes(&read_records(&audit)) {
        let id: i64 = r["key"]["id"].as_str().unwrap().parse().unwrap();
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 400, "{} records", records.len());
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}
