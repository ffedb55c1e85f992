//! `pgtrail cdc setup` against the harness's PostgreSQL (wal_level =
//! logical): a fresh database lacks the publication, the replica identity
//! and the slot; the plan names each with its SQL, `apply` adds them, and
//! the next check finds everything in place with nothing left to run. A
//! role without REPLICATION is told what to grant.

use pgtrail::cdc::setup::{self, Fix};
use pgtrail::config::{Config, Secret};

use crate::cdc_stream::SlotGuard;
use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db};

fn config(pg: &PgCluster, db: &str, slot: &str) -> Config {
    let mut c = Config::default();
    c.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
    c.cdc.user = pg.superuser().to_string();
    c.cdc.password = Secret(pg.password().to_string());
    c.cdc.database = db.to_string();
    c.cdc.slot = slot.to_string();
    c.cdc.publication = "audit_pub".into();
    c.cdc.replica_identity_full = vec!["public.cards".into()];
    c
}

#[tokio::test]
async fn setup_plans_applies_and_then_finds_everything_in_place() {
    let (pg, db) = fresh_db("cdc_setup");
    let admin = connect(&pg.conn_string(&db)).await;
    admin
        .batch_execute("CREATE TABLE cards (id int PRIMARY KEY, pan text)")
        .await
        .unwrap();
    let slot = format!("setup_{}", std::process::id());
    let _guard = SlotGuard(pg, slot.clone());
    let cfg = config(pg, &db, &slot);
    let mut client = setup::connect(&cfg).await.unwrap();

    let plan = setup::check(&mut client, &cfg.cdc).await.unwrap();
    let sql: Vec<&str> = plan.sql().collect();
    assert_eq!(
        sql,
        [
            "CREATE PUBLICATION \"audit_pub\" FOR ALL TABLES".to_string(),
            "ALTER TABLE \"public\".\"cards\" REPLICA IDENTITY FULL".to_string(),
            format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
        ],
        "{}",
        plan.script(&cfg.cdc)
    );
    assert!(!plan.needs_a_person(), "{}", plan.script(&cfg.cdc));

    let after = setup::apply(&mut client, &cfg.cdc, &plan).await.unwrap();
    assert!(after.is_ready(), "{}", after.script(&cfg.cdc));
    assert_eq!(after.sql().count(), 0);
    let identity = admin
        .query_one(
            "SELECT relreplident::text FROM pg_class WHERE oid = 'cards'::regclass",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(identity.get::<_, String>(0), "f");

    // A configured table missing from the server needs a person.
    let mut missing = cfg.clone();
    missing.cdc.replica_identity_full = vec!["public.nope".into()];
    let plan = setup::check(&mut client, &missing.cdc).await.unwrap();
    assert!(plan.needs_a_person());
    assert!(plan.findings.iter().any(|f| matches!(
        &f.fix,
        Fix::Manual(m) if m.contains("\"public\".\"nope\" does not exist")
    )));
}

#[tokio::test]
async fn a_role_without_replication_is_told_what_to_grant() {
    let (pg, db) = fresh_db("cdc_setup_role");
    let admin = connect(&pg.conn_string(&db)).await;
    admin
        .batch_execute("CREATE ROLE cdc_norep LOGIN PASSWORD 'pw'")
        .await
        .ok();
    let mut cfg = config(pg, &db, "unused");
    cfg.cdc.user = "cdc_norep".into();
    cfg.cdc.password = Secret("pw".into());
    let err = match setup::connect(&cfg).await {
        Ok(_) => panic!("a role without REPLICATION was let in"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("ALTER ROLE \"cdc_norep\" REPLICATION"),
        "{err}"
    );
}
