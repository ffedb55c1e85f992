//! Unit tests: the statement table, properties, robustness and the
//! pg_query oracle over the shared corpus (skipped if absent).

use super::cases::CASES;
use super::props::{fill, Rng, TEMPLATES};
use super::*;
use std::collections::BTreeSet;

fn cfg() -> AnalyzerConfig {
    AnalyzerConfig::default()
}

fn one(sql: &str) -> Analysis {
    let mut v = analyze(sql.as_bytes(), &cfg());
    assert_eq!(v.len(), 1, "{sql}: {v:#?}");
    v.remove(0)
}

fn list(s: &str) -> BTreeSet<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

#[test]
fn statement_table() {
    let mut failures = Vec::new();
    for &(sql, kind, class, crud, audit, read, written) in CASES {
        let a = one(sql);
        let got = (
            a.kind.as_str(),
            a.class.as_str(),
            a.crud.as_str(),
            a.audit_class.as_str(),
            set(&a.objects_read),
            set(&a.objects_written),
        );
        let want = (kind, class, crud, audit, list(read), list(written));
        if got != want {
            failures.push(format!(
                "{sql}\n   got  {got:?} via {} {:?}\n   want {want:?}",
                a.parser.as_str(),
                a.parser_note
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 300);
}

#[test]
fn table_covers_every_kind() {
    let seen: BTreeSet<&str> = CASES.iter().map(|c| c.1).collect();
    let missing: Vec<&str> = Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(missing.is_empty(), "kinds without a case: {missing:?}");
}

#[test]
fn kinds_round_trip() {
    for k in Kind::ALL {
        assert_eq!(Kind::from_name(k.as_str()), Some(*k));
    }
}

#[test]
fn multi_statement_in_order() {
    let v = analyze(b"SELECT 1; DELETE FROM t;", &cfg());
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].kind, Kind::Select);
    assert_eq!(v[1].kind, Kind::Delete);
    assert_eq!(v[1].objects_written, vec!["t".to_string()]);
    assert_eq!(v[1].statement.text, "DELETE FROM t");
    let v = analyze(
        b"/* app:checkout */ SELECT 1 -- why\n; -- next\n DELETE FROM t",
        &cfg(),
    );
    assert_eq!(v[0].statement.text, "/* app:checkout */ SELECT 1 -- why");
    assert_eq!(v[0].normalized, "select $1");
    assert_eq!(v[1].statement.text, "-- next\n DELETE FROM t");
    assert!(analyze(b" ; ;; -- nothing\n", &cfg()).is_empty());
    let v = analyze(b"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3", &cfg());
    assert_eq!(v.len(), 2, "{v:#?}");
    assert_eq!(v[0].kind, Kind::CreateFunction);
    assert_eq!(v[0].parser, Parser::PgQuery);
    let v = analyze(b"SELECT ';' ; SELECT $$;$$; SELECT \";\"", &cfg());
    assert_eq!(v.len(), 3);
}

#[test]
fn functions_and_locking() {
    let a =
        one("SELECT pg_read_file('/etc/passwd'), lo_export(1, '/tmp/x'), pg_terminate_backend(1)");
    for f in ["pg_read_file", "lo_export", "pg_terminate_backend"] {
        assert!(
            a.functions.iter().any(|x| x == f),
            "{f} in {:?}",
            a.functions
        );
    }
    let a = one("SELECT * FROM dblink('host=x', 'select 1') AS t(a int)");
    assert!(a.functions.iter().any(|x| x == "dblink"));
    assert!(a.objects_read.is_empty());
    let a = one("SELECT * FROM generate_series(1, 3)");
    assert_eq!(a.functions, vec!["generate_series".to_string()]);
    assert!(one("SELECT * FROM t FOR UPDATE").locking);
    assert!(!one("SELECT * FROM t").locking);
    assert!(one("LOCK t").locking);
    // DO bodies are scanned for calls, dynamic SQL strings included
    let a = one("DO $$BEGIN PERFORM pg_sleep(1); EXECUTE 'SELECT pg_read_file(''/etc/passwd'')'; IF x() THEN RAISE NOTICE 'a'; END IF; END$$");
    for f in ["pg_sleep", "pg_read_file", "x"] {
        assert!(
            a.functions.iter().any(|x| x == f),
            "{f} in {:?}",
            a.functions
        );
    }
    assert!(!a.functions.iter().any(|x| x == "if" || x == "notice"));
    // pg_query path too
    let a = one("CREATE TABLE x AS SELECT pg_read_file('/etc/passwd')");
    assert!(a.functions.iter().any(|x| x == "pg_read_file"), "{a:?}");
}

#[test]
fn object_types() {
    for (sql, ty) in [
        ("DROP TABLE t", Some("table")),
        ("CREATE INDEX i ON t (a)", Some("index")),
        (
            "ALTER MATERIALIZED VIEW m RENAME TO n",
            Some("materialized_view"),
        ),
        ("GRANT SELECT ON t TO bob", Some("table")),
        ("GRANT EXECUTE ON FUNCTION f(int) TO bob", Some("function")),
        ("REVOKE ALL ON SCHEMA s FROM bob", Some("schema")),
        ("GRANT USAGE ON FOREIGN SERVER s TO bob", Some("server")),
        (
            "GRANT ALL ON ALL TABLES IN SCHEMA app TO bob",
            Some("schema"),
        ),
        ("GRANT admin TO bob", Some("role")),
        ("CREATE USER u", Some("role")),
        ("COMMENT ON COLUMN t.c IS 'x'", Some("column")),
        ("COMMENT ON FUNCTION f() IS 'x'", Some("function")),
        ("REINDEX INDEX i", Some("index")),
        ("VACUUM t", Some("table")),
        ("SELECT 1", None),
        ("INSERT INTO t VALUES (1)", None),
    ] {
        assert_eq!(one(sql).object_type, ty, "{sql}");
    }
}

#[test]
fn parser_paths() {
    assert_eq!(one("SELECT * FROM t").parser, Parser::Sqlparser);
    let a = one("REINDEX TABLE t");
    assert_eq!(a.parser, Parser::PgQuery);
    assert!(a.parser_note.is_some());
    let a = one("SELEC 1");
    assert_eq!(a.parser, Parser::Lexer);
    assert!(a
        .parser_note
        .as_deref()
        .is_some_and(|n| n.contains("pg_query")));
    // sqlparser rejects, pg_query accepts
    let a = one("SELECT JSON_OBJECT('a': 1 RETURNING jsonb)");
    assert_ne!(a.parser, Parser::Lexer);
}

// ---------- cache ----------

#[test]
fn cache_hits_and_fresh_statement_text() {
    let an = Analyzer::new(cfg());
    let a = an.analyze(b"SELECT * FROM t WHERE id = 1");
    let b = an.analyze(b"SELECT * FROM t WHERE id = 2");
    let c = an.analyze(b"SELECT * FROM t WHERE id = 2");
    assert_eq!(a[0].statement.text, "SELECT * FROM t WHERE id = 1");
    assert_eq!(b[0].statement.text, "SELECT * FROM t WHERE id = 2");
    assert_eq!(c[0].statement.text, "SELECT * FROM t WHERE id = 2");
    assert_eq!(b[0].objects_read, vec!["t".to_string()]);
    let st = an.cache_stats();
    assert_eq!((st.hits, st.misses, st.entries), (2, 1, 1));
    // cached result equals uncached
    for (sql, _, _, _, _, _, _) in CASES.iter().take(50) {
        let x = an.analyze(sql.as_bytes());
        let y = an.analyze(sql.as_bytes());
        assert_eq!(&x[..], &analyze(sql.as_bytes(), &cfg())[..]);
        assert_eq!(&y[..], &x[..]);
    }
    let small = Analyzer::new(AnalyzerConfig {
        cache_entries: 20,
        ..cfg()
    });
    for i in 0..500 {
        small.analyze(format!("SELECT c{i} FROM t").as_bytes());
    }
    assert!(small.cache_stats().entries <= 32);
    let off = Analyzer::new(AnalyzerConfig {
        cache_entries: 0,
        ..cfg()
    });
    assert_eq!(off.analyze(b"SELECT 1").len(), 1);
    assert_eq!(off.cache_stats().entries, 0);
}

#[test]
fn analyzer_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Analyzer>();
    let an = std::sync::Arc::new(Analyzer::new(cfg()));
    let hs: Vec<_> = (0..2)
        .map(|k| {
            let an = an.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let r = an
                        .analyze(format!("SELECT * FROM t{} WHERE a = {i}", i % 7 + k).as_bytes());
                    assert_eq!(r.len(), 1);
                }
            })
        })
        .collect();
    for h in hs {
        assert!(h.join().is_ok());
    }
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

fn corpus() -> Option<String> {
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
            let dml = matches!(
                x.kind,
                Kind::Select
                    | Kind::Insert
                    | Kind::Update
                    | Kind::Delete
                    | Kind::Merge
                    | Kind::CopyFrom
                    | Kind::CopyTo
            );
            if x.parser != Parser::Sqlparser || y.parser != Parser::PgQuery || !dml {
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
