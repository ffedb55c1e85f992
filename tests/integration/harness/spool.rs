//! A spool left behind with ClickHouse down: a first run of pgtrail writes
//! `statements` statements into its spool while ClickHouse is stopped, then
//! stops; a test changes the first segment and starts pgtrail again.

use serde_json::Value;
use std::path::PathBuf;

use super::clickhouse::{unique_ch_db, ChServer};
use super::postgres::PgCluster;
use super::proxy::{fresh_db, Proxy};
use pgtrail::config::Config;

pub struct SpoolLeft {
    pub ch: ChServer,
    pub ch_db: String,
    pub pg: &'static PgCluster,
    pub spool: tempfile::TempDir,
    /// The records of the first run (its JSON Lines).
    pub first: Vec<Value>,
    /// The oldest segment.
    pub segment: PathBuf,
}

impl SpoolLeft {
    /// ClickHouse stopped; `statements` `SELECT i` through pgtrail; pgtrail
    /// stopped. `prefix` names the databases.
    pub async fn make(prefix: &str, statements: usize) -> SpoolLeft {
        let ch = ChServer::start();
        ch.kill();
        let ch_db = unique_ch_db(prefix);
        let (pg, db) = fresh_db(&format!("ch_{prefix}"));
        let spool = tempfile::tempdir().unwrap();
        let mut left = SpoolLeft {
            ch,
            ch_db,
            pg,
            spool,
            first: Vec::new(),
            segment: PathBuf::new(),
        };
        let proxy = Proxy::start_with(pg, |c| left.configure(c)).await;
        let client = proxy.connect(pg, &db).await;
        for i in 0..statements {
            client.simple_query(&format!("SELECT {i}")).await.unwrap();
        }
        drop(client);
        left.first = proxy.stop().await;
        left.segment = std::fs::read_dir(left.spool.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("spool-")
            })
            .min()
            .expect("a spool segment");
        left
    }

    /// The audit settings of both runs: ClickHouse through the spool.
    pub fn configure(&self, cfg: &mut Config) {
        cfg.audit.clickhouse_url = Some(self.ch.http_url());
        cfg.audit.clickhouse.database = self.ch_db.clone();
        cfg.audit.clickhouse.batch_ms = 20;
        cfg.audit.spool_dir = Some(self.spool.path().to_path_buf());
    }

    /// ClickHouse back, pgtrail started on the same spool and stopped once
    /// it has sent it; its records.
    pub async fn second_run(&self) -> Vec<Value> {
        self.ch.restart();
        let proxy = Proxy::start_with(self.pg, |c| self.configure(c)).await;
        proxy.stop().await
    }
}
