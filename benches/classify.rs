//! Criterion benches: a pgbench-style SELECT, a 50-line join and a
//! 200-row INSERT, uncached and through the cache.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgtrail::sql::{analyze, Analyzer, AnalyzerConfig};

fn join_50_lines() -> String {
    let mut s =
        String::from("SELECT o.id, o.created_at, c.name, c.email, p.title, p.price, s.status\n");
    s.push_str("FROM orders o\n");
    for i in 0..20 {
        s.push_str(&format!(
            "  LEFT JOIN aux_{i} a{i} ON a{i}.order_id = o.id AND a{i}.kind = {i}\n"
        ));
    }
    s.push_str("  JOIN customers c ON c.id = o.customer_id\n  JOIN products p ON p.id = o.product_id\n  JOIN shipments s ON s.order_id = o.id\n");
    s.push_str("WHERE o.created_at > now() - interval '7 days'\n");
    for i in 0..20 {
        s.push_str(&format!("  AND (a{i}.value IS NULL OR a{i}.value > {i})\n"));
    }
    s.push_str("ORDER BY o.created_at DESC\nLIMIT 100");
    s
}

fn insert_200_rows() -> String {
    let mut s = String::from("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ");
    for i in 0..200 {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!(
            "({}, {}, {}, {}, CURRENT_TIMESTAMP)",
            i % 10,
            i % 3,
            i * 17,
            i as i64 - 100
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let cfg = AnalyzerConfig::default();
    let pgbench = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
    let join = join_50_lines();
    let insert = insert_200_rows();
    let cases: [(&str, &str); 3] = [
        ("pgbench_select", pgbench),
        ("join_50_lines", &join),
        ("insert_200_rows", &insert),
    ];
    for (name, sql) in cases {
        c.bench_function(&format!("{name}/uncached"), |b| {
            b.iter(|| analyze(black_box(sql.as_bytes()), &cfg))
        });
        let an = Analyzer::new(cfg.clone());
        c.bench_function(&format!("{name}/cached"), |b| {
            b.iter(|| an.analyze(black_box(sql.as_bytes())))
        });
    }
    // cached with a different literal every call (same shape)
    let an = Analyzer::new(cfg.clone());
    let texts: Vec<String> = (0..1024)
        .map(|i| {
            format!(
                "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
                i * 7919 % 100_000
            )
        })
        .collect();
    let mut i = 0usize;
    c.bench_function("pgbench_select/cached_varying_literal", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            an.analyze(black_box(texts[i].as_bytes()))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
