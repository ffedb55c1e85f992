//! A transaction larger than `logical_decoding_work_mem`, streamed before
//! it commits (protocol 2): blocks, xids on every change (a subtransaction's
//! own), one Stream Commit.

use std::time::Duration;

use pgtrail::cdc::pgoutput::LogicalMessage;
use pgtrail::cdc::replication::{ReplicationClient, ReplicationStream, StreamEvent};
use pgtrail::cdc::Lsn;

use super::{config, options, txn};
use crate::harness::proxy::{connect, fresh_db};

/// What a streamed transaction looked like on the wire.
#[derive(Debug, Default)]
struct Streamed {
    starts: usize,
    first_segments: usize,
    stops: usize,
    inserts: usize,
    inserts_with_xid: usize,
    /// Xids other than the top-level one on inserts (subtransactions).
    other_xids: std::collections::BTreeSet<Option<u32>>,
    begins: usize,
    commit_xid: Option<u32>,
}

/// Counts the events of the stream up to its Stream Commit; holds no row.
async fn count_streamed(stream: &mut ReplicationStream, xid: u32) -> Streamed {
    let mut seen = Streamed::default();
    let mut keepalives = 0;
    let count = async {
        while seen.commit_xid.is_none() {
            let message = match stream.next().await.expect("stream event") {
                StreamEvent::Message { message, .. } => message,
                StreamEvent::Keepalive { .. } => {
                    keepalives += 1;
                    continue;
                }
            };
            match message {
                LogicalMessage::StreamStart(s) => {
                    seen.starts += 1;
                    seen.first_segments += usize::from(s.first_segment);
                    assert_eq!(s.xid, xid);
                }
                LogicalMessage::StreamStop => seen.stops += 1,
                LogicalMessage::Insert(i) => {
                    seen.inserts += 1;
                    if i.xid == Some(xid) {
                        seen.inserts_with_xid += 1;
                    } else {
                        seen.other_xids.insert(i.xid);
                    }
                }
                LogicalMessage::Begin(_) => seen.begins += 1,
                LogicalMessage::StreamCommit(c) => seen.commit_xid = Some(c.xid),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), count)
        .await
        .expect("stream commit within 120 s");
    eprintln!("{seen:?}, {keepalives} keepalives");
    seen
}

#[tokio::test]
async fn large_transaction_streams_in_blocks_on_protocol_2() {
    let (pg, db) = fresh_db("cdc_big");
    let client = connect(&pg.conn_string(&db)).await;
    client
        .batch_execute(
            "CREATE TABLE big (id int PRIMARY KEY, v text);
             CREATE PUBLICATION pub FOR TABLE big",
        )
        .await
        .unwrap();
    let mut repl = ReplicationClient::connect(&config(pg, &db)).await.unwrap();
    if repl.server_major() < 14 {
        eprintln!("SKIPPED: streaming needs PostgreSQL 14");
        return;
    }
    // A walsender with a database runs SQL too: the decoding memory limit
    // is the session's own, so no server setting changes for other tests.
    repl.simple_query("SET logical_decoding_work_mem = '64kB'")
        .await
        .unwrap();
    let slot = format!("s_{db}");
    repl.create_slot(&slot, true).await.unwrap();
    let xid = txn(
        &client,
        "INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 45000) g;
         SAVEPOINT a;
         INSERT INTO big SELECT g, 'row ' || g FROM generate_series(45001, 50000) g;
         RELEASE a",
        true,
    )
    .await;
    let mut stream = repl.start(&options(&slot, Lsn::INVALID)).await.unwrap();
    let seen = count_streamed(&mut stream, xid).await;
    assert_eq!(seen.commit_xid, Some(xid));
    assert!(seen.starts > 1, "{seen:?}");
    assert_eq!(seen.first_segments, 1);
    assert_eq!(seen.starts, seen.stops);
    assert_eq!(seen.inserts, 50_000);
    // Changes made in a subtransaction carry the subtransaction's xid,
    // not txid_current()'s: only the block's Stream Start names the
    // top-level transaction.
    assert_eq!(seen.inserts_with_xid, 45_000);
    assert_eq!(seen.other_xids.len(), 1, "{seen:?}");
    assert!(!seen.other_xids.contains(&None));
    assert_eq!(seen.begins, 0);
    assert!(!stream.in_stream_block());
    stream.stop().await.unwrap();
}
