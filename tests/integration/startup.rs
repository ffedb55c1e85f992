//! Startup-phase behaviour: protocol negotiation, refused requests, shutdown.

use tokio::io::AsyncWriteExt;

use crate::harness::proxy::{fresh_db, sessions, Proxy};
use crate::harness::raw;

/// A startup packet for protocol 3.`minor`.
fn startup_minor(minor: i32, params: &[(&str, &str)]) -> Vec<u8> {
    let mut packet = raw::startup(params);
    packet[4..8].copy_from_slice(&((3 << 16) | minor).to_be_bytes());
    packet
}

#[tokio::test]
async fn newer_minor_version_gets_negotiate_protocol_version() {
    let (pg, db) = fresh_db("startup_negotiate");
    let proxy = Proxy::start(pg).await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let params = [
        ("user", pg.superuser()),
        ("database", db.as_str()),
        ("_pq_.future_option", "on"),
    ];
    s.write_all(&startup_minor(2, &params)).await.unwrap();
    let msgs = raw::read_until(&mut s, b'R').await;
    let (tag, body) = &msgs[0];
    assert_eq!(*tag, b'v', "NegotiateProtocolVersion comes first: {msgs:?}");
    assert_eq!(
        i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        0,
        "newest minor version supported"
    );
    assert_eq!(i32::from_be_bytes([body[4], body[5], body[6], body[7]]), 1);
    assert_eq!(&body[8..], b"_pq_.future_option\0");
    assert_eq!(
        msgs.last().map(|m| m.0),
        Some(b'R'),
        "authentication goes on"
    );
}

#[tokio::test]
async fn replication_connections_are_refused() {
    let (pg, db) = fresh_db("startup_replication");
    let proxy = Proxy::start(pg).await;
    let params = [
        ("user", pg.superuser()),
        ("database", db.as_str()),
        ("replication", "database"),
    ];
    let mut s = raw::open(proxy.addr, &params).await;
    let msgs = raw::read_until(&mut s, b'E').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("0A000"));
    let params = [
        ("user", pg.superuser()),
        ("database", db.as_str()),
        ("replication", "false"),
    ];
    raw::login(proxy.addr, &params, pg.password()).await;
}

#[tokio::test]
async fn idle_sessions_get_57p01_when_shutdown_times_out() {
    let (pg, db) = fresh_db("startup_shutdown");
    let mut proxy = Proxy::start_with(pg, |c| c.limits.shutdown_timeout_ms = 300).await;
    let params = [("user", pg.superuser()), ("database", db.as_str())];
    let mut s = raw::login(proxy.addr, &params, pg.password()).await;
    let started = std::time::Instant::now();
    proxy.shutdown().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let msgs = raw::read_until(&mut s, b'E').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("57P01"), "{msgs:?}");
    let records = proxy.records_now();
    let end = sessions(&records)
        .into_iter()
        .find(|r| r["event_type"] == "disconnect")
        .cloned();
    assert!(end.is_some_and(|r| r["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("administrator")));
}
