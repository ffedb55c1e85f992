//! Real clients as subprocesses: psql scripts and pgbench, through pgtrail
//! and directly.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{fresh_db, sessions, statements, Proxy};

fn client_cmd(pg: &PgCluster, bin: &str, port: u16, db: &str) -> Command {
    let mut cmd = Command::new(pg.bin(bin));
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        pg.superuser(),
        "-d",
        db,
    ])
    .env("PGPASSWORD", pg.password())
    .env("PGCONNECT_TIMEOUT", "10")
    .env("PGGSSENCMODE", "disable")
    .env("PGSSLMODE", "prefer")
    .env("PGAPPNAME", "pgtrail-test")
    .env_remove("PGSERVICE")
    .env_remove("PGOPTIONS")
    .env_remove("PSQLRC")
    .env_remove("PAGER");
    cmd
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("spawn client"))
        .await
        .unwrap()
}

const SCRIPT: &str = r#"CREATE TABLE t (id int, name text);
INSERT INTO t SELECT g, 'name ' || g FROM generate_series(1, 5) g;
COPY t FROM STDIN;
6	six
7	seven
\.
\copy t TO '@DIR@/out.csv' WITH (FORMAT csv)
CREATE TABLE t2 (LIKE t);
\copy t2 FROM '@DIR@/out.csv' WITH (FORMAT csv)
SELECT count(*) FROM t2;
SELECT 1 AS one; SELECT 2 AS two;
SELECT 3 AS three \; SELECT 4 AS four;
SELECT max(id) AS maxid FROM t2 \gset
\echo maxid is :maxid
SELECT name FROM t2 WHERE id = :maxid;
SELECT 1/0;
\echo after the error
DO $$ BEGIN RAISE NOTICE 'a notice'; END $$;
BEGIN;
SELECT 1/0;
SELECT 1;
ROLLBACK;
SELECT id, name FROM t2 ORDER BY id DESC LIMIT 2;
\copy (SELECT id FROM t2 WHERE id > 5 ORDER BY id) TO STDOUT
SELECT E'caf\u00e9', NULL::text AS nothing, '' AS empty;
UPDATE t2 SET name = upper(name) WHERE id > 5 RETURNING id, name;
UPDATE t2 SET name = name WHERE false;
INSERT INTO t2 VALUES (1/0, 'never');
DELETE FROM t2 WHERE id = 7;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (p int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
INSERT INTO child VALUES (99);
INSERT INTO child SELECT 98 RETURNING p;
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'row %', NEW.id; RETURN NEW; END $$;
CREATE TRIGGER shout BEFORE INSERT ON t2 FOR EACH ROW EXECUTE FUNCTION shout();
INSERT INTO t2 VALUES (8, 'eight'), (9, 'nine');
MERGE INTO t2 USING (VALUES (9, 'NINE')) AS v(id, name) ON t2.id = v.id WHEN MATCHED THEN UPDATE SET name = v.name;
WITH gone AS (DELETE FROM t2 WHERE id = 8 RETURNING id) SELECT count(*) FROM gone;
INSERT INTO t2 VALUES (10, 'ten') \; UPDATE t2 SET name = 'TEN' WHERE id = 10 \; SELECT count(*) FROM t2;
INSERT INTO t2 VALUES (11, 'x') \; SELECT 1/0 \; INSERT INTO t2 VALUES (12, 'y');
INSERT INTO child VALUES (97) \; SELECT 'deferred' AS last;
BEGIN;
INSERT INTO t2 VALUES (20, 'a');
SELECT count(*) FROM t2;
UPDATE t2 SET name = 'b' WHERE id = 20;
SAVEPOINT s1;
INSERT INTO t2 VALUES (21, 'c');
DELETE FROM t2 WHERE id = 21 RETURNING name;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO t2 VALUES (1/0, 'd');
ROLLBACK TO s1;
INSERT INTO t2 VALUES (22, 'e') RETURNING *;
RELEASE s1;
COMMIT;
BEGIN;
INSERT INTO child VALUES (96);
UPDATE t2 SET name = 'f' WHERE id = 22;
COMMIT;
SELECT id, name FROM t2 ORDER BY id;
"#;

#[tokio::test]
async fn psql_script_same_output_direct_and_through_pgtrail() {
    let (pg, direct_db) = fresh_db("clients_psql_direct");
    let proxied_db = PgCluster::unique_db_name("clients_psql_proxied");
    pg.create_database(&proxied_db);
    let proxy = Proxy::start(pg).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        SCRIPT.replace("@DIR@", &dir.path().display().to_string()),
    )
    .unwrap();
    let psql = |port: u16, db: &str, script: &Path| {
        let mut cmd = client_cmd(pg, "psql", port, db);
        cmd.args(["-X", "-a", "-v", "ON_ERROR_STOP=0", "-f"])
            .arg(script)
            .current_dir(dir.path());
        cmd
    };
    let direct = run(psql(pg.port(), &direct_db, &script)).await;
    let proxied = run(psql(proxy.port(), &proxied_db, &script)).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        direct.status.success(),
        "direct psql: {}",
        text(&direct.stderr)
    );
    assert!(
        text(&direct.stdout).contains("maxid is 7"),
        "{}",
        text(&direct.stdout)
    );
    assert!(
        text(&direct.stderr).contains("division by zero"),
        "{}",
        text(&direct.stderr)
    );
    assert_eq!(
        text(&proxied.stdout),
        text(&direct.stdout),
        "stdout differs"
    );
    assert_eq!(
        text(&proxied.stderr),
        text(&direct.stderr),
        "stderr differs"
    );
    assert_eq!(proxied.status.code(), direct.status.code());
    let records = proxy.stop().await;
    let st = statements(&records);
    assert!(
        st.iter()
            .any(|r| r["statement"] == "SELECT 1/0;" || r["statement"] == "SELECT 1/0"),
        "{st:#?}"
    );
    assert!(st.iter().any(|r| r["sqlstate"] == "22012"));
    // psql's \copy is a COPY ... TO STDOUT / FROM STDIN on the wire.
    let copies = st
        .iter()
        .filter(|r| r["statement"].as_str().unwrap_or("").starts_with("COPY"))
        .count();
    assert_eq!(copies, 4, "{st:#?}");
}

fn failed_transactions(stdout: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions:"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn processed_transactions(stdout: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed:"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .split('/')
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn pgbench_through_pgtrail() {
    let (pg, db) = fresh_db("clients_pgbench");
    let proxy = Proxy::start(pg).await;
    let mut init = client_cmd(pg, "pgbench", proxy.port(), &db);
    init.args(["-i", "-s", "1", "-q"]);
    let out = run(init).await;
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for mode in ["simple", "extended", "prepared"] {
        let mut bench = client_cmd(pg, "pgbench", proxy.port(), &db);
        bench.args(["-n", "-T", "3", "-c", "2", "-M", mode]);
        let out = run(bench).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "pgbench -M {mode}: {stdout}\n{stderr}"
        );
        assert_eq!(failed_transactions(&stdout), Some(0), "-M {mode}: {stdout}");
        let done = processed_transactions(&stdout).unwrap_or(0);
        assert!(done > 10, "-M {mode}: only {done} transactions: {stdout}");
    }
    let records = proxy.stop().await;
    let st = statements(&records);
    let updates = st
        .iter()
        .filter(|r| {
            r["statement"]
                .as_str()
                .unwrap_or("")
                .starts_with("UPDATE pgbench_accounts")
        })
        .count();
    assert!(updates > 30, "{updates} UPDATE records");
    assert!(
        st.iter().all(|r| r["success"] == true),
        "a pgbench statement failed"
    );
    assert!(st.iter().any(|r| r["protocol"] == "extended"));
    let s = sessions(&records);
    assert_eq!(
        s.iter().filter(|r| r["event_type"] == "auth_ok").count(),
        s.iter().filter(|r| r["event_type"] == "disconnect").count()
    );
}
