//! SIGHUP to the real binary in proxy mode: a person added to the users
//! file with `pgtrail user add` can log in after the signal, an open
//! session keeps working, and a broken file is rejected (the log says why)
//! while the people loaded before stay.

use std::time::{Duration, Instant};

use crate::harness::postgres::PgCluster;
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, fresh_db};
use pgtrail::config::{AuthMode, Secret};

/// `pgtrail user add NAME --users FILE --db-role ROLE`, password on stdin.
fn user_add(users: &std::path::Path, name: &str, password: &str, role: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(["user", "add", name, "--db-role", role, "--users"])
        .arg(users)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "pgtrail user add {name}");
}

async fn login(port: u16, user: &str, password: &str, db: &str) -> Option<tokio_postgres::Client> {
    let conn = format!("host=127.0.0.1 port={port} user={user} password={password} dbname={db}");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Some(client)
}

#[tokio::test]
async fn sighup_reloads_the_users_file_of_the_running_binary() {
    let (pg, db) = fresh_db("sighup");
    let role = PgCluster::unique_db_name("svc");
    let role_pw = format!("{role}-secret");
    pg.create_role(&role, &role_pw, false);
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    user_add(&users, "alice", "alice-pw", &role);
    let mut config = config_for(pg, dir.path());
    config.auth.mode = AuthMode::Proxy;
    config.auth.users_file = Some(users.clone());
    config
        .auth
        .role_passwords
        .insert(role.clone(), Secret(role_pw));
    let admin: std::net::SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    config.admin_listen = Some(admin);
    let pgtrail = PgtrailProcess::start(&config, dir.path()).await;

    let alice = login(pgtrail.port, "alice", "alice-pw", &db)
        .await
        .expect("alice logs in");
    assert!(login(pgtrail.port, "carol", "carol-pw", &db)
        .await
        .is_none());
    user_add(&users, "carol", "carol-pw", &role);
    pgtrail.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let carol = loop {
        if let Some(c) = login(pgtrail.port, "carol", "carol-pw", &db).await {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "carol never got in:\n{}",
            pgtrail.log_contents()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    carol.simple_query("SELECT 1").await.unwrap();
    alice
        .simple_query("SELECT 1")
        .await
        .expect("open session survives");

    std::fs::write(&users, "[[user]]\nname = \"dave\"\n").unwrap();
    pgtrail.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgtrail.log_contents().contains("configuration rejected") {
        assert!(
            Instant::now() < deadline,
            "no rejection logged:\n{}",
            pgtrail.log_contents()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pgtrail.log_contents().contains("users.toml"),
        "{}",
        pgtrail.log_contents()
    );
    login(pgtrail.port, "carol", "carol-pw", &db)
        .await
        .expect("the users loaded before stay in force");
    let (_, metrics) = crate::harness::proxy::http_get(admin, "/metrics").await;
    for line in [
        "pgtrail_reloads_total{result=\"applied\"} 1",
        "pgtrail_reloads_total{result=\"rejected\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    // The change to pgtrail's own users is in the trail, without a secret.
    let lifecycle = crate::harness::proxy::read_records(&dir.path().join("audit.jsonl"))
        .into_iter()
        .filter(|r| r["record"] == "lifecycle" && r["event_type"] == "users")
        .collect::<Vec<_>>();
    assert_eq!(lifecycle.len(), 1, "{lifecycle:?}");
    let detail = lifecycle[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("added carol (scram-sha-256, role "),
        "{detail}"
    );
    assert!(!detail.contains("SCRAM-SHA-256$"), "{detail}");
}
