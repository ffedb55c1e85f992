//! Writes a chained trail of `N` statement records, as pgtrail's writer
//! would link them, as ClickHouse RowBinary rows on stdout: the input of
//! `benches/verify_speed.sh`, which loads it and times `pgtrail verify`.
//!
//! `cargo run --release --example trail_gen -- 1000000 > rows.bin`, or
//! `-- 1000000 jsonl > audit.jsonl` for the same trail as JSON Lines.

use std::io::{BufWriter, Write};

use pgtrail::audit::chain::{Chainer, GENESIS};
use pgtrail::audit::event::Protocol;
use pgtrail::audit::record::{Record, RecordHeader, StatementRecord};
use pgtrail::audit::sink::clickhouse::rowbinary::encode_record;

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let jsonl = std::env::args().nth(2).as_deref() == Some("jsonl");
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut line = Vec::with_capacity(1024);
    let mut chainer = Chainer::new(GENESIS);
    let start = 1_796_000_000_000_000i64;
    for seq in 1..=n {
        let mut record = statement(seq, start + seq as i64 * 100);
        chainer.link(&mut record);
        if jsonl {
            line.clear();
            pgtrail::audit::record::json::write_record(&record, &mut line);
            line.push(b'\n');
            out.write_all(&line)?;
        } else {
            let row = encode_record(&record).map_err(std::io::Error::other)?;
            out.write_all(&row.row)?;
        }
    }
    out.flush()
}

/// A pgbench -S statement record, as the writer builds it.
fn statement(seq: u64, at: i64) -> Record {
    Record::Statement(Box::new(StatementRecord {
        header: RecordHeader {
            event_id: uuid::Uuid::from_u64_pair(0x01a2_28da_0000_7000 | (seq >> 48), seq),
            instance_id: "verify-bench".into(),
            seq,
            event_time: at,
            chain: None,
        },
        duration_us: 95,
        session_id: format!("01a228da-97d5-72f5-8cad-{:012x}", seq % 64),
        backend_pid: 4242,
        user: ["alice", "bob", "carol"][(seq % 3) as usize].into(),
        db_role: "app".into(),
        effective_role: "app".into(),
        database: "bench".into(),
        client_addr: "127.0.0.1".into(),
        client_port: 53074,
        application_name: "pgbench".into(),
        protocol: Protocol::Simple,
        statement: format!(
            "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
            seq * 7919 % 100_000
        ),
        statement_truncated: false,
        statement_escaped: false,
        fingerprint: 0x1234_5678,
        normalized: "SELECT abalance FROM pgbench_accounts WHERE aid = $1".into(),
        kind: "select".into(),
        class: "read".into(),
        crud: "R".into(),
        audit_class: "READ".into(),
        objects_read: vec!["public.pgbench_accounts".into()],
        objects_written: Vec::new(),
        functions: Vec::new(),
        parser: "sqlparser".into(),
        command_tag: "SELECT 1".into(),
        rows: 1,
        success: true,
        sqlstate: String::new(),
        error_message: String::new(),
        txn_status: "I".into(),
        transaction_id: uuid::Uuid::from_u64_pair(0x01a2_28da_0000_7000, seq),
        params: None,
        columns: Default::default(),
        end_user: Default::default(),
    }))
}
