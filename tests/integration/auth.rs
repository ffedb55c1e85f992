//! Authentication through pgtrail: proxy mode (people mapped to upstream
//! roles) and passthrough.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgtrail::auth::users::{self, Method, UserEntry};
use pgtrail::config::{AuthMode, Secret};

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db, sessions, Proxy};

/// A service role in the shared cluster, with its password.
fn service_role(pg: &PgCluster) -> (String, String) {
    let role = PgCluster::unique_db_name("svc");
    let password = format!("{role}-secret");
    pg.create_role(&role, &password, false);
    (role, password)
}

fn entry(name: &str, password: &str, method: Method, role: &str, databases: &[&str]) -> UserEntry {
    let secret = match method {
        Method::Md5 => postgres_protocol::password::md5(password.as_bytes(), name),
        _ => postgres_protocol::password::scram_sha_256(password.as_bytes()),
    };
    UserEntry {
        name: name.into(),
        secret,
        method,
        db_role: Some(role.into()),
        databases: databases.iter().map(|d| d.to_string()).collect(),
    }
}

/// pgtrail in proxy mode with `entries` in its users file.
async fn proxy_mode(
    pg: &PgCluster,
    role: &str,
    role_pw: &str,
    entries: Vec<UserEntry>,
) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("users.toml");
    for e in entries {
        users::upsert(&path, e).unwrap();
    }
    let (role, role_pw) = (role.to_string(), role_pw.to_string());
    let proxy = Proxy::start_with(pg, move |c| {
        c.auth.mode = AuthMode::Proxy;
        c.auth.users_file = Some(path);
        c.auth.role_passwords.insert(role, Secret(role_pw));
    })
    .await;
    (proxy, dir)
}

fn conn_as(proxy: &Proxy, user: &str, password: &str, db: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
        proxy.port()
    )
}

async fn try_connect(conn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[tokio::test]
async fn proxy_mode_maps_person_to_service_role() {
    let (pg, db) = fresh_db("auth_map");
    let (role, role_pw) = service_role(pg);
    let (proxy, _dir) = proxy_mode(
        pg,
        &role,
        &role_pw,
        vec![entry("alice", "alice-pw", Method::ScramSha256, &role, &[])],
    )
    .await;
    let client = connect(&conn_as(&proxy, "alice", "alice-pw", &db)).await;
    let who: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, role);
    drop(client);
    let records = proxy.stop().await;
    let ok = sessions(&records)
        .into_iter()
        .find(|r| r["event_type"] == "auth_ok")
        .expect("auth_ok record");
    assert_eq!(ok["user"], "alice");
    assert_eq!(ok["db_role"], role.as_str());
    assert_eq!(ok["auth_method"], "scram-sha-256");
    assert!(records
        .iter()
        .filter(|r| r["record"] == "statements")
        .all(|r| r["user"] == "alice" && r["db_role"] == role.as_str()));
}

#[tokio::test]
async fn proxy_mode_failures_look_identical() {
    let (pg, db) = fresh_db("auth_fail");
    let (role, role_pw) = service_role(pg);
    let entries = vec![
        entry("alice", "alice-pw", Method::ScramSha256, &role, &[]),
        entry(
            "bob",
            "bob-pw",
            Method::ScramSha256,
            &role,
            &["some_other_db"],
        ),
    ];
    let (proxy, _dir) = proxy_mode(pg, &role, &role_pw, entries).await;
    let cases = [
        ("alice", "wrong-pw", "wrong password"),
        ("mallory", "any-pw", "unknown user"),
        ("bob", "bob-pw", "not allowed"),
    ];
    for (user, pw, _) in cases {
        let err = try_connect(&conn_as(&proxy, user, pw, &db))
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} logged in"));
        let db_err = err
            .as_db_error()
            .unwrap_or_else(|| panic!("{user}: not a server error: {err}"));
        assert_eq!(db_err.code().code(), "28P01", "{user}");
        assert_eq!(
            db_err.message(),
            format!("password authentication failed for user \"{user}\"")
        );
    }
    // A good login still works afterwards.
    let client = connect(&conn_as(&proxy, "alice", "alice-pw", &db)).await;
    client.simple_query("SELECT 1").await.unwrap();
    drop(client);
    let records = proxy.stop().await;
    let failed: Vec<_> = sessions(&records)
        .into_iter()
        .filter(|r| r["event_type"] == "auth_failed")
        .collect();
    for (user, _, reason) in cases {
        let r = failed
            .iter()
            .find(|r| r["user"] == user)
            .unwrap_or_else(|| panic!("no auth_failed for {user}: {failed:#?}"));
        let got = r["reason"].as_str().unwrap();
        assert!(
            got.contains(reason),
            "{user}: reason {got:?} lacks {reason:?}"
        );
        // The method of the exchange (the mock's for an unknown user).
        assert_eq!(r["auth_method"], "scram-sha-256", "{user}: {r}");
    }
    let reasons: std::collections::HashSet<&str> = failed
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
}

#[tokio::test]
async fn proxy_mode_md5_and_cleartext_entries() {
    let (pg, db) = fresh_db("auth_md5");
    let (role, role_pw) = service_role(pg);
    let entries = vec![
        entry("carol", "carol-pw", Method::Md5, &role, &[]),
        entry("dave", "dave-pw", Method::Password, &role, &[]),
    ];
    let (proxy, _dir) = proxy_mode(pg, &role, &role_pw, entries).await;
    for (user, pw) in [("carol", "carol-pw"), ("dave", "dave-pw")] {
        let client = connect(&conn_as(&proxy, user, pw, &db)).await;
        let who: String = client
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(who, role);
        let err = try_connect(&conn_as(&proxy, user, "nope", &db))
            .await
            .expect_err("wrong password refused");
        assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{user}: {err}");
    }
    let records = proxy.stop().await;
    let ok = sessions(&records);
    let method = |user: &str| {
        ok.iter()
            .find(|r| r["event_type"] == "auth_ok" && r["user"] == user)
            .map(|r| r["auth_method"].as_str().unwrap().to_string())
    };
    assert_eq!(method("carol").as_deref(), Some("md5"));
    assert_eq!(method("dave").as_deref(), Some("password"));
}

fn psql_select_user(
    psql: &Path,
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> std::process::Output {
    Command::new(psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "select current_user",
            "-h",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string(), "-U", user, "-d", db])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .output()
        .expect("run psql")
}

#[tokio::test]
async fn proxy_mode_psql_scram() {
    let (pg, db) = fresh_db("auth_psql");
    let (role, role_pw) = service_role(pg);
    let (proxy, _dir) = proxy_mode(
        pg,
        &role,
        &role_pw,
        vec![entry("alice", "alice-pw", Method::ScramSha256, &role, &[])],
    )
    .await;
    let (bin, port) = (pg.bin("psql"), proxy.port());
    let db2 = db.clone();
    let out = tokio::task::spawn_blocking(move || {
        psql_select_user(&bin, port, "alice", "alice-pw", &db2)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), role);
    let (bin, db2) = (pg.bin("psql"), db.clone());
    let out =
        tokio::task::spawn_blocking(move || psql_select_user(&bin, port, "alice", "bad", &db2))
            .await
            .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("password authentication failed for user \"alice\""),
        "{err}"
    );
    let records = proxy.stop().await;
    let s = sessions(&records);
    assert!(s
        .iter()
        .any(|r| r["event_type"] == "auth_ok" && r["auth_method"] == "scram-sha-256"));
    assert!(s.iter().any(|r| r["event_type"] == "auth_failed"));
}

#[tokio::test]
async fn passthrough_wrong_password() {
    let (pg, db) = fresh_db("auth_pass");
    let proxy = Proxy::start(pg).await;
    let conn = format!(
        "host=127.0.0.1 port={} user={} password=wrong dbname={db}",
        proxy.port(),
        pg.superuser()
    );
    let err = try_connect(&conn)
        .await
        .expect_err("wrong password refused");
    let db_err = err.as_db_error().expect("server error");
    assert_eq!(db_err.code().code(), "28P01");
    // Exactly what PostgreSQL says directly.
    let direct = format!(
        "host=127.0.0.1 port={} user={} password=wrong dbname={db}",
        pg.port(),
        pg.superuser()
    );
    let direct_err = try_connect(&direct).await.expect_err("refused directly");
    assert_eq!(
        db_err.message(),
        direct_err.as_db_error().unwrap().message()
    );
    let records = proxy.stop().await;
    let failed = sessions(&records)
        .into_iter()
        .find(|r| r["event_type"] == "auth_failed")
        .expect("auth_failed record");
    assert_eq!(failed["user"], pg.superuser());
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("password authentication failed"),
        "{failed}"
    );
}

#[tokio::test]
async fn proxy_mode_default_database_is_the_persons_name() {
    use tokio::io::AsyncWriteExt;
    // PostgreSQL's default database is the user name the client sent; in
    // proxy mode that is the person, not the upstream role pgtrail logs in as.
    let pg = PgCluster::shared();
    let person = PgCluster::unique_db_name("erin");
    pg.create_database(&person);
    let (role, role_pw) = service_role(pg);
    pg.create_database(&role);
    let restricted = PgCluster::unique_db_name("frank");
    pg.create_database(&restricted);
    let entries = vec![
        entry(&person, "erin-pw", Method::ScramSha256, &role, &[]),
        // May use only the database named after them.
        entry(
            &restricted,
            "frank-pw",
            Method::ScramSha256,
            &role,
            &[restricted.as_str()],
        ),
    ];
    let (proxy, _dir) = proxy_mode(pg, &role, &role_pw, entries).await;
    for (user, pw) in [
        (person.as_str(), "erin-pw"),
        (restricted.as_str(), "frank-pw"),
    ] {
        let mut conn = crate::harness::raw::login(proxy.addr, &[("user", user)], pw).await;
        conn.write_all(&crate::harness::raw::query(b"SELECT current_database()"))
            .await
            .unwrap();
        let msgs = crate::harness::raw::read_until(&mut conn, b'Z').await;
        let row = msgs
            .iter()
            .find(|m| m.0 == b'D')
            .unwrap_or_else(|| panic!("{user}: no row: {msgs:?}"));
        assert!(
            row.1.ends_with(user.as_bytes()),
            "{user} landed in {:?}",
            String::from_utf8_lossy(&row.1[6..])
        );
    }
    let records = proxy.stop().await;
    assert!(sessions(&records)
        .iter()
        .filter(|r| r["event_type"] == "auth_ok")
        .all(|r| r["database"] == r["user"]));
}

#[tokio::test]
async fn reloaded_users_file_admits_new_people_and_keeps_sessions() {
    let (pg, db) = fresh_db("auth_reload");
    let (role, role_pw) = service_role(pg);
    let (proxy, dir) = proxy_mode(
        pg,
        &role,
        &role_pw,
        vec![entry("alice", "alice-pw", Method::ScramSha256, &role, &[])],
    )
    .await;
    let alice = connect(&conn_as(&proxy, "alice", "alice-pw", &db)).await;
    assert!(try_connect(&conn_as(&proxy, "carol", "carol-pw", &db))
        .await
        .is_err());
    let path = dir.path().join("users.toml");
    users::upsert(
        &path,
        entry("carol", "carol-pw", Method::ScramSha256, &role, &[]),
    )
    .unwrap();
    assert_eq!(proxy.ctx.reload_users().map_err(|e| e.to_string()), Ok(2));
    let carol = connect(&conn_as(&proxy, "carol", "carol-pw", &db)).await;
    carol.simple_query("SELECT 1").await.unwrap();
    alice
        .simple_query("SELECT 1")
        .await
        .expect("an open session survives the reload");
    // A broken file is rejected and the users loaded before stay.
    std::fs::write(&path, "[[user]]\nname = \"dave\"\n").unwrap();
    let err = proxy.ctx.reload_users().unwrap_err().to_string();
    assert!(err.contains("users.toml"), "{err}");
    connect(&conn_as(&proxy, "carol", "carol-pw", &db)).await;
}
