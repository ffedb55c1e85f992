//! Hostile or broken clients: pgtrail answers 08P01 or closes, never hangs,
//! never buffers without bound, and other sessions carry on.

use futures_util::SinkExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db, wait_for, Proxy};
use crate::harness::raw;

/// A proxy whose startup timeout is short, so a silent client cannot stall a test.
async fn proxy_for(pg: &PgCluster) -> Proxy {
    Proxy::start_with(pg, |c| c.limits.startup_timeout_ms = 3000).await
}

/// `SELECT 1` on an existing session, and on a new one.
async fn still_works(proxy: &Proxy, pg: &PgCluster, db: &str, parallel: &tokio_postgres::Client) {
    let n: i32 = parallel
        .query_one("SELECT 1", &[])
        .await
        .expect("parallel session survives")
        .get(0);
    assert_eq!(n, 1);
    let fresh = proxy.connect(pg, db).await;
    let n: i32 = fresh
        .query_one("SELECT 1", &[])
        .await
        .expect("new session works")
        .get(0);
    assert_eq!(n, 1);
}

/// Messages until `until` or close, failing the test if the proxy neither
/// answers nor closes within 15 s.
async fn answer(stream: &mut TcpStream, until: u8) -> Vec<(u8, Vec<u8>)> {
    tokio::time::timeout(Duration::from_secs(15), raw::read_until(stream, until))
        .await
        .expect("pgtrail hung instead of answering or closing")
}

/// Waits until the peer closes (EOF or reset), reading and dropping what comes.
async fn closed(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let done = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(done.is_ok(), "pgtrail did not close the connection");
}

/// Writes ignoring errors (the proxy may close before reading everything).
async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

/// xorshift64*: deterministic noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn assert_08p01_or_close(msgs: &[(u8, Vec<u8>)], what: &str) {
    if let Some(state) = raw::sqlstate(msgs) {
        assert_eq!(state, "08P01", "{what}: {msgs:?}");
    } else {
        assert!(
            msgs.is_empty() || msgs.iter().all(|m| m.0 != b'R'),
            "{what}: unexpected answer {msgs:?}"
        );
    }
}

#[tokio::test]
async fn garbage_startup_packets() {
    let (pg, db) = fresh_db("bad_startup");
    let proxy = proxy_for(pg).await;
    let parallel = proxy.connect(pg, &db).await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..20 {
        let len = 1 + (rng.next() % 300) as usize;
        let noise = rng.bytes(len);
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        send(&mut s, &noise).await;
        // Half-close: a packet announcing more bytes than were sent ends in EOF.
        let _ = s.shutdown().await;
        let msgs = answer(&mut s, b'E').await;
        assert_08p01_or_close(&msgs, &format!("noise #{i} {noise:02x?}"));
    }
    // Claims 2^31-1 bytes: refused at once, without waiting for them.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    send(&mut s, &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]).await;
    let msgs = answer(&mut s, b'E').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("08P01"), "{msgs:?}");
    // A 100 KB startup packet with a valid layout.
    let big = "x".repeat(100 * 1024);
    let packet = raw::startup(&[
        ("user", pg.superuser()),
        ("database", &db),
        ("application_name", &big),
    ]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    send(&mut s, &packet).await;
    let msgs = answer(&mut s, b'E').await;
    assert_08p01_or_close(&msgs, "100 KB startup packet");
    assert!(
        msgs.iter().all(|m| m.0 != b'R'),
        "a 100 KB startup packet was accepted: {msgs:?}"
    );
    still_works(&proxy, pg, &db, &parallel).await;
}

async fn after_login(proxy: &Proxy, pg: &PgCluster, db: &str) -> TcpStream {
    raw::login(
        proxy.addr,
        &[("user", pg.superuser()), ("database", db)],
        pg.password(),
    )
    .await
}

#[tokio::test]
async fn bad_messages_after_login() {
    let (pg, db) = fresh_db("bad_messages");
    let proxy = proxy_for(pg).await;
    let parallel = proxy.connect(pg, &db).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length 2^31-1", vec![b'Q', 0x7f, 0xff, 0xff, 0xff, b'S']),
        ("length word 2", vec![b'Q', 0, 0, 0, 2]),
        ("length word 0", vec![b'P', 0, 0, 0, 0]),
        ("Query without NUL", raw::message(b'Q', b"SELECT 1")),
    ];
    for (what, bytes) in cases {
        let mut s = after_login(&proxy, pg, &db).await;
        send(&mut s, &bytes).await;
        let msgs = answer(&mut s, b'E').await;
        assert_eq!(
            raw::sqlstate(&msgs).as_deref(),
            Some("08P01"),
            "{what}: {msgs:?}"
        );
        closed(&mut s).await;
        still_works(&proxy, pg, &db, &parallel).await;
    }
    // A truncated message, then the client goes away.
    let mut s = after_login(&proxy, pg, &db).await;
    let mut partial = raw::query(b"SELECT 'this message never ends'");
    partial.truncate(12);
    send(&mut s, &partial).await;
    let _ = s.shutdown().await;
    closed(&mut s).await;
    still_works(&proxy, pg, &db, &parallel).await;
    drop(parallel);
    let records = proxy.stop().await;
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r["event_type"] == "disconnect")
        .collect();
    assert!(
        ends.iter()
            .filter(|r| r["reason"]
                .as_str()
                .unwrap_or("")
                .contains("protocol violation"))
            .count()
            >= 4,
        "{ends:#?}"
    );
}

#[tokio::test]
async fn slow_reader_is_not_buffered() {
    let (pg, db) = fresh_db("bad_slow");
    let proxy = proxy_for(pg).await;
    let parallel = proxy.connect(pg, &db).await;
    let direct = connect(&pg.conn_string(&db)).await;
    let mut s = after_login(&proxy, pg, &db).await;
    send(
        &mut s,
        &raw::query(b"SELECT repeat('x', 1000) FROM generate_series(1, 1000000)"),
    )
    .await;
    let mut peak = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(proxy.ctx.stats.buffered_bytes.load(Ordering::Relaxed));
    }
    assert!(
        peak < 4 * 1024 * 1024,
        "pgtrail buffered {peak} bytes for a client that does not read"
    );
    let n: i32 = parallel.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    drop(s);
    // The backend of the abandoned query goes away.
    let q = &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query LIKE 'SELECT repeat%'");
    wait_for_zero(&direct, q).await;
    still_works(&proxy, pg, &db, &parallel).await;
}

#[tokio::test]
async fn client_vanishes_mid_copy() {
    let (pg, db) = fresh_db("bad_copy");
    let proxy = proxy_for(pg).await;
    let parallel = proxy.connect(pg, &db).await;
    let direct = connect(&pg.conn_string(&db)).await;
    parallel
        .batch_execute("CREATE TABLE t (id int, v text)")
        .await
        .unwrap();
    {
        let (client, connection) =
            tokio_postgres::connect(&proxy.conn_string(pg, &db), tokio_postgres::NoTls)
                .await
                .unwrap();
        let conn_task = tokio::spawn(connection);
        let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
        futures_util::pin_mut!(sink);
        for i in 0..100 {
            sink.send(bytes::Bytes::from(format!("{i}\tvalue {i}\n")))
                .await
                .unwrap();
        }
        sink.flush().await.unwrap();
        let in_copy = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query = 'COPY t FROM STDIN' AND state = 'active'");
        wait_for(&direct, &in_copy, 1).await;
        // Vanish: the connection task and its socket go, no CopyDone or CopyFail.
        conn_task.abort();
        let _ = conn_task.await;
    }
    let stuck = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query LIKE 'COPY%'"
    );
    wait_for_zero(&direct, &stuck).await;
    let n: i64 = direct
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a COPY without CopyDone must not commit");
    still_works(&proxy, pg, &db, &parallel).await;
}

async fn wait_for_zero(client: &tokio_postgres::Client, sql: &str) {
    wait_for(client, sql, 0).await
}

#[tokio::test]
async fn shutdown_does_not_wait_for_silent_clients() {
    let (pg, db) = fresh_db("bad_silent");
    // Default startup timeout (60 s); the harness sets a 2 s shutdown timeout.
    let proxy = Proxy::start(pg).await;
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    // One that stops after declining GSS encryption, one that sends half a startup packet.
    let mut gss = TcpStream::connect(proxy.addr).await.unwrap();
    let mut request = 8i32.to_be_bytes().to_vec();
    request.extend(80_877_104i32.to_be_bytes());
    send(&mut gss, &request).await;
    let mut half = TcpStream::connect(proxy.addr).await.unwrap();
    send(
        &mut half,
        &raw::startup(&[("user", pg.superuser()), ("database", &db)])[..9],
    )
    .await;
    let client = proxy.connect(pg, &db).await;
    client.simple_query("SELECT 1").await.unwrap();
    let started = std::time::Instant::now();
    let records = tokio::time::timeout(Duration::from_secs(20), proxy.stop())
        .await
        .expect("shutdown hung");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        started.elapsed()
    );
    for s in [&mut silent, &mut gss, &mut half] {
        closed(s).await;
    }
    assert!(records.iter().any(|r| r["event_type"] == "disconnect"));
}
