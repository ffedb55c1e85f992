//! Criterion benches: what deciding on attribution markers costs the
//! relay's tracker per Query (`Tracker::marker_for`, called for every
//! client frame when `cdc.enabled`): a pgbench -S read in autocommit
//! (nothing to mark; the text is not lexed), an autocommit write
//! (wrapped), and pgbench -N's second write in a block (a marker before
//! it).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgtrail::session::tracker::{SessionClock, Tracker};

mod common;
use common::session;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tracker() -> Tracker {
    Tracker::new(session(), SessionClock::now(), false)
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("marker_for");
    let select = cstr("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;");
    let mut t = tracker();
    g.bench_function("select_autocommit", |b| {
        b.iter(|| black_box(t.marker_for(b'Q', black_box(&select))))
    });
    let insert = cstr(
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, -2291, CURRENT_TIMESTAMP);",
    );
    let mut t = tracker();
    g.bench_function("insert_autocommit", |b| {
        b.iter(|| black_box(t.marker_for(b'Q', black_box(&insert))))
    });
    // pgbench -N's INSERT: in a block, after the UPDATE (a marker before
    // it).
    let mut t = tracker();
    let now = std::time::Instant::now();
    let in_block = [
        (b'Q', cstr("BEGIN")),
        (b'C', cstr("BEGIN")),
        (b'Z', b"T".to_vec()),
    ];
    t.client_frame(in_block[0].0, &in_block[0].1, now).unwrap();
    t.server_frame(in_block[1].0, &in_block[1].1, now).unwrap();
    t.server_frame(in_block[2].0, &in_block[2].1, now).unwrap();
    let update = cstr("UPDATE pgbench_accounts SET abalance = abalance + -2291 WHERE aid = 48213;");
    t.marker_for(b'Q', &update);
    g.bench_function("insert_in_block", |b| {
        b.iter(|| black_box(t.marker_for(b'Q', black_box(&insert))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
