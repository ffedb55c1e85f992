//! Unit tests: the statement table, kinds, statement order, functions and
//! locking, object types, parser paths and the cache (robustness and the
//! pg_query oracle are in `robust_tests`).

use super::CASES;
use crate::sql::*;
use std::collections::BTreeSet;
use std::sync::Arc;

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
    for &(sql, kind, class, crud, audit, read, written) in CASES.iter() {
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

/// Analyses with `cached` cleared, to compare with uncached ones.
fn plain(v: &[Analysis]) -> Vec<Analysis> {
    v.iter()
        .map(|a| Analysis {
            cached: false,
            ..a.clone()
        })
        .collect()
}

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
    assert!(!a[0].cached && b[0].cached && c[0].cached);
    // cached result equals uncached, but for `cached`
    for (sql, _, _, _, _, _, _) in CASES.iter().take(50) {
        let x = an.analyze(sql.as_bytes());
        let y = an.analyze(sql.as_bytes());
        assert_eq!(plain(&x), analyze(sql.as_bytes(), &cfg()));
        assert_eq!(plain(&y), plain(&x));
        assert!(y.iter().all(|a| a.cached));
    }
    // same shape, other literal, comment and case: only per-call parts differ
    let d = an.analyze(b"/* app */ select * FROM t WHERE id = 3 ;");
    assert_eq!(
        d[0].statement.text,
        "/* app */ select * FROM t WHERE id = 3"
    );
    assert_eq!(d[0].normalized, b[0].normalized);
    assert_eq!(d[0].fingerprint, b[0].fingerprint);
    assert!(d[0].cached);
    // same shape, but a literal of another class: analyzed again, since
    // the grammar may take one and not the other (PASSWORD 1 vs 'x')
    let e = an.analyze(b"SELECT * FROM t WHERE id = 'x'");
    assert_eq!(e[0].fingerprint, b[0].fingerprint);
    assert!(!e[0].cached);
    let r1 = an.analyze(b"CREATE ROLE r PASSWORD 1");
    let r2 = an.analyze(b"CREATE ROLE r PASSWORD 'x'");
    assert_eq!(r1[0].fingerprint, r2[0].fingerprint);
    assert!(!r2[0].cached);
    assert_eq!(r2[0].objects_written, vec!["r".to_string()]);
}

#[test]
fn cache_redacts_and_keeps_texts_apart() {
    // credentials are redacted on a hit too
    let an2 = Analyzer::new(cfg());
    let p1 = an2.analyze(b"ALTER ROLE bob PASSWORD 'one'");
    let p2 = an2.analyze(b"ALTER ROLE bob PASSWORD 'two'");
    assert!(p2[0].cached && !p1[0].cached);
    assert_eq!(p1[0].statement, p2[0].statement);
    assert!(!p2[0].statement.text.contains("two"));
    assert!(Arc::ptr_eq(
        &p2,
        &an2.analyze(b"ALTER ROLE bob PASSWORD 'two'")
    ));
    // several statements per text, invalid UTF-8 text
    let m1 = an2.analyze(b"SELECT 1; UPDATE t SET a = 2");
    let m2 = an2.analyze(b"SELECT 3; UPDATE t SET a = 4");
    assert_eq!(m2.len(), 2);
    assert_eq!(m2[1].statement.text, "UPDATE t SET a = 4");
    assert_eq!(m2[1].objects_written, m1[1].objects_written);
    let u1 = an2.analyze(b"SELECT '\xff\xfe' FROM t");
    let u2 = an2.analyze(b"SELECT '\xfe\xff' FROM t");
    let u3 = an2.analyze(b"SELECT '\xff\xfe' FROM t");
    assert!(u2[0].cached && u2[0].statement.escaped);
    assert_eq!(
        u2[0].statement,
        StatementText::from_bytes(b"SELECT '\xfe\xff' FROM t")
    );
    assert_eq!(
        (u2[0].parser, &u2[0].objects_read),
        (u1[0].parser, &u1[0].objects_read)
    );
    assert_eq!(plain(&u3), plain(&u1));
}

#[test]
fn cache_answers_like_uncached_and_stays_bounded() {
    // texts that differ from a cached one in literals, comments, spacing,
    // case or literal kinds answer like the uncached analysis
    let an3 = Analyzer::new(cfg());
    for sql in [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 2;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 2;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 'x';",
        "/* c */ SELECT abalance FROM pgbench_accounts WHERE aid = 3",
        "select  abalance from pgbench_accounts where aid=-4 ;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 5; SELECT 6",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 7; SELECT 8",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 7; -- x\n SELECT 'y'",
        "SELECT * FROM t WHERE a IN (1, 2, 3)",
        "SELECT * FROM t WHERE a IN (4, 5)",
        "SELECT * FROM t WHERE a IN (4, 5)",
        "ALTER ROLE bob PASSWORD 'p1'",
        "ALTER ROLE bob PASSWORD 'p2'",
        "SELECT $1, 'a' FROM t",
        "SELECT $1, 'b' FROM t",
    ] {
        let got = an3.analyze(sql.as_bytes());
        assert_eq!(plain(&got), analyze(sql.as_bytes(), &cfg()), "{sql}");
    }
    assert_eq!(an3.cache_stats().misses, 7);
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
