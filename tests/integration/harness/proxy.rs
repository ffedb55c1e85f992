//! pgtrail started in-process on 127.0.0.1:0, one per test, with its own
//! JSON Lines audit file.
#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::postgres::PgCluster;
use pgtrail::config::Config;
use pgtrail::context::ProxyContext;
use pgtrail::server::{Extensions, Server};

pub struct Proxy {
    pub addr: SocketAddr,
    pub audit_path: PathBuf,
    pub ctx: Arc<ProxyContext>,
    /// The admin listener's bound address, when `admin_listen` is set.
    pub admin_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

/// A passthrough configuration in front of `pg`, listening on a free port.
pub fn config_for(pg: &PgCluster, dir: &std::path::Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    c.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
    c.audit.file = Some(dir.join("audit.jsonl"));
    c.limits.shutdown_timeout_ms = 2000;
    // The transparency suites run a second time with attribution markers on
    // (scripts/test.sh): the client must see the same bytes either way.
    // No consumer: these tests set up no slot.
    c.cdc.enabled = std::env::var_os("PGTRAIL_TEST_CDC").is_some();
    c.cdc.consume = false;
    c
}

impl Proxy {
    pub async fn start(pg: &PgCluster) -> Proxy {
        Self::start_with(pg, |_| {}).await
    }

    pub async fn start_with(pg: &PgCluster, tweak: impl FnOnce(&mut Config)) -> Proxy {
        if let Ok(level) = std::env::var("PGTRAIL_TEST_LOG") {
            pgtrail::logging::init(&pgtrail::config::LogConfig {
                level,
                format: pgtrail::config::LogFormat::Text,
            });
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config_for(pg, dir.path());
        tweak(&mut config);
        let audit_path = config.audit.file.clone().expect("audit file");
        let server = Server::bind(config.clone(), Extensions::standard(&config))
            .await
            .expect("bind pgtrail");
        let addr = server.local_addr().expect("local addr");
        let admin_addr = server.admin_addr();
        let ctx = server.context();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Proxy {
            addr,
            audit_path,
            ctx,
            admin_addr,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// tokio-postgres / libpq connection string through the proxy.
    pub fn conn_string(&self, pg: &PgCluster, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={db}",
            self.port(),
            pg.superuser(),
            pg.password()
        )
    }

    pub async fn connect(&self, pg: &PgCluster, db: &str) -> tokio_postgres::Client {
        connect(&self.conn_string(pg, db)).await
    }

    /// Stops the proxy (draining sessions and the audit queue) and returns
    /// every record written.
    pub async fn stop(mut self) -> Vec<Value> {
        self.shutdown().await;
        read_records(&self.audit_path)
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("pgtrail task");
        }
    }

    /// Records written so far (the writer flushes whenever its queue is empty).
    pub fn records_now(&self) -> Vec<Value> {
        read_records(&self.audit_path)
    }

    /// Waits until `pred` holds for the records written so far.
    pub async fn wait_records(&self, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..200 {
            let r = self.records_now();
            if pred(&r) {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("audit records never matched; got {:#?}", self.records_now());
    }
}

/// A raw HTTP/1.1 GET: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin listener");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send request");
    let mut raw = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read response");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

/// The records of the whole lines of an audit file; a line the writer is
/// still appending (read while the proxy runs) waits for the next read.
pub fn read_records(path: &std::path::Path) -> Vec<Value> {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    bytes.truncate(
        bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1),
    );
    let text = String::from_utf8(bytes).expect("UTF-8 audit file");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// Statement records only.
pub fn statements(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["record"] == "statements")
        .collect()
}

/// Session records only.
pub fn sessions(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["record"] == "sessions")
        .collect()
}

pub async fn connect(conn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conn}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A fresh database in the shared cluster.
pub fn fresh_db(prefix: &str) -> (&'static PgCluster, String) {
    let pg = PgCluster::shared();
    let db = PgCluster::unique_db_name(prefix);
    pg.create_database(&db);
    (pg, db)
}

/// Polls a `SELECT count(*)` until it returns `want` (10 s at most).
pub async fn wait_for(client: &tokio_postgres::Client, sql: &str, want: i64) {
    for _ in 0..200 {
        let n: i64 = client
            .query_one(sql, &[])
            .await
            .expect("count query")
            .get(0);
        if n == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{sql} never returned {want}");
}

/// A client on `conn` whose notifications arrive on the receiver as
/// (payload, sender's pid).
pub async fn notified_client(
    conn: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<(String, i32)>,
) {
    use futures_util::StreamExt;
    let (client, mut connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(stream.for_each(move |m| {
        if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m {
            let _ = tx.send((n.payload().to_string(), n.process_id()));
        }
        async {}
    }));
    (client, rx)
}
