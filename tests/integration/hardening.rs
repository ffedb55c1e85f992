//! Limits before login, secrets, file modes and descriptors, against the
//! real binary where the process is what matters (issue 11, items 6-9).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, fresh_db};
use crate::harness::raw;

/// Starts a login and sends a SASLInitialResponse that claims `len` bytes,
/// then streams them; returns the SQLSTATE the proxy answered with and
/// how long that took.
async fn oversized_sasl(port: u16, user: &str, db: &str, len: usize) -> (Option<String>, Duration) {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = raw::open(addr, &[("user", user), ("database", db)]).await;
    let msgs = raw::read_until(&mut s, b'R').await;
    assert_eq!(msgs.last().map(|m| m.0), Some(b'R'), "{msgs:?}");
    let started = Instant::now();
    let mut header = vec![b'p'];
    header.extend(((len + 4) as i32).to_be_bytes());
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&header).await;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..len >> 20 {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    writer.abort();
    let msgs = vec![(b'E', answer.get(5..).unwrap_or_default().to_vec())];
    (raw::sqlstate(&msgs), took)
}

#[tokio::test]
async fn oversized_auth_message_is_refused_from_its_header() {
    let (pg, db) = fresh_db("hard_auth_len");
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(pg, dir.path());
    let proxy = PgtrailProcess::start(&config, dir.path()).await;
    let before = crate::harness::process::rss_kib(proxy.pid());
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (port, user, db) = (proxy.port, pg.superuser().to_string(), db.clone());
        clients.spawn(async move { oversized_sasl(port, &user, &db, 64 << 20).await });
    }
    while let Some(result) = clients.join_next().await {
        let (code, took) = result.unwrap();
        assert_eq!(code.as_deref(), Some("08P01"));
        assert!(took < Duration::from_secs(5), "answered after {took:?}");
    }
    let after = crate::harness::process::rss_kib(proxy.pid());
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(proxy
        .log_contents()
        .contains("authentication message of 67108868 bytes is over the limit of 65535 bytes"));
}

/// Runs `pgtrail user add NAME --users FILE` with the password on stdin.
fn user_add(file: &std::path::Path, name: &str, password: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(["user", "add", name, "--users"])
        .arg(file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

/// The salt a proxy's SCRAM server-first-message gives `user`.
async fn scram_salt(addr: std::net::SocketAddr, user: &str) -> String {
    let mut s = raw::open(addr, &[("user", user), ("database", "postgres")]).await;
    let msgs = raw::read_until(&mut s, b'R').await;
    let code = msgs
        .last()
        .map(|(_, b)| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    assert_eq!(code, Some(10), "SASL offered: {msgs:?}");
    let first = b"n,,n=,r=abcdefghijklmnop";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend((first.len() as i32).to_be_bytes());
    body.extend_from_slice(first);
    s.write_all(&raw::message(b'p', &body)).await.unwrap();
    let msgs = raw::read_until(&mut s, b'R').await;
    let (_, body) = msgs.last().unwrap();
    let text = String::from_utf8_lossy(&body[4..]).into_owned();
    text.split(',')
        .find_map(|f| f.strip_prefix("s="))
        .unwrap_or_else(|| panic!("no salt in {text:?}"))
        .to_string()
}

#[tokio::test]
async fn unknown_user_salt_is_the_same_on_every_instance() {
    use std::os::unix::fs::PermissionsExt;
    let (pg, _db) = fresh_db("hard_mock_salt");
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    user_add(&users, "alice", "alice-pw");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "users file mode after user add");
    let proxy_mode = |c: &mut pgtrail::config::Config| {
        c.auth.mode = pgtrail::config::AuthMode::Proxy;
        c.auth.users_file = Some(users.clone());
    };
    let a = crate::harness::proxy::Proxy::start_with(pg, proxy_mode).await;
    let b = crate::harness::proxy::Proxy::start_with(pg, proxy_mode).await;
    let salt_a = scram_salt(a.addr, "nobody").await;
    assert_eq!(salt_a, scram_salt(b.addr, "nobody").await);
    assert_eq!(salt_a, scram_salt(a.addr, "nobody").await);
    assert_ne!(salt_a, scram_salt(a.addr, "somebody").await);
    // A later `user add` keeps the mock secret, so the salt stays.
    user_add(&users, "bob", "bob-pw");
    let c = crate::harness::proxy::Proxy::start_with(pg, proxy_mode).await;
    assert_eq!(salt_a, scram_salt(c.addr, "nobody").await);
}

#[tokio::test]
async fn readable_users_file_is_warned_about_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let (pg, _db) = fresh_db("hard_file_mode");
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    user_add(&users, "alice", "alice-pw");
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut config = config_for(pg, dir.path());
    config.auth.mode = pgtrail::config::AuthMode::Proxy;
    config.auth.users_file = Some(users.clone());
    let proxy = PgtrailProcess::start(&config, dir.path()).await;
    let log = proxy.log_contents();
    let line = log
        .lines()
        .find(|l| l.contains("readable by group or others"))
        .unwrap_or_else(|| panic!("no warning in {log}"));
    assert!(
        line.contains("WARN")
            && line.contains(&users.display().to_string())
            && line.contains("0644"),
        "{line}"
    );
}

#[tokio::test]
async fn passwords_in_urls_never_reach_the_log() {
    let (pg, db) = fresh_db("hard_log_secrets");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    config.log.level = "debug".into();
    config.upstream.url = format!("postgres://someone:Upstream-Pw-1@127.0.0.1:{}/x", pg.port());
    // A ClickHouse that is not there: its URL is logged with every retry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ch_port = closed.local_addr().unwrap().port();
    drop(closed);
    config.audit.clickhouse_url = Some(format!(
        "http://default:Clickhouse-Pw-2@127.0.0.1:{ch_port}/?password=Query-Pw-3"
    ));
    config.audit.clickhouse.password = pgtrail::config::Secret("Field-Pw-4".into());
    config.audit.spool_dir = Some(dir.path().join("spool"));
    let proxy = PgtrailProcess::start(&config, dir.path()).await;
    let conn = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={db}",
        proxy.port,
        pg.superuser(),
        pg.password()
    );
    let client = crate::harness::proxy::connect(&conn).await;
    client.simple_query("SELECT 1").await.unwrap();
    drop(client);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = proxy.log_contents();
    for secret in [
        "Upstream-Pw-1",
        "Clickhouse-Pw-2",
        "Query-Pw-3",
        "Field-Pw-4",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("someone:***@127.0.0.1"),
        "upstream URL logged masked: {log}"
    );
    assert!(
        log.contains("ClickHouse"),
        "ClickHouse errors logged: {log}"
    );
    assert!(
        !log.contains(pg.password()),
        "the client's password in the log"
    );
}

#[tokio::test]
async fn proxy_serves_while_1100_admin_connections_sit_idle() {
    let (pg, db) = fresh_db("hard_admin_fds");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    config.admin_listen = Some(format!("127.0.0.1:{admin_port}").parse().unwrap());
    // The inherited soft limit of the issue; the hard one stays higher.
    let proxy = PgtrailProcess::start_under(&config, dir.path(), "ulimit -Sn 1024;").await;
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match tokio::net::TcpStream::connect(("127.0.0.1", admin_port)).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("admin connect {}: {e}", idle.len()),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let conn = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={db} connect_timeout=10",
        proxy.port,
        pg.superuser(),
        pg.password()
    );
    let started = Instant::now();
    let client = tokio::time::timeout(
        Duration::from_secs(15),
        crate::harness::proxy::connect(&conn),
    )
    .await
    .expect("client connects through the proxy");
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // An admin request is served again once the idle ones are gone.
    drop(idle);
    let admin = format!("127.0.0.1:{admin_port}").parse().unwrap();
    let (status, _) = crate::harness::proxy::http_get(admin, "/healthz").await;
    assert_eq!(status, 200);
    assert!(!proxy.log_contents().contains("Too many open files"));
}

#[test]
fn too_low_a_descriptor_limit_refuses_to_start() {
    let pg = crate::harness::postgres::PgCluster::shared();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(pg, dir.path());
    let path = dir.path().join("pgtrail.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 512; exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_pgtrail"))
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pgtrail started with a limit of 512 descriptors");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the open file limit is 512, but max_connections = 1000 needs 2128"),
        "{stderr}"
    );
}

#[tokio::test]
async fn readyz_connects_upstream_at_most_once_a_second() {
    let (pg, _db) = fresh_db("hard_readyz");
    // A stand-in upstream that counts connections.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = upstream.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = upstream.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    let proxy = crate::harness::proxy::Proxy::start_with(pg, |c| {
        c.upstream.url = format!("postgres://127.0.0.1:{port}");
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = proxy.admin_addr.unwrap();
    let started = Instant::now();
    for _ in 0..30 {
        let (status, body) = crate::harness::proxy::http_get(admin, "/readyz").await;
        assert_eq!(status, 200, "{body}");
    }
    let elapsed = started.elapsed();
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        n as u64 <= elapsed.as_secs() + 1,
        "{n} upstream connections for 30 /readyz in {elapsed:?}"
    );
}

#[tokio::test]
async fn unknown_user_gets_the_configured_method_and_proxy_mode_limits_auth_messages() {
    let (pg, _db) = fresh_db("hard_mock_method");
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    user_add(&users, "alice", "alice-pw");
    let users_for = users.clone();
    let proxy = crate::harness::proxy::Proxy::start_with(pg, move |c| {
        c.auth.mode = pgtrail::config::AuthMode::Proxy;
        c.auth.users_file = Some(users_for);
        c.auth.unknown_user_method = pgtrail::auth::users::Method::Md5;
    })
    .await;
    let mut s = raw::open(proxy.addr, &[("user", "nobody"), ("database", "postgres")]).await;
    let msgs = raw::read_until(&mut s, b'R').await;
    let (_, body) = msgs.last().unwrap();
    assert_eq!(
        i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        5,
        "md5 asked"
    );
    assert_eq!(body.len(), 8, "with a 4-byte salt");
    s.write_all(&raw::message(
        b'p',
        b"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0",
    ))
    .await
    .unwrap();
    let msgs = raw::read_until(&mut s, b'E').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("28P01"));
    // Proxy mode reads the SASL message itself: the same limit applies.
    let (code, took) = oversized_sasl(proxy.port(), "alice", "postgres", 8 << 20).await;
    assert_eq!(code.as_deref(), Some("08P01"));
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}
