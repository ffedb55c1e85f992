//! No result reaches the client before its statement's record: events are
//! released per statement, not per ReadyForQuery, so a COMMIT followed by a
//! long statement in one Query string, or Execute + Flush without Sync, is
//! audited as each result passes, and memory stays bounded.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, fresh_db, read_records, statements};
use crate::harness::raw;

/// Reads frames until a CommandComplete whose tag is `tag`.
async fn read_until_tag(conn: &mut tokio::net::TcpStream, tag: &[u8]) {
    loop {
        let mut head = [0u8; 5];
        conn.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        conn.read_exact(&mut body).await.unwrap();
        if head[0] == b'E' {
            panic!("error: {}", String::from_utf8_lossy(&body));
        }
        if head[0] == b'C' && body.strip_suffix(b"\0") == Some(tag) {
            return;
        }
    }
}

/// `before_ack`: pgtrail killed with SIGKILL right after the client read
/// the COMMIT's result, while the Query string's last statement still
/// runs: the COMMIT (and what it committed) has its record.
#[tokio::test]
async fn commit_result_read_then_sigkill_keeps_its_record() {
    let (pg, db) = fresh_db("ack_commit");
    pg.psql(&db, "CREATE TABLE k (i int)");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    config.audit.durability = pgtrail::config::Durability::BeforeAck;
    let pgtrail = PgtrailProcess::start(&config, dir.path()).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], pgtrail.port));
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let mut conn = raw::login(addr, &params, pg.password()).await;
    conn.write_all(&raw::query(
        // The 20 kB row overflows the server's 8 kB output buffer, so the
        // results before it are flushed to the client while pg_sleep runs.
        b"BEGIN; INSERT INTO k VALUES (42); COMMIT; SELECT repeat('x', 20000); SELECT pg_sleep(30)",
    ))
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        read_until_tag(&mut conn, b"COMMIT"),
    )
    .await
    .expect("COMMIT result");
    drop(pgtrail); // SIGKILL while pg_sleep runs
    let committed = pg.psql(&db, "SELECT count(*) FROM k");
    assert_eq!(committed.trim(), "1", "the row is committed");
    let records = read_records(&dir.path().join("audit.jsonl"));
    let st = statements(&records);
    let tags: Vec<_> = st
        .iter()
        .map(|r| r["command_tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["BEGIN", "INSERT 0 1", "COMMIT"], "{records:#?}");
    // Released before their ReadyForQuery: the status is not known yet.
    assert!(st.iter().all(|r| r["txn_status"] == ""), "{st:#?}");
}

/// Execute + Flush without Sync, many times: every result is audited as it
/// passes (records exist before any Sync) and pgtrail's memory does not
/// grow with the number of statements: the second half of the run adds no
/// more than a few MB to what the first half settled at (queues and
/// buffers are bounded, held events would add about 0.4 kB each).
#[tokio::test]
async fn execute_flush_without_sync_is_audited_with_bounded_memory() {
    const N: usize = 200_000;
    let (pg, db) = fresh_db("ack_flush");
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(pg, dir.path());
    let pgtrail = PgtrailProcess::start(&config, dir.path()).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], pgtrail.port));
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let conn = raw::login(addr, &params, pg.password()).await;
    let (mut rd, mut wr) = conn.into_split();
    let mut parse = b"\0SELECT 1\0".to_vec();
    parse.extend(0i16.to_be_bytes());
    wr.write_all(&raw::message(b'P', &parse)).await.unwrap();
    let bind = raw::message(b'B', b"\0\0\0\0\0\0\0\0");
    let mut execute = b"\0".to_vec();
    execute.extend(0i32.to_be_bytes());
    let mut round = Vec::new();
    for _ in 0..100 {
        round.extend(&bind);
        round.extend(raw::message(b'E', &execute));
        round.extend(raw::message(b'H', b""));
    }
    let writer = tokio::spawn(async move {
        for _ in 0..N / 100 {
            wr.write_all(&round).await.unwrap();
        }
        wr
    });
    let mut rss_half = None;
    let mut completes = 0usize;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(240);
    while completes < N {
        assert!(Instant::now() < deadline, "only {completes} results");
        let n = rd.read(&mut chunk).await.unwrap();
        assert!(n > 0, "pgtrail closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let mut off = 0;
        while buf.len() - off >= 5 {
            let len = u32::from_be_bytes([buf[off + 1], buf[off + 2], buf[off + 3], buf[off + 4]]);
            let end = off + 1 + len as usize;
            if end > buf.len() {
                break;
            }
            assert_ne!(buf[off], b'E', "error from the server");
            completes += usize::from(buf[off] == b'C');
            off = end;
        }
        buf.drain(..off);
        if completes >= N / 2 && rss_half.is_none() {
            rss_half = Some(crate::harness::process::rss_kib(pgtrail.pid()));
        }
    }
    let rss_after = crate::harness::process::rss_kib(pgtrail.pid());
    // Before any Sync: the records are already written (the writer flushes
    // every 10 ms; allow it a moment).
    let file = dir.path().join("audit.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = statements(&read_records(&file)).len();
        if written >= N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{written} of {N} records before a Sync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grown = rss_after.saturating_sub(rss_half.unwrap_or(0));
    assert!(
        grown < 8 * 1024,
        "pgtrail grew by {grown} KiB over the last {} statements without Sync",
        N / 2
    );
    let mut wr = writer.await.unwrap();
    wr.write_all(&raw::message(b'S', b"")).await.unwrap();
}

/// A pipeline whose first batch ends with a Sync and whose second fails
/// before any Sync (Execute + Flush): the second batch's error must reach
/// the client at once. The client sends its Sync only after it has seen
/// the error, so pgtrail must not wait for a ReadyForQuery that only the
/// client's next message can bring.
#[tokio::test]
async fn an_error_after_a_synced_batch_is_not_held_for_a_sync_never_sent() {
    let (pg, db) = fresh_db("ack_pipeline");
    let proxy = crate::harness::proxy::Proxy::start(pg).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let mut conn = raw::login(proxy.addr, &params, pg.password()).await;
    let parse = |sql: &str| {
        let mut b = b"\0".to_vec();
        b.extend_from_slice(sql.as_bytes());
        b.push(0);
        b.extend(0i16.to_be_bytes());
        raw::message(b'P', &b)
    };
    let bind = raw::message(b'B', b"\0\0\0\0\0\0\0\0");
    let mut execute = b"\0".to_vec();
    execute.extend(0i32.to_be_bytes());
    let execute = raw::message(b'E', &execute);
    let mut out = Vec::new();
    out.extend(parse("SELECT 1"));
    out.extend(&bind);
    out.extend(&execute);
    out.extend(raw::message(b'S', b""));
    out.extend(parse("SELECT 1/0"));
    out.extend(&bind);
    out.extend(&execute);
    out.extend(raw::message(b'H', b""));
    conn.write_all(&out).await.unwrap();
    let msgs = tokio::time::timeout(Duration::from_secs(5), raw::read_until(&mut conn, b'E'))
        .await
        .expect("the error reached the client without a Sync");
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("22012"));
    conn.write_all(&raw::message(b'S', b"")).await.unwrap();
    let end = raw::read_until(&mut conn, b'Z').await;
    assert_eq!(end.last().map(|m| m.0), Some(b'Z'));
}
