//! Coverage and speed report over the regression-suite corpus.
//!
//! `cargo run --release --example corpus [-- PATH [SAMPLE_EVERY]]`
//! (default PATH: ../shared/corpus/statements.jsonl, then
//! /work/shared/corpus/statements.jsonl).

use pgtrail::sql::{
    analyze, analyze_pg_query_only, Analysis, Analyzer, AnalyzerConfig, Kind, Parser,
};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

struct Item {
    sql: String,
    std_off: bool,
    accepted: bool,
}

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

fn lead(a: &Analysis) -> String {
    a.normalized
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).cloned().unwrap_or_else(|| {
        let rel = "../shared/corpus/statements.jsonl";
        if std::path::Path::new(rel).exists() {
            rel.to_string()
        } else {
            "/work/shared/corpus/statements.jsonl".to_string()
        }
    });
    let data = match std::fs::read_to_string(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return;
        }
    };
    let mut items = Vec::new();
    for line in data.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(sql) = v.get("sql").and_then(|s| s.as_str()) else {
            continue;
        };
        let std_off = v
            .get("std_strings_off")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        let opts = if std_off {
            pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
        } else {
            pg_query::ParserOptions::DEFAULT
        };
        let accepted = v.get("psql_var").is_none() && pg_query::parse(sql, opts).is_ok();
        items.push(Item {
            sql: sql.to_string(),
            std_off,
            accepted,
        });
    }
    let cfg = AnalyzerConfig::default();
    let cfg_off = AnalyzerConfig {
        standard_conforming_strings: false,
        ..AnalyzerConfig::default()
    };
    let cfg_for = |it: &Item| if it.std_off { &cfg_off } else { &cfg };

    // Coverage.
    let (mut total, mut unknown, mut acc_total, mut acc_unknown) = (0usize, 0usize, 0usize, 0usize);
    let mut by_parser: HashMap<&'static str, usize> = HashMap::new();
    let mut fallback_kw: HashMap<String, (usize, String)> = HashMap::new();
    let mut lexer_kw: HashMap<String, (usize, String)> = HashMap::new();
    let mut unknown_examples = Vec::new();
    let mut results: Vec<Vec<Analysis>> = Vec::with_capacity(items.len());
    for it in &items {
        let r = analyze(it.sql.as_bytes(), cfg_for(it));
        for a in &r {
            total += 1;
            *by_parser.entry(a.parser.as_str()).or_default() += 1;
            if a.kind == Kind::Unknown {
                unknown += 1;
            }
            if it.accepted {
                acc_total += 1;
                if a.kind == Kind::Unknown {
                    acc_unknown += 1;
                    if unknown_examples.len() < 20 {
                        unknown_examples
                            .push(a.statement.text.chars().take(100).collect::<String>());
                    }
                }
            }
            if a.parser != Parser::Sqlparser {
                let e = fallback_kw
                    .entry(lead(a))
                    .or_insert((0, a.statement.text.chars().take(80).collect()));
                e.0 += 1;
            }
            if a.parser == Parser::Lexer {
                let e = lexer_kw.entry(lead(a)).or_insert((
                    0,
                    format!(
                        "{} | {}",
                        a.statement.text.chars().take(60).collect::<String>(),
                        a.parser_note
                            .clone()
                            .unwrap_or_default()
                            .chars()
                            .take(100)
                            .collect::<String>()
                    ),
                ));
                e.0 += 1;
            }
        }
        results.push(r);
    }
    println!("corpus: {path}");
    println!("texts: {}, statements: {total}", items.len());
    println!(
        "classified (kind != unknown): {:.3}% ({} unknown)",
        100.0 * (total - unknown) as f64 / total.max(1) as f64,
        unknown
    );
    println!("accepted by PostgreSQL's grammar (no psql vars): {acc_total} statements, unknown among them: {acc_unknown}");
    for e in &unknown_examples {
        println!("   unknown: {e:?}");
    }
    for p in ["sqlparser", "pg_query", "lexer"] {
        let n = by_parser.get(p).copied().unwrap_or(0);
        println!(
            "path {p:10}: {n:6} ({:.2}%)",
            100.0 * n as f64 / total.max(1) as f64
        );
    }
    let mut fk: Vec<_> = fallback_kw.into_iter().collect();
    fk.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
    println!("\ntop 25 leading keywords among fallbacks (pg_query + lexer):");
    for (k, (n, ex)) in fk.iter().take(25) {
        println!("  {n:6}  {k:28} e.g. {ex:?}");
    }
    let mut lk: Vec<_> = lexer_kw.into_iter().collect();
    lk.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
    println!("\ntop 25 leading keywords on the lexer path:");
    for (k, (n, ex)) in lk.iter().take(25) {
        println!("  {n:6}  {k:28} e.g. {ex:?}");
    }

    // Agreement of objects with pg_query on DML answered by sqlparser.
    let (mut dml, mut agree, mut fagree) = (0usize, 0usize, 0usize);
    let mut fdis: Vec<String> = Vec::new();
    let mut disagreements = Vec::new();
    for (it, r) in items.iter().zip(&results) {
        if !it.accepted
            || !r
                .iter()
                .any(|a| a.parser == Parser::Sqlparser && a.kind.is_dml())
        {
            continue;
        }
        let o = analyze_pg_query_only(it.sql.as_bytes(), cfg_for(it));
        for (a, b) in r.iter().zip(&o) {
            if a.parser != Parser::Sqlparser || !a.kind.is_dml() || b.parser != Parser::PgQuery {
                continue;
            }
            dml += 1;
            if set(&a.functions) == set(&b.functions) {
                fagree += 1;
            } else if fdis.len() < 12 {
                fdis.push(format!(
                    "{:?} sqlparser {:?} pg_query {:?}",
                    a.statement.text.chars().take(90).collect::<String>(),
                    a.functions,
                    b.functions
                ));
            }
            if set(&a.objects_read) == set(&b.objects_read)
                && set(&a.objects_written) == set(&b.objects_written)
            {
                agree += 1;
            } else if disagreements.len() < 15 {
                disagreements.push(format!(
                    "{:?}\n      sqlparser r={:?} w={:?}\n      pg_query  r={:?} w={:?}",
                    a.statement.text.chars().take(160).collect::<String>(),
                    a.objects_read,
                    a.objects_written,
                    b.objects_read,
                    b.objects_written
                ));
            }
        }
    }
    println!(
        "\nobjects agree with pg_query on DML (sqlparser path): {agree}/{dml} = {:.3}%",
        100.0 * agree as f64 / dml.max(1) as f64
    );
    for d in &disagreements {
        println!("  {d}");
    }
    println!(
        "functions agree with pg_query on the same DML: {fagree}/{dml} = {:.3}%",
        100.0 * fagree as f64 / dml.max(1) as f64
    );
    for d in &fdis {
        println!("  {d}");
    }

    // Speed, one core.
    let mut times: Vec<u64> = Vec::with_capacity(total);
    let mut by_path: HashMap<&'static str, (u64, usize)> = HashMap::new();
    let t0 = Instant::now();
    let mut n = 0usize;
    for it in &items {
        let t = Instant::now();
        let r = analyze(it.sql.as_bytes(), cfg_for(it));
        let ns = t.elapsed().as_nanos() as u64;
        times.push(ns);
        if let Some(a) = r.first() {
            let e = by_path.entry(a.parser.as_str()).or_default();
            e.0 += ns;
            e.1 += 1;
        }
        n += r.len();
    }
    let el = t0.elapsed().as_secs_f64();
    times.sort_unstable();
    let p = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!("\nuncached: {n} statements in {el:.2}s = {:.0} stmts/s; per text p50 {} us, p99 {} us, max {} us", n as f64 / el, p(0.5) / 1000, p(0.99) / 1000, p(1.0) / 1000);

    for p in ["sqlparser", "pg_query", "lexer"] {
        let (ns, c) = by_path.get(p).copied().unwrap_or((0, 0));
        println!(
            "  time on {p:9} texts: {:.2}s, mean {:.1} us ({c} texts)",
            ns as f64 / 1e9,
            ns as f64 / 1e3 / c.max(1) as f64
        );
    }
    let an = Analyzer::new(AnalyzerConfig {
        cache_entries: 100_000,
        ..AnalyzerConfig::default()
    });
    for it in &items {
        let _ = an.analyze(it.sql.as_bytes());
    }
    let t0 = Instant::now();
    let mut n = 0usize;
    for it in &items {
        n += an.analyze(it.sql.as_bytes()).len();
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "cached (corpus second pass): {:.0} stmts/s ({:?})",
        n as f64 / el,
        an.cache_stats()
    );

    let an = Analyzer::new(AnalyzerConfig::default());
    let texts: Vec<String> = (0..1000u64)
        .map(|i| {
            format!(
                "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
                i.wrapping_mul(7919) % 100_000
            )
        })
        .collect();
    let reps = 1_000_000usize;
    let t0 = Instant::now();
    for i in 0..reps {
        let _ = an.analyze(texts[i % texts.len()].as_bytes());
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "cached, repeated shape (pgbench -S, varying literal): {:.0} stmts/s",
        reps as f64 / el
    );
    let t0 = Instant::now();
    for _ in 0..reps {
        let _ = an.analyze(texts[0].as_bytes());
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "cached, identical text: {:.0} stmts/s ({:?})",
        reps as f64 / el,
        an.cache_stats()
    );
}
