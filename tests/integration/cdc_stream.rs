//! The replication client and the pgoutput decoder against the real
//! PostgreSQL of the harness: every change of a few transactions decoded
//! with its values and old tuples, xids matching `txid_current()`, a
//! rolled-back transaction absent, the stream resuming after the confirmed
//! position, and a large transaction streamed (protocol 2) in blocks.

use std::time::Duration;

use bytes::Bytes;
use pgtrail::cdc::pgoutput::{LogicalMessage, OldTuple, ReplicaIdentity, TupleData, Value};
use pgtrail::cdc::replication::{
    ReplicationClient, ReplicationConfig, ReplicationStream, StartOptions, StreamEvent,
};
use pgtrail::cdc::{Lsn, RelationCache};
use pgtrail::config::UpstreamConfig;

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db};

mod errors;
mod large;
mod tls;

pub(crate) fn config(pg: &PgCluster, db: &str) -> ReplicationConfig {
    let upstream = UpstreamConfig {
        url: format!("postgres://127.0.0.1:{}", pg.port()),
        ..UpstreamConfig::default()
    };
    let mut cfg = ReplicationConfig::new(upstream, pg.superuser(), db);
    cfg.password = Some(pg.password().to_string());
    cfg
}

pub(crate) fn options(slot: &str, start: Lsn) -> StartOptions {
    StartOptions {
        slot: slot.to_string(),
        publications: vec!["pub".to_string()],
        start,
        streaming: true,
        messages: true,
    }
}

/// Drops a permanent slot when the test ends, also when it fails: slots
/// hold WAL and the shared cluster has ten.
pub(crate) struct SlotGuard(pub(crate) &'static PgCluster, pub(crate) String);

impl Drop for SlotGuard {
    /// A walsender that just ended may still hold the slot for a moment:
    /// retry until it is gone (5 s at most).
    fn drop(&mut self) {
        let drop_sql = format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = '{}' AND NOT active",
            self.1
        );
        let left = format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}'",
            self.1
        );
        for _ in 0..50 {
            let _ = self.0.try_psql("postgres", &drop_sql);
            if self.0.try_psql("postgres", &left).map(|n| n.trim() == "0") == Ok(true) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Runs `body` in a transaction that commits (or rolls back) and returns
/// its `txid_current()` as the 32-bit xid the stream carries.
pub(crate) async fn txn(client: &tokio_postgres::Client, body: &str, commit: bool) -> u32 {
    client.batch_execute("BEGIN").await.unwrap();
    client.batch_execute(body).await.unwrap();
    let txid: i64 = client
        .query_one("SELECT txid_current()", &[])
        .await
        .unwrap()
        .get(0);
    let end = if commit { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await.unwrap();
    (txid as u64 & 0xFFFF_FFFF) as u32
}

/// The stream's messages up to the `commits`-th Commit, with a deadline.
async fn messages_until_commits(
    stream: &mut ReplicationStream,
    commits: usize,
) -> Vec<(Lsn, LogicalMessage)> {
    let mut out = Vec::new();
    let mut seen = 0;
    let collect = async {
        while seen < commits {
            match stream.next().await.expect("stream event") {
                StreamEvent::Message {
                    wal_start, message, ..
                } => {
                    if matches!(message, LogicalMessage::Commit(_)) {
                        seen += 1;
                    }
                    out.push((wal_start, message));
                }
                StreamEvent::Keepalive { .. } => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("commits within 60 s");
    out
}

fn text(v: &str) -> Value {
    Value::Text(Bytes::copy_from_slice(v.as_bytes()))
}

/// The transactions of the first test: (xid, committed).
struct Xids {
    inserts: u32,
    updates: u32,
    deletes: u32,
    rolled_back: u32,
    truncate: u32,
}

async fn run_transactions(client: &tokio_postgres::Client) -> Xids {
    let big = "repeat('x', 10000)";
    let inserts = txn(
        client,
        &format!(
            "INSERT INTO t_default VALUES (1, 'a', {big}), (2, NULL, 'small');
             INSERT INTO t_full VALUES (1, 'n1')"
        ),
        true,
    )
    .await;
    let updates = txn(
        client,
        "UPDATE t_default SET name = 'b' WHERE id = 1;
         UPDATE t_default SET id = 3 WHERE id = 2;
         UPDATE t_full SET note = 'n2' WHERE id = 1",
        true,
    )
    .await;
    let deletes = txn(
        client,
        "DELETE FROM t_default WHERE id = 3;
         DELETE FROM t_full WHERE id = 1;
         SELECT pg_logical_emit_message(true, 'pgtrail', 'x')",
        true,
    )
    .await;
    let rolled_back = txn(
        client,
        "INSERT INTO t_default VALUES (99, 'gone', 'g');
         SELECT pg_logical_emit_message(true, 'pgtrail', 'rolled');
         SELECT pg_logical_emit_message(false, 'pgtrail', 'nt')",
        false,
    )
    .await;
    let truncate = txn(client, "TRUNCATE t_full", true).await;
    Xids {
        inserts,
        updates,
        deletes,
        rolled_back,
        truncate,
    }
}

#[tokio::test]
async fn changes_decode_with_values_old_tuples_xids_and_resume_after_confirm() {
    let (pg, db) = fresh_db("cdc");
    let client = connect(&pg.conn_string(&db)).await;
    client
        .batch_execute(
            "CREATE TABLE t_default (id int PRIMARY KEY, name text, big text);
             ALTER TABLE t_default ALTER big SET STORAGE EXTERNAL;
             CREATE TABLE t_full (id int, note text);
             ALTER TABLE t_full REPLICA IDENTITY FULL;
             CREATE PUBLICATION pub FOR TABLE t_default, t_full",
        )
        .await
        .unwrap();
    let slot = format!("s_{db}");
    let _guard = SlotGuard(pg, slot.clone());
    let mut repl = ReplicationClient::connect(&config(pg, &db)).await.unwrap();
    assert!(repl.server_major() >= 10);
    let system = repl.identify_system().await.unwrap();
    assert_eq!(system.database.as_deref(), Some(db.as_str()));
    let created = repl.create_slot(&slot, false).await.unwrap();
    assert!(created.consistent_point.is_valid());

    let xids = run_transactions(&client).await;
    let mut stream = repl.start(&options(&slot, Lsn::INVALID)).await.unwrap();
    let messages = messages_until_commits(&mut stream, 4).await;
    for (lsn, m) in &messages {
        let shown = format!("{m:?}");
        eprintln!("{lsn} {}", &shown[..shown.len().min(160)]);
    }
    let confirm_at = check_first_stream(&messages, &xids);
    stream.confirm(confirm_at);
    stream.stop().await.unwrap();
    let confirmed = pg.psql(
        "postgres",
        &format!("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    );
    assert_eq!(confirmed.trim().parse::<Lsn>().unwrap(), confirm_at);

    // A new connection from the slot's position: nothing of the confirmed
    // transactions again; the first transaction is the TRUNCATE.
    let repl = ReplicationClient::connect(&config(pg, &db)).await.unwrap();
    let mut stream = repl.start(&options(&slot, Lsn::INVALID)).await.unwrap();
    let again = messages_until_commits(&mut stream, 1).await;
    let begins: Vec<u32> = again
        .iter()
        .filter_map(|(_, m)| match m {
            LogicalMessage::Begin(b) => Some(b.xid),
            _ => None,
        })
        .collect();
    assert_eq!(begins, vec![xids.truncate]);
    // The non-transactional message lies after the confirmed position:
    // it comes again, as a consumer of markers must expect.
    let resent = again.iter().any(|(_, m)| {
        matches!(m, LogicalMessage::Message(msg) if !msg.transactional && &msg.content[..] == b"nt")
    });
    assert!(resent, "{again:?}");
    assert!(again
        .iter()
        .all(|(lsn, _)| !lsn.is_valid() || *lsn > confirm_at));
    stream.stop().await.unwrap();
}

/// Asserts the first stream; returns the end LSN of the third transaction.
fn check_first_stream(messages: &[(Lsn, LogicalMessage)], xids: &Xids) -> Lsn {
    let mut cache = RelationCache::new();
    let mut txns: Vec<(u32, Vec<&LogicalMessage>)> = Vec::new();
    let mut commits = Vec::new();
    let mut outside = Vec::new();
    for (_, m) in messages {
        match m {
            LogicalMessage::Begin(b) => txns.push((b.xid, Vec::new())),
            LogicalMessage::Commit(c) => commits.push(c.clone()),
            LogicalMessage::Relation(r) => {
                cache.update(r.clone());
            }
            LogicalMessage::Message(msg) if !msg.transactional => outside.push(msg.clone()),
            other => txns
                .last_mut()
                .expect("change inside a transaction")
                .1
                .push(other),
        }
    }
    let got: Vec<u32> = txns.iter().map(|t| t.0).collect();
    assert_eq!(
        got,
        [xids.inserts, xids.updates, xids.deletes, xids.truncate]
    );
    assert!(!got.contains(&xids.rolled_back));
    assert!(commits.windows(2).all(|w| w[0].end_lsn < w[1].commit_lsn));
    // A non-transactional message is sent at once, rollback or not.
    assert_eq!(outside.len(), 1);
    assert_eq!(&outside[0].content[..], b"nt");

    let t_default = cache.get(relation_oid(txns[0].1[0])).unwrap();
    assert_eq!(&*t_default.table, "t_default");
    assert_eq!(t_default.replica_identity, ReplicaIdentity::Default);
    let keys: Vec<_> = t_default.key_columns().map(|c| &*c.name).collect();
    assert_eq!(keys, ["id"]);
    check_inserts(&txns[0].1, &cache);
    check_updates(&txns[1].1);
    check_deletes(&txns[2].1);
    let LogicalMessage::Truncate(t) = txns[3].1[0] else {
        panic!("not a truncate: {:?}", txns[3].1)
    };
    assert_eq!(&*cache.get(t.relations[0]).unwrap().table, "t_full");
    assert!(!t.cascade() && !t.restart_identity());
    commits[2].end_lsn
}

fn relation_oid(m: &LogicalMessage) -> u32 {
    match m {
        LogicalMessage::Insert(i) => i.relation,
        LogicalMessage::Update(u) => u.relation,
        LogicalMessage::Delete(d) => d.relation,
        other => panic!("not a row change: {other:?}"),
    }
}

fn check_inserts(changes: &[&LogicalMessage], cache: &RelationCache) {
    let news: Vec<&TupleData> = changes
        .iter()
        .map(|m| match m {
            LogicalMessage::Insert(i) => &i.new,
            other => panic!("not an insert: {other:?}"),
        })
        .collect();
    assert_eq!(news.len(), 3);
    let t_default = cache.get(relation_oid(changes[0])).unwrap();
    assert_eq!(t_default.value(news[0], "id").unwrap(), Some(&text("1")));
    assert_eq!(
        t_default.value(news[0], "big").unwrap(),
        Some(&text(&"x".repeat(10000)))
    );
    assert_eq!(
        t_default.value(news[1], "name").unwrap(),
        Some(&Value::Null)
    );
    let t_full = cache.get(relation_oid(changes[2])).unwrap();
    assert_eq!(t_full.replica_identity, ReplicaIdentity::Full);
    assert_eq!(news[2].0, vec![text("1"), text("n1")]);
}

fn check_updates(changes: &[&LogicalMessage]) {
    let updates: Vec<_> = changes
        .iter()
        .map(|m| match m {
            LogicalMessage::Update(u) => u,
            other => panic!("not an update: {other:?}"),
        })
        .collect();
    assert_eq!(updates.len(), 3);
    // The key did not change: no old tuple; the TOASTed column untouched.
    assert_eq!(updates[0].old, None);
    assert_eq!(
        updates[0].new.0,
        vec![text("1"), text("b"), Value::UnchangedToast]
    );
    // The key changed: the old key, the other columns NULL.
    assert_eq!(
        updates[1].old,
        Some(OldTuple::Key(TupleData(vec![
            text("2"),
            Value::Null,
            Value::Null
        ])))
    );
    assert_eq!(
        updates[1].new.0,
        vec![text("3"), Value::Null, text("small")]
    );
    // REPLICA IDENTITY FULL: the whole old row.
    assert_eq!(
        updates[2].old,
        Some(OldTuple::Full(TupleData(vec![text("1"), text("n1")])))
    );
}

fn check_deletes(changes: &[&LogicalMessage]) {
    assert_eq!(changes.len(), 3, "{changes:?}");
    let LogicalMessage::Delete(d) = changes[0] else {
        panic!("not a delete")
    };
    assert_eq!(
        d.old,
        OldTuple::Key(TupleData(vec![text("3"), Value::Null, Value::Null]))
    );
    let LogicalMessage::Delete(d) = changes[1] else {
        panic!("not a delete")
    };
    assert_eq!(
        d.old,
        OldTuple::Full(TupleData(vec![text("1"), text("n2")]))
    );
    let LogicalMessage::Message(m) = changes[2] else {
        panic!("not a message")
    };
    assert!(m.transactional);
    assert_eq!(
        (m.prefix.as_str(), &m.content[..], m.xid),
        ("pgtrail", &b"x"[..], None)
    );
}
