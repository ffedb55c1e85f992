//! ClickHouse errors that need a person are told apart from passing ones:
//! counted as rejected, logged, the batch kept; a dropped table heals
//! because the schema is applied again before the retry.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::clickhouse::unique_ch_db;
use crate::harness::clickhouse::ChServer;
use crate::harness::proxy::{fresh_db, Proxy};

#[tokio::test]
async fn dropped_table_is_a_rejected_batch_that_heals() {
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("rejected");
    let (pg, db) = fresh_db("ch_rejected");
    let proxy = Proxy::start_with(pg, |c| {
        c.audit.clickhouse_url = Some(ch.http_url());
        c.audit.clickhouse.database = ch_db.clone();
        c.audit.clickhouse.batch_ms = 20;
    })
    .await;
    let client = proxy.connect(pg, &db).await;
    let count = format!("SELECT count() FROM `{ch_db}`.statements");
    let wait_count = |want: &'static str| {
        let count = count.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while ch.try_query(&count).as_deref() != Ok(want) {
                assert!(Instant::now() < deadline, "{count} never gave {want}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    client.simple_query("SELECT 1").await.unwrap();
    wait_count("1").await;
    // An operator drops the table: the next INSERT gets Code 60.
    ch.query(&format!("DROP TABLE `{ch_db}`.statements"));
    for i in 0..5 {
        client.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    wait_count("5").await;
    let stats = proxy
        .ctx
        .observed
        .clickhouse
        .clone()
        .expect("clickhouse stats");
    assert!(stats.batches_rejected.load(Ordering::Relaxed) >= 1);
    assert_eq!(stats.rows_lost.load(Ordering::Relaxed), 0);
    drop(client);
    proxy.stop().await;
}
