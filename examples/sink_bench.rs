//! Throughput of the ClickHouse sink: records per second from a generator
//! into a running ClickHouse, and bytes per row on disk.
//!
//!   cargo build --release --example sink_bench
//!   target/release/examples/sink_bench --url http://127.0.0.1:8123 \
//!       --records 1000000 --batch-rows 10000 --mode memory
//!
//! (benches/sink.sh starts a throw-away ClickHouse and runs the matrix.)
//!
//! What it does:
//! 1. Builds a pool of realistic statement records (not timed) with the real
//!    `RecordBuilder` and SQL analyzer: pgbench-like shapes (SELECT by key,
//!    the three UPDATEs, INSERT INTO pgbench_history, BEGIN/END), a few longer
//!    statements (a reporting CTE with joins, a multi-row INSERT, DDL), some
//!    failures (42P01, 23505), 8 users over 3 databases and many sessions.
//! 2. Starts the real `ClickHouseSink`: in memory (`ClickHouseSink::start`)
//!    or through a durable spool in a temporary directory (`SpooledClickHouseSink`,
//!    as `server::start_audit` opens it), and waits until the schema exists.
//! 3. Timed: writes `--records` records (each a pool record with a fresh
//!    seq, UUIDv7 event id and event time), calling `flush()` once per
//!    `--round-ms` like the audit writer does after each drain round (in
//!    spooled mode that is the group-commit fsync), then polls
//!    `SELECT count()` until ClickHouse has every row. Records/s = records /
//!    (first write .. all rows counted).
//! 4. `OPTIMIZE TABLE statements FINAL`, then bytes per row from
//!    `system.parts` (sum(bytes_on_disk) / sum(rows), active parts) and the
//!    uncompressed size per row from `system.columns`.
//!
//! Prints one `key=value` line (prefix `RESULT`) for scripts.

// The same allocator as the pgtrail binary (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use clickhouse::{Client, Compression};

use pgtrail::audit::build::RecordBuilder;
use pgtrail::audit::event::TxnStatus;
use pgtrail::audit::record::{micros_since_epoch, Record};
use pgtrail::audit::sink::clickhouse::{ClickHouseSink, SpooledClickHouseSink};
use pgtrail::audit::spool::{Spool, SpoolOptions};
use pgtrail::audit::{
    AuditEvent, AuditSink, Failure, Offer, Protocol, Room, SessionInfo, StatementEvent,
};
use pgtrail::config::ClickHouseConfig;
use pgtrail::sql::{Analyzer, AnalyzerConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `ClickHouseSink::start`: rows go through the in-memory channel.
    Memory,
    /// `SpooledClickHouseSink::start`: records go through the durable spool.
    Spooled,
}

#[derive(Parser, Debug)]
#[command(about = "ClickHouse sink throughput and bytes per row")]
struct Args {
    /// ClickHouse HTTP URL.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    url: String,
    /// Records to send.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// `clickhouse.batch_rows`.
    #[arg(long, default_value_t = 10_000)]
    batch_rows: usize,
    /// `clickhouse.batch_ms`.
    #[arg(long, default_value_t = 1000)]
    batch_ms: u64,
    #[arg(long, value_enum, default_value_t = Mode::Memory)]
    mode: Mode,
    /// Database for the tables; dropped and recreated by the sink first.
    #[arg(long, default_value = "pgtrail_bench")]
    database: String,
    /// Spool directory (spooled mode); default: a temporary directory.
    #[arg(long)]
    spool_dir: Option<PathBuf>,
    /// `audit.spool_segment_bytes`.
    #[arg(long, default_value_t = 64 << 20)]
    spool_segment_bytes: u64,
    /// `flush()` the sink this often while writing (the audit writer's round).
    #[arg(long, default_value_t = 2)]
    round_ms: u64,
    /// Distinct records built up front and re-stamped while writing.
    #[arg(long, default_value_t = 50_000)]
    pool: usize,
    /// Give up waiting for ClickHouse after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
    /// Keep the database afterwards.
    #[arg(long)]
    keep: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("sink_bench: {e}");
        std::process::exit(1);
    }
}

/// Small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const USERS: [&str; 8] = [
    "app",
    "app",
    "app",
    "reporting",
    "alice",
    "bob",
    "etl_loader",
    "postgres",
];
const DATABASES: [&str; 3] = ["shop", "shop", "analytics"];
const APPS: [&str; 4] = ["pgbench", "orders-api", "psql", "metabase"];

const REPORT: &str = "WITH recent AS (\n    SELECT o.customer_id, sum(li.quantity * li.unit_price) AS revenue, count(DISTINCT o.id) AS orders\n    FROM orders o\n    JOIN line_items li ON li.order_id = o.id\n    WHERE o.created_at >= now() - interval '30 days' AND o.status <> 'cancelled'\n    GROUP BY o.customer_id\n)\nSELECT c.id, c.email, c.country, r.revenue, r.orders,\n       rank() OVER (PARTITION BY c.country ORDER BY r.revenue DESC) AS country_rank\nFROM recent r\nJOIN customers c ON c.id = r.customer_id\nLEFT JOIN customer_flags f ON f.customer_id = c.id AND f.flag = 'vip'\nWHERE r.revenue > 1000\nORDER BY r.revenue DESC\nLIMIT 100";

/// One statement of the mix: text, command tag, rows, failure, txn status.
fn statement(rng: &mut Rng) -> (String, String, u64, Option<Failure>, u8) {
    let aid = 1 + rng.below(1_000_000);
    let tid = 1 + rng.below(100);
    let bid = 1 + rng.below(10);
    let delta = rng.below(10_001) as i64 - 5000;
    let r = rng.below(1000);
    let ok = |t: String, tag: &str, rows: u64, txn: u8| (t, tag.to_string(), rows, None, txn);
    match r {
        0..=449 => ok(
            format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid}"),
            "SELECT 1",
            1,
            b'I',
        ),
        450..=539 => ok("BEGIN".into(), "BEGIN", 0, b'T'),
        540..=629 => ok(
            format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid}"),
            "UPDATE 1",
            1,
            b'T',
        ),
        630..=719 => ok(
            format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}"),
            "UPDATE 1",
            1,
            b'T',
        ),
        720..=809 => ok(
            format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid}"),
            "UPDATE 1",
            1,
            b'T',
        ),
        810..=899 => ok(
            format!("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP)"),
            "INSERT 0 1",
            1,
            b'T',
        ),
        900..=979 => ok("END".into(), "COMMIT", 0, b'I'),
        980..=987 => ok(REPORT.to_string(), "SELECT 100", 100, b'I'),
        988..=991 => {
            // A multi-row INSERT of ~2 KB.
            let mut t = String::from(
                "INSERT INTO events (account_id, kind, payload, created_at) VALUES ",
            );
            let n = 20 + rng.below(10);
            for i in 0..n {
                if i > 0 {
                    t.push_str(", ");
                }
                t.push_str(&format!(
                    "({}, 'page_view', '{{\"path\": \"/product/{}\", \"ref\": \"campaign-{}\"}}', now())",
                    aid + i,
                    rng.below(50_000),
                    rng.below(40)
                ));
            }
            (t, format!("INSERT 0 {n}"), n, None, b'I')
        }
        992..=994 => ok(
            format!("SELECT id, email, created_at FROM customers WHERE email = 'user{aid}@example.com'"),
            "SELECT 1",
            1,
            b'I',
        ),
        995..=996 => (
            format!("SELECT * FROM pgbench_acounts WHERE aid = {aid}"),
            String::new(),
            0,
            Some(Failure {
                sqlstate: "42P01".into(),
                message: "relation \"pgbench_acounts\" does not exist".into(),
                position: Some(15),
            }),
            b'I',
        ),
        997 => (
            format!("INSERT INTO customers (id, email) VALUES ({aid}, 'user{aid}@example.com')"),
            String::new(),
            0,
            Some(Failure {
                sqlstate: "23505".into(),
                message: "duplicate key value violates unique constraint \"customers_pkey\"".into(),
                position: None,
            }),
            b'I',
        ),
        998 => ok(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at)".into(),
            "CREATE INDEX",
            0,
            b'I',
        ),
        _ => ok("SET application_name = 'orders-api'".into(), "SET", 0, b'I'),
    }
}

/// Records as the audit writer would build them from real events.
fn build_pool(n: usize, instance_id: &str) -> Vec<Record> {
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let mut builder = RecordBuilder::new(instance_id.to_string(), 1 << 20, analyzer);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sessions: Vec<Arc<SessionInfo>> = Vec::new();
    for i in 0..200u64 {
        let user = USERS[(i % USERS.len() as u64) as usize];
        sessions.push(Arc::new(SessionInfo {
            session_id: uuid::Uuid::now_v7().to_string(),
            backend_pid: 0,
            user: user.into(),
            db_role: user.into(),
            database: DATABASES[(i % 3) as usize].into(),
            client_addr: format!("10.0.{}.{}", i / 50, 10 + i % 50)
                .parse()
                .expect("address"),
            client_port: 40_000 + i as u16,
            application_name: APPS[(i % 4) as usize].into(),
            tls: i % 2 == 0,
            auth_method: "scram-sha-256".into(),
            startup_identity: Default::default(),
        }));
    }
    let now = SystemTime::now();
    (0..n)
        .map(|i| {
            let session = sessions[rng.below(sessions.len() as u64) as usize].clone();
            let (text, tag, rows, failure, txn) = statement(&mut rng);
            let protocol = if i % 3 == 0 {
                Protocol::Simple
            } else {
                Protocol::Extended
            };
            let event = StatementEvent {
                application_name: session.application_name.as_str().into(),
                session,
                protocol,
                text: Bytes::from(text),
                statement_index: 0,
                params: None,
                started_at: now,
                duration_us: 40 + rng.below(400) + if rows > 1 { 20_000 } else { 0 },
                command_tag: (!tag.is_empty()).then_some(tag),
                rows: Some(rows),
                failure,
                txn_status: match txn {
                    b'T' => TxnStatus::InBlock,
                    b'E' => TxnStatus::Failed,
                    _ => TxnStatus::Idle,
                },
                transaction: Default::default(),
                end_user: Default::default(),
            };
            builder.build(AuditEvent::Statement(Box::new(event)))
        })
        .collect()
}

/// Gives record `i` of the run its own seq, event id and time.
fn restamp(record: &mut Record, seq: u64, at: SystemTime, seed: u64) {
    let Record::Statement(s) = record else {
        return;
    };
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&(seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
    random[8..].copy_from_slice(&(seq as u16).to_be_bytes());
    s.header.seq = seq;
    s.header.event_id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    s.header.event_time = micros_since_epoch(at);
}

fn run(args: &Args) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let admin = Client::default()
        .with_url(&args.url)
        .with_compression(Compression::None);
    let db = &args.database;
    let query_u64 = |sql: String| -> Result<u64, String> {
        rt.block_on(admin.query(&sql).fetch_one::<u64>())
            .map_err(|e| format!("{sql}: {e}"))
    };
    let execute = |sql: String| -> Result<(), String> {
        rt.block_on(admin.query(&sql).execute())
            .map_err(|e| format!("{sql}: {e}"))
    };
    let version: String = rt
        .block_on(admin.query("SELECT version()").fetch_one::<String>())
        .map_err(|e| format!("ClickHouse at {}: {e}", args.url))?;
    execute(format!("DROP DATABASE IF EXISTS {db}"))?;

    let instance_id = uuid::Uuid::now_v7().to_string();
    let t = Instant::now();
    let mut pool = build_pool(args.pool.max(1), &instance_id);
    let pool_s = t.elapsed().as_secs_f64();
    let avg_text: f64 = pool
        .iter()
        .map(|r| match r {
            Record::Statement(s) => s.statement.len() as f64,
            _ => 0.0,
        })
        .sum::<f64>()
        / pool.len() as f64;
    eprintln!(
        "sink_bench: ClickHouse {version}; pool of {} records built in {pool_s:.2}s (avg statement {avg_text:.0} bytes); mode {:?}, batch_rows {}, {} records",
        pool.len(),
        args.mode,
        args.batch_rows,
        args.records
    );

    let config = ClickHouseConfig {
        database: db.clone(),
        batch_rows: args.batch_rows,
        batch_ms: args.batch_ms,
        ..ClickHouseConfig::default()
    };
    let _tmp;
    let (mut sink, stats): (Box<dyn AuditSink>, _) = match args.mode {
        Mode::Memory => ClickHouseSink::start(&args.url, &config).map(|s| {
            let stats = s.stats_handle();
            (Box::new(s) as Box<dyn AuditSink>, stats)
        }),
        Mode::Spooled => {
            let dir = match &args.spool_dir {
                Some(d) => d.clone(),
                None => {
                    let t = tempfile::tempdir().map_err(|e| e.to_string())?;
                    let p = t.path().join("spool");
                    _tmp = t;
                    p
                }
            };
            let spool = Spool::open(
                &dir,
                SpoolOptions {
                    max_bytes: u64::MAX / 2,
                    segment_bytes: args.spool_segment_bytes,
                },
            )
            .map_err(|e| format!("spool {}: {e}", dir.display()))?;
            let id = instance_id.clone();
            SpooledClickHouseSink::start(&args.url, &config, spool.writer, spool.reader, id).map(
                |s| {
                    let stats = s.stats_handle();
                    (Box::new(s) as Box<dyn AuditSink>, stats)
                },
            )
        }
    }
    .map_err(|e| format!("sink: {e}"))?;

    // The sender thread creates the schema; start the clock once it exists.
    let ready = Instant::now();
    while query_u64(format!(
        "SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'statements'"
    ))? == 0
    {
        if ready.elapsed() > Duration::from_secs(60) {
            return Err("the sink did not create the schema within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));

    let count_sql =
        format!("SELECT count() FROM {db}.statements WHERE instance_id = '{instance_id}'");
    let seed = 0x5EED_u64 ^ u64::from(std::process::id());
    let base = SystemTime::now();
    let round = Duration::from_millis(args.round_ms.max(1));
    let start = Instant::now();
    let mut last_flush = start;
    let mut flushes = 0u64;
    for i in 0..args.records {
        let record = &mut pool[(i % args.pool.max(1) as u64) as usize];
        // Events 5 µs apart, as from a busy server.
        restamp(record, i + 1, base + Duration::from_micros(i * 5), seed);
        match sink.offer(record, i + 2, Room::WithinLimit) {
            Offer::Taken => {}
            Offer::Full => return Err("write: the sink is full".into()),
            Offer::Failing(e) => return Err(format!("write: {e}")),
        }
        if i % 64 == 0 && last_flush.elapsed() >= round {
            sink.flush().map_err(|e| format!("flush: {e}"))?;
            last_flush = Instant::now();
            flushes += 1;
        }
    }
    sink.flush().map_err(|e| format!("flush: {e}"))?;
    flushes += 1;
    let written_s = start.elapsed().as_secs_f64();
    let mut seen;
    loop {
        seen = query_u64(count_sql.clone())?;
        if seen >= args.records {
            break;
        }
        if start.elapsed() > Duration::from_secs(args.timeout_s) {
            return Err(format!(
                "timeout: ClickHouse has {seen} of {} rows after {} s",
                args.records, args.timeout_s
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let total_s = start.elapsed().as_secs_f64();
    let (batches, failed) = {
        let s = &stats;
        use std::sync::atomic::Ordering::Relaxed;
        (s.batches_sent.load(Relaxed), s.batches_failed.load(Relaxed))
    };
    drop(sink);

    // OPTIMIZE returns at once, doing nothing, while a background merge
    // holds the parts: repeat until each partition is one part.
    let parts =
        format!("FROM system.parts WHERE database = '{db}' AND table = 'statements' AND active");
    let t = Instant::now();
    for _ in 0..120 {
        execute(format!("OPTIMIZE TABLE {db}.statements FINAL"))?;
        let n = query_u64(format!("SELECT count() {parts}"))?;
        let partitions = query_u64(format!("SELECT uniqExact(partition) {parts}"))?;
        if n <= partitions {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let optimize_s = t.elapsed().as_secs_f64();
    let after = query_u64(count_sql)?;
    let disk = query_u64(format!("SELECT sum(bytes_on_disk) {parts}"))?;
    let rows = query_u64(format!("SELECT sum(rows) {parts}"))?;
    let nparts = query_u64(format!("SELECT count() {parts}"))?;
    let cols = format!("FROM system.columns WHERE database = '{db}' AND table = 'statements'");
    let uncompressed = query_u64(format!("SELECT sum(data_uncompressed_bytes) {cols}"))?;
    let compressed = query_u64(format!("SELECT sum(data_compressed_bytes) {cols}"))?;
    if !args.keep {
        execute(format!("DROP DATABASE IF EXISTS {db}"))?;
    }

    let per_row = |b: u64| {
        if rows > 0 {
            b as f64 / rows as f64
        } else {
            0.0
        }
    };
    println!(
        "RESULT mode={} batch_rows={} records={} write_s={written_s:.3} total_s={total_s:.3} records_per_s={:.0} write_records_per_s={:.0} batches={batches} failed_batches={failed} flushes={flushes} rows_in_clickhouse={seen} rows_after_optimize={after} parts={nparts} bytes_on_disk={disk} bytes_per_row={:.1} compressed_per_row={:.1} uncompressed_per_row={:.1} avg_statement_bytes={avg_text:.0} optimize_s={optimize_s:.2}",
        match args.mode {
            Mode::Memory => "memory",
            Mode::Spooled => "spooled",
        },
        args.batch_rows,
        args.records,
        args.records as f64 / total_s,
        args.records as f64 / written_s,
        per_row(disk),
        per_row(compressed),
        per_row(uncompressed),
    );
    Ok(())
}
