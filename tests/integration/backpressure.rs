//! A ClickHouse that is slow but healthy (every insert answered, each
//! after a delay) with a tiny in-memory backlog and no spool: clients are
//! slowed down, never refused.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::clickhouse::unique_ch_db;
use crate::harness::clickhouse::ChServer;
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, connect, fresh_db};

/// A TCP forwarder to `target` that holds every answer chunk for `delay`.
async fn slow_forwarder(target: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    let _ = sw.shutdown().await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            tokio::time::sleep(delay).await;
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = cw.shutdown().await;
                up.abort();
            });
        }
    });
    port
}

#[tokio::test]
async fn a_slow_but_healthy_clickhouse_slows_clients_and_refuses_none() {
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("slow");
    let (pg, db) = fresh_db("slow_ch");
    let port = slow_forwarder(ch.http_port(), Duration::from_millis(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    config.audit.file = None;
    config.audit.clickhouse_url = Some(format!("http://127.0.0.1:{port}"));
    config.audit.clickhouse.database = ch_db.clone();
    // A backlog of 4 × 10 rows, each insert answered after 60 ms or more.
    config.audit.clickhouse.batch_rows = 10;
    config.audit.clickhouse.batch_ms = 5;
    let proxy = PgtrailProcess::start(&config, dir.path()).await;
    let conn = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={db}",
        proxy.port,
        pg.superuser(),
        pg.password()
    );
    let mut tasks = Vec::new();
    for who in 0..8 {
        let client = connect(&conn).await;
        tasks.push(tokio::spawn(async move {
            for i in 0..60 {
                if let Err(e) = client.simple_query(&format!("SELECT {who}, {i}")).await {
                    panic!("refused while ClickHouse was only slow: {e:?}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sql =
        format!("SELECT count() FROM `{ch_db}`.statements WHERE statement LIKE 'SELECT %, %'");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ch.try_query(&sql).as_deref() != Ok("480") {
        assert!(
            std::time::Instant::now() < deadline,
            "statements never all arrived: {:?}",
            ch.try_query(&sql)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
