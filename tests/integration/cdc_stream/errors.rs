//! The server's refusals as typed errors with its message (missing slot,
//! slot in use, duplicate slot, missing publication mid-stream, no
//! replication privilege, wrong password), and a silent server detected
//! while status updates keep their cadence (a fake walsender).

use std::time::Duration;

use pgtrail::cdc::replication::{
    ReplicationClient, ReplicationError, ServerError, ServerErrorKind, StreamEvent,
};
use pgtrail::cdc::Lsn;
use pgtrail::config::UpstreamConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{config, options, SlotGuard};
use crate::harness::proxy::{connect, fresh_db};

fn server_error<T>(r: Result<T, ReplicationError>) -> ServerError {
    match r {
        Err(ReplicationError::Server(e)) => e,
        Err(other) => panic!("not a server error: {other}"),
        Ok(_) => panic!("no error"),
    }
}

#[tokio::test]
async fn server_refusals_are_typed_errors_with_the_servers_message() {
    let (pg, db) = fresh_db("cdc_err");
    let client = connect(&pg.conn_string(&db)).await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    let repl = ReplicationClient::connect(&config(pg, &db)).await.unwrap();
    let e = server_error(
        repl.start(&options(&format!("none_{db}"), Lsn::INVALID))
            .await,
    );
    assert_eq!(e.kind(), ServerErrorKind::UndefinedObject, "{e:?}");
    assert!(e.message.contains("does not exist"), "{e:?}");

    let slot = format!("s_{db}");
    let _guard = SlotGuard(pg, slot.clone());
    let mut repl = ReplicationClient::connect(&config(pg, &db)).await.unwrap();
    repl.create_slot(&slot, false).await.unwrap();
    let e = server_error(repl.create_slot(&slot, false).await);
    assert_eq!(e.kind(), ServerErrorKind::DuplicateObject, "{e:?}");
    // The connection is still usable after a refused command.
    let mut first = repl.start(&options(&slot, Lsn::INVALID)).await.unwrap();
    let other = ReplicationClient::connect(&config(pg, &db)).await.unwrap();
    let e = server_error(other.start(&options(&slot, Lsn::INVALID)).await);
    assert_eq!(e.kind(), ServerErrorKind::ObjectInUse, "{e:?}");

    // The publication is looked up at the first change: the error comes
    // mid-stream, as an ErrorResponse inside COPY.
    client
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let e = loop {
        match first.next().await {
            Ok(StreamEvent::Keepalive { .. }) => continue,
            other => break server_error(other),
        }
    };
    assert_eq!(e.kind(), ServerErrorKind::UndefinedObject, "{e:?}");
    assert!(e.message.contains("publication \"pub\""), "{e:?}");
    drop(first);

    let role = format!("norepl_{db}");
    pg.create_role(&role, "pw", false);
    let mut cfg = config(pg, &db);
    cfg.role = role.clone();
    cfg.password = Some("pw".into());
    let e = server_error(ReplicationClient::connect(&cfg).await);
    assert_eq!(e.kind(), ServerErrorKind::InsufficientPrivilege, "{e:?}");
    cfg.password = Some("wrong".into());
    let e = server_error(ReplicationClient::connect(&cfg).await);
    assert_eq!(e.kind(), ServerErrorKind::LoginRefused, "{e:?}");
}

/// Reads one tagged frame: (tag, body); `None` at end of stream.
async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await.ok()?;
    Some((head[0], body))
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![tag];
    f.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// A walsender that logs anyone in, answers START_REPLICATION with
/// CopyBothResponse and one keepalive asking for a reply, then says
/// nothing. Returns the CopyData bodies it received.
async fn silent_walsender(listener: TcpListener) -> Vec<Vec<u8>> {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
    s.read_exact(&mut startup).await.unwrap();
    let mut hello = frame(b'R', &0i32.to_be_bytes());
    hello.extend(frame(b'S', b"server_version\x0015.0\x00"));
    hello.extend(frame(b'Z', b"I"));
    s.write_all(&hello).await.unwrap();
    let (tag, query) = read_frame(&mut s).await.unwrap();
    assert_eq!(tag, b'Q');
    assert!(query.starts_with(b"START_REPLICATION SLOT \"s\" LOGICAL 0/0 (proto_version '2'"));
    let mut copy = frame(b'W', &[0, 0, 0]);
    let mut keepalive = vec![b'k'];
    keepalive.extend_from_slice(&0x5000u64.to_be_bytes());
    keepalive.extend_from_slice(&0i64.to_be_bytes());
    keepalive.push(1);
    copy.extend(frame(b'd', &keepalive));
    s.write_all(&copy).await.unwrap();
    let mut received = Vec::new();
    while let Some((tag, body)) = read_frame(&mut s).await {
        if tag == b'd' {
            received.push(body);
        }
    }
    received
}

#[tokio::test]
async fn silent_server_is_detected_and_status_updates_keep_their_cadence() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(silent_walsender(listener));
    let upstream = UpstreamConfig {
        url: format!("postgres://127.0.0.1:{port}"),
        ..UpstreamConfig::default()
    };
    let mut cfg = pgtrail::cdc::replication::ReplicationConfig::new(upstream, "u", "d");
    cfg.status_interval = Duration::from_millis(100);
    cfg.server_timeout = Duration::from_millis(700);
    let repl = ReplicationClient::connect(&cfg).await.unwrap();
    assert_eq!(repl.server_major(), 15);
    let mut stream = repl.start(&options("s", Lsn::INVALID)).await.unwrap();
    let first = stream.next().await.unwrap();
    assert!(matches!(
        first,
        StreamEvent::Keepalive {
            reply_requested: true,
            wal_end: Lsn(0x5000),
            ..
        }
    ));
    stream.confirm(Lsn(0x4000));
    stream.confirm(Lsn(0x3000)); // never backwards
    let started = std::time::Instant::now();
    let e = stream.next().await.unwrap_err();
    assert!(matches!(e, ReplicationError::ServerSilent(_)), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(600));
    drop(stream);

    let updates = server.await.unwrap();
    // The reply to the keepalive, then one every 100 ms while silent.
    assert!(updates.len() >= 4, "{} updates", updates.len());
    let field = |u: &[u8], at: usize| u64::from_be_bytes(u[at..at + 8].try_into().unwrap());
    assert!(updates.iter().all(|u| u.len() == 34 && u[0] == b'r'));
    assert_eq!((field(&updates[0], 1), field(&updates[0], 9)), (0x5000, 0));
    let last = updates.last().unwrap();
    assert_eq!(
        (field(last, 1), field(last, 9), field(last, 17)),
        (0x5000, 0x4000, 0x4000)
    );
    // Replies are asked for only once the server was quiet for half the
    // timeout.
    assert_eq!((updates[0][33], last[33]), (0, 1));
}

#[tokio::test]
async fn idle_stream_outlives_the_timeout_by_asking_for_replies() {
    let (pg, db) = fresh_db("cdc_idle");
    connect(&pg.conn_string(&db))
        .await
        .batch_execute("CREATE TABLE t (id int); CREATE PUBLICATION pub FOR TABLE t")
        .await
        .unwrap();
    let mut cfg = config(pg, &db);
    cfg.status_interval = Duration::from_millis(300);
    cfg.server_timeout = Duration::from_millis(1500);
    let mut repl = ReplicationClient::connect(&cfg).await.unwrap();
    repl.create_slot(&format!("s_{db}"), true).await.unwrap();
    let mut stream = repl
        .start(&options(&format!("s_{db}"), Lsn::INVALID))
        .await
        .unwrap();
    // Caught up and confirmed, PostgreSQL 15 sends nothing unasked: the
    // stream lives on the keepalives its pings ask for.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut keepalives = 0;
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Ok(StreamEvent::Keepalive { wal_end, .. })) => {
                keepalives += 1;
                stream.confirm(wal_end);
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => break,
        }
    }
    assert!(keepalives >= 3, "{keepalives} keepalives");
    stream.stop().await.unwrap();
}
