//! Column-level reads (issue 16): card numbers read every way a person can
//! read them (directly, through a view and a view on a view, a CTE, a
//! subquery, SQL-level and protocol-level prepared statements, a DO
//! block, a SQL and a PL/pgSQL function, COPY TO, `SELECT *`) are each
//! recorded with `public.customers.card_number` and the `pci` label, and
//! listed by ClickHouse's `sensitive_access` view; `SELECT id, name` is
//! not; dynamic SQL is flagged; with the catalog connection down traffic
//! is unaffected and records say what was not resolved.

use futures_util::{pin_mut, TryStreamExt};
use serde_json::Value;

use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{fresh_db, http_get, statements, Proxy};

const CARD: &str = "public.customers.card_number";

const SCHEMA: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, name text, card_number text);
    INSERT INTO customers VALUES (1, 'alice', '4111111111111111'), (2, 'bob', '5500000000000004');
    CREATE VIEW customer_cards AS SELECT id, card_number FROM customers;
    CREATE VIEW cards_again AS SELECT id, card_number FROM customer_cards;
    CREATE FUNCTION card_sql(int) RETURNS text LANGUAGE sql
        AS 'SELECT card_number FROM customers WHERE id = $1';
    CREATE FUNCTION card_plpgsql(p int) RETURNS text LANGUAGE plpgsql AS $$
        DECLARE v text;
        BEGIN SELECT card_number INTO v FROM customers WHERE id = p; RETURN v; END $$;
    CREATE FUNCTION read_any(t text) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE n bigint;
        BEGIN EXECUTE format('SELECT count(*) FROM %I', t) INTO n; RETURN n; END $$;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC";

/// Every way of reading the card numbers, as the client sends them.
const READS: &[&str] = &[
    "SELECT card_number FROM customers WHERE id = 1",
    "SELECT card_number FROM customer_cards",
    "SELECT * FROM cards_again",
    "WITH c AS (SELECT card_number FROM customers) SELECT * FROM c",
    "SELECT x FROM (SELECT card_number AS x FROM customers) s",
    "EXECUTE get_card(1)",
    "DO $$ DECLARE v text; BEGIN SELECT card_number INTO v FROM customers WHERE id = 1; END $$",
    "SELECT card_sql(1)",
    "SELECT card_plpgsql(2)",
    "SELECT * FROM customers",
];
/// Read through the extended protocol (tokio-postgres prepares it).
const PROTOCOL_PREPARED: &str = "SELECT card_number FROM customers WHERE id = $1";
const COPY_TO: &str = "COPY customers (id, card_number) TO STDOUT";
const NOT_CARDS: &str = "SELECT id, name FROM customers";
const DYNAMIC: &str = "SELECT read_any('customers')";

fn catalog_url(pg: &PgCluster, db: &str) -> String {
    let port = pg.port();
    format!("postgres://pgtrail_catalog:catalog%20pw@127.0.0.1:{port}/{db}")
}

fn record<'a>(records: &'a [Value], text: &str) -> &'a Value {
    statements(records)
        .into_iter()
        .find(|r| r["statement"] == text)
        .unwrap_or_else(|| panic!("no record of {text}"))
}

fn list(r: &Value, key: &str) -> Vec<String> {
    r[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn run_workload(c: &tokio_postgres::Client) {
    c.batch_execute("PREPARE get_card(int) AS SELECT card_number FROM customers WHERE id = $1")
        .await
        .unwrap();
    for sql in READS {
        c.batch_execute(sql).await.unwrap();
    }
    let stmt = c.prepare(PROTOCOL_PREPARED).await.unwrap();
    for id in [1, 2] {
        c.query(&stmt, &[&id]).await.unwrap();
    }
    let copy = c.copy_out(COPY_TO).await.unwrap();
    pin_mut!(copy);
    while copy.try_next().await.unwrap().is_some() {}
    c.batch_execute(NOT_CARDS).await.unwrap();
    c.batch_execute(DYNAMIC).await.unwrap();
}

#[tokio::test]
async fn card_numbers_read_every_way_are_recorded_and_listed() {
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("columns");
    let (pg, db) = fresh_db("columns");
    pg.psql(&db, SCHEMA);
    pg.psql(
        "postgres",
        "DO $$ BEGIN CREATE ROLE pgtrail_catalog LOGIN PASSWORD 'catalog pw'; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let url = catalog_url(pg, &db);
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.audit.clickhouse_url = Some(ch.http_url());
        cfg.audit.clickhouse.database = ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 50;
        cfg.catalog.url.0 = url;
        cfg.labels
            .insert("pci".into(), vec!["public.customers.card_number".into()]);
        cfg.labels
            .insert("pii".into(), vec!["customers.name".into()]);
    })
    .await;
    let c = proxy.connect(pg, &db).await;
    wait_for_catalog(&proxy, &c).await;
    run_workload(&c).await;
    // DDL through pgtrail reloads the catalog (refresh_interval_s is 300).
    c.batch_execute("ALTER TABLE customers ADD COLUMN email text")
        .await
        .unwrap();
    let email = "public.customers.email".to_string();
    let reloaded = probe_until(&proxy, &c, "SELECT * FROM customers", |r| {
        list(r, "columns_read").contains(&email)
    })
    .await;
    assert!(reloaded, "the catalog was not reloaded after ALTER TABLE");
    drop(c);
    let records = proxy.stop().await;

    let mut expected: Vec<&str> = READS.to_vec();
    expected.extend([PROTOCOL_PREPARED, COPY_TO]);
    for text in &expected {
        let r = record(&records, text);
        assert!(
            list(r, "columns_read").contains(&CARD.to_string()),
            "{text}: {r:#}"
        );
        assert!(
            list(r, "labels").contains(&"pci".to_string()),
            "{text}: {r:#}"
        );
        assert!(
            r["catalog_version"].as_u64().unwrap_or(0) > 0,
            "{text}: {r:#}"
        );
    }
    let view = record(&records, READS[1]);
    assert_eq!(list(view, "via"), ["view public.customer_cards"]);
    assert!(list(view, "objects_read").contains(&"public.customers".into()));
    let nested = record(&records, READS[2]);
    assert_eq!(
        list(nested, "via"),
        ["view public.cards_again", "view public.customer_cards"]
    );
    assert_eq!(
        list(record(&records, READS[5]), "via"),
        ["prepared statement get_card"]
    );
    assert_eq!(list(record(&records, READS[6]), "via"), ["DO block"]);
    assert_eq!(
        list(record(&records, READS[7]), "via"),
        ["function public.card_sql"]
    );
    let star = record(&records, READS[9]);
    assert_eq!(
        list(star, "columns_read"),
        ["public.customers.id", "public.customers.name", CARD]
    );
    assert_eq!(list(star, "labels"), ["pci", "pii"]);
    let plain = record(&records, NOT_CARDS);
    assert_eq!(
        list(plain, "columns_read"),
        ["public.customers.id", "public.customers.name"]
    );
    assert_eq!(list(plain, "labels"), ["pii"]);
    let prepare = statements(&records)
        .into_iter()
        .find(|r| r["kind"] == "prepare")
        .unwrap();
    assert!(list(prepare, "columns_read").is_empty(), "{prepare:#}");
    let dynamic = record(&records, DYNAMIC);
    assert_eq!(
        list(dynamic, "columns_unresolved"),
        ["dynamic SQL in function public.read_any"],
        "{dynamic:#}"
    );

    // ClickHouse: `sensitive_access` lists each card read, not the others.
    let listed = ch.query(&format!(
        "SELECT statement FROM {ch_db}.sensitive_access WHERE label = 'pci' AND statement NOT LIKE '%/*%' FORMAT TSV"
    ));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    listed.dedup();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(listed, want);
}

/// Until a statement's record says the catalog resolved it.
async fn wait_for_catalog(proxy: &Proxy, c: &tokio_postgres::Client) {
    let probe = "SELECT id FROM customers WHERE id = 1";
    let loaded = probe_until(proxy, c, probe, |r| {
        r["catalog_version"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(loaded, "the catalog was never loaded");
}

/// Runs `sql` (made distinct by a comment) until its record satisfies
/// `done`, for up to 5 s; whether it did.
async fn probe_until(
    proxy: &Proxy,
    c: &tokio_postgres::Client,
    sql: &str,
    done: impl Fn(&Value) -> bool,
) -> bool {
    for i in 0..50 {
        let probe = format!("{sql} /* {i} */");
        c.batch_execute(&probe).await.unwrap();
        let records = proxy
            .wait_records(|r| statements(r).iter().any(|s| s["statement"] == probe))
            .await;
        if done(record(&records, &probe)) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn without_a_catalog_traffic_is_unaffected_and_records_say_so() {
    let (pg, db) = fresh_db("columns_down");
    pg.psql(&db, SCHEMA);
    // Nothing listens on port 1: every load fails.
    let proxy = Proxy::start_with(pg, |cfg| {
        cfg.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.catalog.url.0 = format!("postgres://pgtrail_catalog:x@127.0.0.1:1/{db}");
        cfg.labels
            .insert("pci".into(), vec!["customers.card_number".into()]);
    })
    .await;
    let c = proxy.connect(pg, &db).await;
    let rows = c
        .query("SELECT * FROM customers ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    c.batch_execute("SELECT card_number FROM customers")
        .await
        .unwrap();
    drop(c);
    let admin = proxy.admin_addr.expect("admin listener");
    let (status, metrics) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("pgtrail_catalog_databases_unresolved 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("pgtrail_catalog_load_failures_total 0"),
        "{metrics}"
    );
    let records = proxy.stop().await;
    let star = record(&records, "SELECT * FROM customers ORDER BY id");
    assert_eq!(list(star, "columns_read"), ["customers.*", "customers.id"]);
    // Without the catalog a `*` may hold anything: labelled as it could.
    assert_eq!(list(star, "labels"), ["pci"]);
    let unresolved = list(star, "columns_unresolved");
    assert!(
        unresolved.iter().any(|u| u.starts_with("catalog"))
            && unresolved.contains(&"customers.*: columns need the catalog".to_string()),
        "{unresolved:?}"
    );
    assert_eq!(star["catalog_version"], Value::Null);
    let direct = record(&records, "SELECT card_number FROM customers");
    assert_eq!(list(direct, "columns_read"), ["customers.card_number"]);
    assert_eq!(list(direct, "labels"), ["pci"]);
}
