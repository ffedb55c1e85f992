//! The web console (`pgtrail console`) over a known workload: PostgreSQL,
//! pgtrail auditing to ClickHouse (18.16, the harness's) with row changes
//! on, three people, a rolled-back transaction, an error, a failed login, a
//! direct write; then the console in-process on a free port.
//!
//! `http`: access control, CSRF, headers, roles, injection and the access
//! records, over raw HTTP. `browser`: a real Chromium (Debian's chromium
//! and chromium-driver, driven by `tests/python/console_browser.py` with
//! selenium) follows the pages as a person would and takes the screenshots
//! in `target/console-screenshots/` (docs/console.md shows them).
//! `queries`: every console query on a modern engine (`ch-modern-check`).

mod browser;
mod client;
mod http;
mod queries;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use pgtrail::config::Config;
use pgtrail::console::users::{self, Role};
use pgtrail::console::{Console, ConsoleConfig};
use tokio::sync::oneshot;

use crate::cdc_stream::SlotGuard;
use crate::changes::{cdc_setup_full, to_clickhouse};
use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db, Proxy};

pub const AUDITOR: (&str, &str) = ("ann", "ann-console-pw");
pub const DBA: (&str, &str) = ("dan", "dan-console-pw");

/// What the workload did, for the tests to check the pages against.
pub struct Fixture {
    pub console_addr: std::net::SocketAddr,
    pub ch_db: String,
    /// The id of Ines's session.
    pub ines_session: String,
    proxy: Option<Proxy>,
    stop: Option<oneshot::Sender<()>>,
    _slot: SlotGuard,
    _dir: tempfile::TempDir,
}

/// Ines's statements, in order, as recorded (the timeline must show them
/// in this order).
pub const INES_STATEMENTS: &[&str] = &[
    "SELECT id, item, qty FROM orders WHERE id = 1",
    "BEGIN",
    "INSERT INTO orders VALUES (10, 'widget', 3, '4111-0000-0000-0010')",
    "UPDATE orders SET qty = 5 WHERE id = 10",
    "COMMIT",
    "BEGIN",
    "DELETE FROM orders WHERE id = 2",
    "ROLLBACK",
    "SELECT * FROM missing_table",
];

/// Creates ines and omar once per cluster: both console tests need them
/// (a concurrent CREATE ROLE may also fail on the catalog's unique index).
/// Names no other test uses: other tests make roles with other passwords.
fn roles(pg: &PgCluster) {
    for (name, pw) in [("ines", "ines-pw"), ("omar", "omar-pw")] {
        let _ = pg.try_psql(
            "postgres",
            &format!("DO $$BEGIN CREATE ROLE {name} LOGIN PASSWORD '{pw}'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$"),
        );
    }
}

fn as_person(proxy: &Proxy, db: &str, user: &str, pw: &str, app: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={pw} dbname={db} application_name={app}",
        proxy.port()
    )
}

async fn workload(pg: &PgCluster, proxy: &Proxy, db: &str) {
    let admin = proxy.connect(pg, db).await;
    admin
        .batch_execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO ines; GRANT SELECT ON customers TO omar; CREATE INDEX orders_item ON orders (item)",
        )
        .await
        .expect("admin statements");
    let ines = connect(&as_person(proxy, db, "ines", "ines-pw", "billing")).await;
    for sql in &INES_STATEMENTS[..INES_STATEMENTS.len() - 1] {
        ines.batch_execute(sql).await.expect(sql);
    }
    assert!(ines.batch_execute(INES_STATEMENTS[8]).await.is_err());
    // Extended protocol: its parameter is recorded (audit.log_parameters).
    let row = ines
        .query_one("SELECT item FROM orders WHERE id = $1", &[&10i32])
        .await
        .expect("parameterised select");
    assert_eq!(row.get::<_, String>(0), "widget");
    drop(ines);
    let omar = connect(&as_person(proxy, db, "omar", "omar-pw", "reports")).await;
    // Through a report service that names its end user (issue 18).
    omar.batch_execute(
        "SELECT count(*) FROM customers /*end_user='zoe%40example.com',request_id='r-7'*/",
    )
    .await
    .expect("omar reads");
    assert!(
        omar.batch_execute("SELECT * FROM orders").await.is_err(),
        "omar may not read orders"
    );
    drop(omar);
    let wrong = format!(
        "host=127.0.0.1 port={} user=ines password=wrong dbname={db}",
        proxy.port()
    );
    assert!(tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
        .await
        .is_err());
    // A write that bypasses pgtrail.
    let direct = connect(&pg.conn_string(db)).await;
    direct
        .batch_execute("UPDATE customers SET name = 'changed directly' WHERE id = 1")
        .await
        .expect("direct write");
}

/// Waits until ClickHouse holds what the workload made.
async fn wait_delivered(ch: &ChServer, ch_db: &str) {
    let checks = [
        format!("SELECT count() >= 15 FROM `{ch_db}`.statements"),
        format!("SELECT count() = 10 FROM `{ch_db}`.statements WHERE `user` = 'ines'"),
        format!("SELECT count() = 2 FROM `{ch_db}`.statements WHERE `user` = 'omar'"),
        format!("SELECT count() = 5 FROM `{ch_db}`.transactions WHERE `user` = 'ines'"),
        format!("SELECT count() >= 3 FROM `{ch_db}`.changes"),
        format!("SELECT count() >= 1 FROM `{ch_db}`.sessions WHERE event_type = 'auth_failed'"),
        format!("SELECT count() >= 2 FROM `{ch_db}`.sessions WHERE event_type = 'disconnect' AND `user` IN ('ines', 'omar')"),
    ];
    for _ in 0..600 {
        if checks.iter().all(|c| ch.try_query(c).as_deref() == Ok("1")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the workload never reached ClickHouse: {:?}",
        checks.iter().map(|c| ch.try_query(c)).collect::<Vec<_>>()
    );
}

fn session_of(ch: &ChServer, ch_db: &str, user: &str) -> String {
    ch.query(&format!(
        "SELECT any(session_id) FROM `{ch_db}`.sessions WHERE `user` = '{user}' AND event_type = 'disconnect' AND statements > 0"
    ))
}

impl Fixture {
    pub async fn start(prefix: &str) -> Fixture {
        let ch = ChServer::shared();
        let ch_db = unique_ch_db(prefix);
        let (pg, db) = fresh_db(prefix);
        let direct = connect(&pg.conn_string(&db)).await;
        direct
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY, item text, qty int, card text);
                 CREATE TABLE customers (id int PRIMARY KEY, name text);
                 INSERT INTO orders VALUES (1, 'apple', 1, '4111-0000-0000-0001'), (2, 'pear', 2, '4111-0000-0000-0002');
                 INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')",
            )
            .await
            .expect("tables");
        roles(pg);
        let slot = format!("{prefix}_{}", std::process::id());
        let guard = SlotGuard(pg, slot.clone());
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("marker.key");
        let mut base = Config::default();
        base.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
        cdc_setup_full(pg, &db, &slot, &key, &mut base, "public.orders").await;
        base.cdc.redact_columns = vec!["public.orders.card".into()];
        let proxy = Proxy::start_with(pg, |cfg| {
            to_clickhouse(cfg, &base, ch, &ch_db);
            cfg.audit.log_parameters = true;
            // No catalog: the INSERT without a column list writes orders.*.
            cfg.labels.insert("pci".into(), vec!["orders.card".into()]);
        })
        .await;
        workload(pg, &proxy, &db).await;
        wait_delivered(ch, &ch_db).await;
        let users_file = dir.path().join("console-users.toml");
        users::upsert(&users_file, AUDITOR.0, Role::Auditor, AUDITOR.1).expect("auditor");
        users::upsert(&users_file, DBA.0, Role::Dba, DBA.1).expect("dba");
        let config = ConsoleConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            clickhouse_url: Some(ch.http_url()),
            database: ch_db.clone(),
            users_file,
            ..ConsoleConfig::default()
        };
        let console = Console::bind(&config, None).await.expect("console starts");
        let console_addr = console.local_addr().expect("console addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(console.run(async move {
            let _ = stopped.await;
        }));
        Fixture {
            console_addr,
            ines_session: session_of(ch, &ch_db, "ines"),
            ch_db,
            proxy: Some(proxy),
            stop: Some(stop),
            _slot: guard,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.console_addr)
    }

    /// Rows of the console's own access table matching `cond`.
    pub fn access_count(&self, cond: &str) -> u64 {
        ChServer::shared()
            .query(&format!(
                "SELECT count() FROM `{}`.console_access WHERE {cond}",
                self.ch_db
            ))
            .parse()
            .unwrap_or(0)
    }

    pub fn screenshots_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
    }

    /// Stops the console and the proxy (its consumer frees the slot).
    pub async fn finish(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(p) = self.proxy.take() {
            p.stop().await;
        }
    }
}
