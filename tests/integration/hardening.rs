//! Limits before login, secrets, file modes and descriptors, against the
//! real binary where the process is what matters (issue 11, items 6-9).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, fresh_db};
use crate::harness::raw;

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

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
    let before = rss_kib(proxy.pid());
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
    let after = rss_kib(proxy.pid());
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(proxy
        .log_contents()
        .contains("authentication message of 67108868 bytes is over the limit of 65535 bytes"));
}
