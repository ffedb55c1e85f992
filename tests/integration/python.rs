//! asyncpg and psycopg 3 (installed by scripts/install-deps.sh) through
//! pgtrail: the same transcript as directly, and every statement audited.

use std::process::Command;

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{statements, Proxy};

/// Runs `tests/python/{script}` against a server (direct or pgtrail) and
/// returns its transcript; fails the test when the script fails.
pub(crate) fn run_python(script: &str, pg: &PgCluster, port: u16, db: &str) -> String {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    run_client("python3", &path, pg, port, db, &[])
}

/// Runs `program script HOST PORT USER PASSWORD DBNAME extra...` (a client
/// of scripts/install-deps.sh's: python3, node) and returns its transcript;
/// fails the test when it fails.
pub(crate) fn run_client(
    program: &str,
    script: &str,
    pg: &PgCluster,
    port: u16,
    db: &str,
    extra: &[&str],
) -> String {
    let out = Command::new(program)
        .arg(script)
        .args([
            "127.0.0.1",
            &port.to_string(),
            pg.superuser(),
            pg.password(),
            db,
        ])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run {program} {script} (scripts/install-deps.sh): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn run_drivers(pg: &PgCluster, port: u16, db: &str) -> String {
    run_python("drivers.py", pg, port, db)
}

#[tokio::test]
async fn asyncpg_and_psycopg_behave_as_directly() {
    let pg = PgCluster::shared();
    let direct_db = PgCluster::unique_db_name("py_direct");
    let proxied_db = PgCluster::unique_db_name("py_proxied");
    pg.create_database(&direct_db);
    pg.create_database(&proxied_db);
    let proxy = Proxy::start(pg).await;
    let port = proxy.port();
    let (direct, proxied) = tokio::task::spawn_blocking(move || {
        let pg = PgCluster::shared();
        (
            run_drivers(pg, pg.port(), &direct_db),
            run_drivers(pg, port, &proxied_db),
        )
    })
    .await
    .expect("driver runs");
    assert_eq!(direct, proxied);
    assert!(
        direct.contains("asyncpg cursor rows 200") && direct.contains("psycopg count 150"),
        "{direct}"
    );
    let records = proxy.stop().await;
    let st = statements(&records);
    let inserts = st
        .iter()
        .filter(|r| r["kind"] == "insert" && r["success"] == true)
        .count();
    assert!(
        inserts >= 300,
        "executemany and pipeline inserts audited one by one: {inserts}"
    );
    assert!(st
        .iter()
        .any(|r| r["kind"] == "copy_from" && r["rows"] == 50));
    assert!(st.iter().any(|r| r["sqlstate"] == "23505"));
    assert!(st.iter().any(|r| r["sqlstate"] == "22012"));
    assert!(st.iter().all(|r| r["kind"] != "unknown"), "{st:#?}");
}
