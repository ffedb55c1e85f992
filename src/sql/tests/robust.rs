//! Unit tests: robustness (deep nesting, invalid UTF-8, random bytes,
//! pathological and huge inputs) and the pg_query oracle over the shared
//! corpus (skipped if absent).

use super::props::{fill, Rng, TEMPLATES};
use crate::sql::*;
use std::collections::BTreeSet;

fn cfg() -> AnalyzerConfig {
    AnalyzerConfig::default()
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

// ---------- robustness ----------

#[test]
fn deep_nesting_does_not_crash() {
    for depth in [10usize, 45, 60, 199, 201, 300, 100_000] {
        let s = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let v = analyze(s.as_bytes(), &cfg());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].kind, Kind::Select);
        let s = format!(
            "SELECT * FROM t WHERE a IN {}",
            "(SELECT 1 FROM u WHERE b IN ".repeat(depth.min(2000))
        );
        let _ = analyze(s.as_bytes(), &cfg());
        let s = "[".repeat(depth) + &"(".repeat(depth);
        let _ = analyze(s.as_bytes(), &cfg());
    }
}

#[test]
fn invalid_utf8_is_lossless() {
    let text = b"SELECT '\xff\xfe' FROM t WHERE a = 'x\\y'";
    let v = analyze(text, &cfg());
    assert_eq!(v.len(), 1);
    let a = &v[0];
    assert_eq!(a.parser, Parser::Lexer);
    assert!(a.statement.escaped);
    assert_eq!(a.statement.to_bytes(), text.to_vec());
    assert_eq!(a.kind, Kind::Select);
    assert_eq!(a.objects_read, vec!["t".to_string()]);
    let ok = StatementText::from_bytes("SELECT 'é\\x'".as_bytes());
    assert!(!ok.escaped);
    assert_eq!(ok.to_bytes(), "SELECT 'é\\x'".as_bytes());
}

#[test]
fn random_bytes_never_panic() {
    let mut r = Rng(0x5eed);
    let alphabet: &[u8] =
        b"'\"$E&U:;()[]/*-+=<>!,.0123456789eExXbB_ \n\t\\abcSELECTFROMWHERE\xff\xc3\x80";
    for _ in 0..3000 {
        let n = (r.next() % 80) as usize;
        let s: Vec<u8> = (0..n)
            .map(|_| alphabet[(r.next() % alphabet.len() as u64) as usize])
            .collect();
        let v = analyze(&s, &cfg());
        for a in &v {
            // the recorded text is always the statement's bytes, losslessly
            assert!(!a.statement.text.is_empty());
            let again = analyze(a.normalized.as_bytes(), &cfg());
            assert!(again.len() <= 1 || a.parser == Parser::Lexer);
        }
    }
    for t in TEMPLATES {
        let s = fill(t, &mut r);
        for cut in 0..s.len() {
            if s.is_char_boundary(cut) {
                let _ = analyze(&s.as_bytes()[..cut], &cfg());
            }
        }
    }
}

#[test]
fn pathological_inputs_are_bounded() {
    // many unclosed IN lists, unterminated quotes and dollar tags
    let n = 200_000;
    let inputs = [
        "a in (".repeat(n),
        "WITH x AS (".repeat(n / 4),
        "'".to_string() + &"x".repeat(n),
        "$a$".to_string() + &"$b".repeat(n),
        "/*".repeat(n),
        "VALUES (1), ".repeat(n / 4),
        "E'\\".repeat(n),
    ];
    for s in inputs {
        let t = std::time::Instant::now();
        let v = analyze(s.as_bytes(), &cfg());
        assert!(v.len() <= 1);
        assert!(t.elapsed().as_secs() < 30, "too slow");
    }
}

#[test]
fn huge_statement_goes_to_lexer() {
    let mut s = String::from("INSERT INTO big_t VALUES ");
    while s.len() < 2 << 20 {
        s.push_str("(1, 'abc'), ");
    }
    s.push_str("(2, 'x')");
    let t = std::time::Instant::now();
    let v = analyze(s.as_bytes(), &cfg());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].parser, Parser::Lexer);
    assert_eq!(v[0].kind, Kind::Insert);
    assert_eq!(v[0].objects_written, vec!["big_t".to_string()]);
    assert_eq!(v[0].normalized, "insert into big_t values ($1, $2)");
    assert!(t.elapsed().as_secs() < 20);
}

// ---------- pg_query oracle over the corpus ----------

pub(super) fn corpus() -> Option<String> {
    for p in [
        "../shared/corpus/statements.jsonl",
        "/work/shared/corpus/statements.jsonl",
    ] {
        if let Ok(s) = std::fs::read_to_string(p) {
            return Some(s);
        }
    }
    None
}

#[test]
fn oracle_objects_agree_with_pg_query() {
    let Some(data) = corpus() else {
        eprintln!("corpus not found; skipping oracle test");
        return;
    };
    let (mut n, mut agree) = (0usize, 0usize);
    let mut bad = Vec::new();
    for (i, line) in data.lines().enumerate() {
        if i % 7 != 0 {
            continue; // a sample
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v.get("std_strings_off").is_some() || v.get("psql_var").is_some() {
            continue;
        }
        let Some(sql) = v.get("sql").and_then(|s| s.as_str()) else {
            continue;
        };
        let a = analyze(sql.as_bytes(), &cfg());
        if !a.iter().any(|x| x.parser == Parser::Sqlparser) {
            continue;
        }
        let b = analyze_pg_query_only(sql.as_bytes(), &cfg());
        for (x, y) in a.iter().zip(&b) {
            if x.parser != Parser::Sqlparser || y.parser != Parser::PgQuery || !x.kind.is_dml() {
                continue;
            }
            n += 1;
            if set(&x.objects_read) == set(&y.objects_read)
                && set(&x.objects_written) == set(&y.objects_written)
            {
                agree += 1;
            } else {
                bad.push(format!(
                    "{sql}\n  sqlparser {:?} {:?}\n  pg_query  {:?} {:?}",
                    x.objects_read, x.objects_written, y.objects_read, y.objects_written
                ));
            }
        }
    }
    assert!(n > 1000, "too few DML statements sampled: {n}");
    assert!(
        agree as f64 >= 0.999 * n as f64,
        "agreement {agree}/{n}:\n{}",
        bad.join("\n")
    );
}
