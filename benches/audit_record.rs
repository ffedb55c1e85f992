//! Criterion benches: what the audit writer thread spends on one pgbench -S
//! statement: building the record from the relay's event (classification
//! through the warm analyzer cache, a different literal every call), encoding
//! it as a JSON line (pgtrail's encoder and, for comparison, serde_json's)
//! and as a ClickHouse RowBinary row.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgtrail::audit::build::RecordBuilder;
use pgtrail::audit::chain::{canonical, Chainer, GENESIS};
use pgtrail::audit::event::{AuditEvent, Protocol, SessionInfo, StatementEvent};
use pgtrail::audit::record::json::write_record;
use pgtrail::audit::sink::clickhouse::rowbinary::encode_record;
use pgtrail::sql::{Analyzer, AnalyzerConfig};

/// The allocator of the pgtrail binary: allocation is much of the cost.
mod common;
use common::session;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The event the relay sends for one `pgbench -S -M simple` transaction.
fn event(session: &Arc<SessionInfo>, text: &Bytes) -> AuditEvent {
    AuditEvent::Statement(Box::new(StatementEvent {
        session: session.clone(),
        application_name: Arc::from("pgbench"),
        protocol: Protocol::Simple,
        text: text.clone(),
        statement_index: 0,
        params: None,
        started_at: SystemTime::now(),
        duration_us: 95,
        command_tag: Some("SELECT 1".into()),
        rows: Some(1),
        failure: None,
        txn_status: pgtrail::audit::event::TxnStatus::Idle,
        transaction: Default::default(),
        end_user: Default::default(),
    }))
}

fn bench(c: &mut Criterion) {
    let session = session();
    let texts: Vec<Bytes> = (0..1024)
        .map(|i| {
            Bytes::from(format!(
                "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
                i * 7919 % 100_000
            ))
        })
        .collect();
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let mut builder = RecordBuilder::new(
        "01a228da-91ff-701a-b514-7a538ed1a46d".into(),
        65536,
        analyzer,
    );
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % texts.len();
        event(&session, &texts[i])
    };
    c.bench_function("record/build", |b| {
        b.iter(|| builder.build(black_box(next())))
    });
    let record = builder.build(next());
    let mut line = Vec::with_capacity(4096);
    c.bench_function("record/jsonl_encode", |b| {
        b.iter(|| {
            line.clear();
            write_record(black_box(&record), &mut line);
            line.len()
        })
    });
    // The serde derive the hand-written encoder replaced, for comparison.
    c.bench_function("record/jsonl_encode_serde", |b| {
        b.iter(|| {
            line.clear();
            serde_json::to_writer(&mut line, black_box(&record)).map(|()| line.len())
        })
    });
    c.bench_function("record/rowbinary_encode", |b| {
        b.iter(|| encode_record(black_box(&record)).map(|row| row.row.len()))
    });
    // Tamper evidence: the writer links every record (canonical bytes and
    // one SHA-256 over them and the previous value).
    let mut chainer = Chainer::new(GENESIS);
    let mut linked = record.clone();
    c.bench_function("record/chain_link", |b| {
        b.iter(|| {
            chainer.link(black_box(&mut linked));
            linked.header().chain
        })
    });
    // The same record naming an end user, as an unsigned sqlcommenter
    // comment does (issue 18): what recording the claim adds.
    let mut claimed = record.clone();
    if let pgtrail::audit::record::Record::Statement(s) = &mut claimed {
        s.end_user = Arc::new(pgtrail::identity::EndUser {
            end_user: "alice@example.com".into(),
            end_user_source: pgtrail::identity::Source::Comment,
            end_user_verified: false,
            end_user_reason: "not signed".into(),
            request_id: "r-42".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        });
    }
    c.bench_function("record/jsonl_encode_end_user", |b| {
        b.iter(|| {
            line.clear();
            write_record(black_box(&claimed), &mut line);
            line.len()
        })
    });
    c.bench_function("record/chain_link_end_user", |b| {
        b.iter(|| {
            chainer.link(black_box(&mut claimed));
            claimed.header().chain
        })
    });
    let mut bytes = Vec::with_capacity(1024);
    c.bench_function("record/canonical_encode", |b| {
        b.iter(|| {
            bytes.clear();
            canonical::encode(black_box(&record), &mut bytes);
            bytes.len()
        })
    });
    bytes.clear();
    canonical::encode(&record, &mut bytes);
    println!("canonical bytes of the statement record: {}", bytes.len());
    let mut prev = [0u8; 32];
    c.bench_function("record/sha256_sha2", |b| {
        b.iter(|| {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(prev);
            h.update(black_box(&bytes));
            prev = h.finalize().into();
        })
    });
    c.bench_function("record/sha256_ring", |b| {
        b.iter(|| {
            let mut h = ring::digest::Context::new(&ring::digest::SHA256);
            h.update(&prev);
            h.update(black_box(&bytes));
            prev.copy_from_slice(h.finish().as_ref());
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
