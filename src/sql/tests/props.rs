//! Property tests (hand-rolled deterministic generator): normalisation
//! is idempotent, literals alone never change a fingerprint, anything else
//! does, redaction leaves no literal / no credential.

use super::CASES;
use crate::sql::*;

/// True if the lexer sees any literal in `text`.
fn has_literal(text: &[u8]) -> bool {
    lex::tokenize(text, lex::LexOptions::default())
        .iter()
        .any(|t| t.kind == lex::Tok::Str || t.kind == lex::Tok::Num)
}

fn cfg() -> AnalyzerConfig {
    AnalyzerConfig::default()
}

fn one(sql: &str) -> Analysis {
    let mut v = analyze(sql.as_bytes(), &cfg());
    assert_eq!(v.len(), 1, "{sql}: {v:#?}");
    v.remove(0)
}

// ---------- normalisation, fingerprints, redaction ----------

/// Deterministic xorshift generator.
pub(crate) struct Rng(pub u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

fn literal(r: &mut Rng) -> String {
    let n = r.next() % 100_000;
    match r.next() % 9 {
        0 => n.to_string(),
        1 => format!("'s{n}'"),
        2 => format!("E'e\\'{n}'"),
        3 => format!("$$d{n}$$"),
        4 => format!("$q$x{n}$q$"),
        5 => format!("{n}.{}", n % 97),
        6 => format!("{n}e3"),
        7 => format!("U&'u{n}'"),
        _ => format!("'it''s {n}'"),
    }
}

pub(crate) const TEMPLATES: &[&str] = &[
    "SELECT a, b FROM t WHERE a = ? AND b > ?",
    "select * from s.t where id in (?, ?, ?) and x = ?",
    "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)",
    "UPDATE t SET a = ?, b = ? WHERE id = ? RETURNING *",
    "DELETE FROM t WHERE created < ? AND kind = ANY(ARRAY[?, ?])",
    "SELECT f(?) :: int, ? || 'x' FROM t LIMIT ?",
    "CREATE ROLE r PASSWORD ?",
    "SELECT * FROM t WHERE a BETWEEN ? AND ? ORDER BY 1",
    "SELECT $1, ? FROM t WHERE b = $2",
    "WITH c AS (SELECT ? AS x) SELECT * FROM c, t WHERE t.a = c.x",
    "SELECT ?::text, -?, +?, ARRAY[[?, ?], [?, ?]]",
    "INSERT INTO t VALUES (?, now(), ?), (?, now(), ?)",
];

pub(crate) fn fill(t: &str, r: &mut Rng) -> String {
    let mut out = String::new();
    for (i, part) in t.split('?').enumerate() {
        if i > 0 {
            out.push_str(&literal(r));
        }
        out.push_str(part);
    }
    out
}

#[test]
fn normalize_idempotent() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut inputs: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    for _ in 0..500 {
        let t = r.pick(TEMPLATES);
        inputs.push(fill(t, &mut r));
    }
    for s in inputs {
        for a in analyze(s.as_bytes(), &cfg()) {
            let again = analyze(a.normalized.as_bytes(), &cfg());
            assert_eq!(again.len(), 1, "{s} -> {}", a.normalized);
            assert_eq!(again[0].normalized, a.normalized, "not idempotent: {s}");
            assert_eq!(
                again[0].fingerprint, a.fingerprint,
                "fingerprint changes on renormalising: {s}"
            );
        }
    }
}

#[test]
fn literals_only_share_fingerprint() {
    let mut r = Rng(0xdead_beef_1234_5678);
    for t in TEMPLATES {
        let base = one(&fill(t, &mut r));
        for _ in 0..30 {
            let other = one(&fill(t, &mut r));
            assert_eq!(
                base.fingerprint, other.fingerprint,
                "{} vs {}",
                base.statement.text, other.statement.text
            );
            assert_eq!(base.normalized, other.normalized);
        }
    }
    // whitespace, comments and keyword case do not matter; IN-list length does not either
    let a = one("SELECT * FROM t WHERE a IN (1, 2, 3)");
    let b = one("select  *\nfrom T /* c */ where A in (4)");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.normalized, "select * from t where a in ($1)");
    let a = one("UPDATE pgbench_accounts SET abalance = abalance + -4291 WHERE aid = 5");
    let b = one("UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid = 9");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(
        a.normalized,
        "update pgbench_accounts set abalance = abalance + $1 where aid = $2"
    );
    assert_ne!(
        one("SELECT a - 1 FROM t").fingerprint,
        one("SELECT a 1 FROM t").fingerprint
    );
    // non-uniform lists are kept whole; normalising twice is stable
    let a = one("SELECT * FROM t WHERE a IN (1, b, 2) AND c = ARRAY[1, f(2)]");
    let b = one(&a.normalized);
    assert_eq!(
        (a.fingerprint, &a.normalized),
        (b.fingerprint, &b.normalized)
    );
    let a = one("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    assert_eq!(a.normalized, "insert into t values ($1, $2)");
}

#[test]
fn other_differences_change_fingerprint() {
    let pairs = [
        ("SELECT a FROM t WHERE x = 1", "SELECT b FROM t WHERE x = 1"),
        ("SELECT a FROM t WHERE x = 1", "SELECT a FROM u WHERE x = 1"),
        ("SELECT a FROM t WHERE x = 1", "SELECT a FROM t WHERE x > 1"),
        (
            "SELECT a FROM t WHERE x = 1",
            "SELECT a FROM t WHERE x = 1 AND y = 2",
        ),
        ("SELECT a FROM t", "SELECT a FROM \"T\""),
        ("SELECT a FROM t", "SELECT a FROM s.t"),
        ("SELECT 1", "SELECT '1'::int"),
        ("INSERT INTO t VALUES (1, 2)", "INSERT INTO t VALUES (1)"),
        ("DELETE FROM t", "TRUNCATE t"),
        ("SELECT f(1)", "SELECT g(1)"),
        (
            "SELECT a FROM t ORDER BY a",
            "SELECT a FROM t ORDER BY a DESC",
        ),
    ];
    for (x, y) in pairs {
        assert_ne!(one(x).fingerprint, one(y).fingerprint, "{x} vs {y}");
    }
    let mut r = Rng(77);
    let mut seen = std::collections::HashMap::new();
    for t in TEMPLATES {
        let a = one(&fill(t, &mut r));
        if let Some(prev) = seen.insert(a.fingerprint, t) {
            panic!("templates {prev} and {t} collide");
        }
    }
}

#[test]
fn fingerprint_is_stable() {
    // FNV-1a 64 over the token stream: pinned values (changing them is a
    // record-contract migration).
    assert_eq!(one("SELECT 1").fingerprint, one("select 42").fingerprint);
    let fp = one("SELECT abalance FROM pgbench_accounts WHERE aid = 1").fingerprint;
    let mut h = fingerprint::normalize::Fnv::new();
    for (tag, text) in [
        (b'I', "select"),
        (b'I', "abalance"),
        (b'I', "from"),
        (b'I', "pgbench_accounts"),
        (b'I', "where"),
        (b'I', "aid"),
        (b'O', "="),
    ] {
        h.byte(tag);
        h.bytes(text.as_bytes());
        h.byte(0xff);
    }
    h.byte(b'P');
    h.byte(0xff);
    assert_eq!(fp, h.0);
}

#[test]
fn redaction_literals_mode_leaves_no_literal() {
    let c = AnalyzerConfig {
        redaction: Redaction::Literals,
        ..cfg()
    };
    let mut r = Rng(99);
    let mut inputs: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    for _ in 0..300 {
        inputs.push(fill(r.pick(TEMPLATES), &mut r));
    }
    for s in inputs {
        for a in analyze(s.as_bytes(), &c) {
            assert!(
                !has_literal(a.statement.text.as_bytes()),
                "literal left in {:?} from {s}",
                a.statement.text
            );
        }
    }
    let a = analyze(b"SELECT * FROM t WHERE a = 'x' AND b = 2", &c);
    assert_eq!(
        a[0].statement.text,
        "SELECT * FROM t WHERE a = $1 AND b = $2"
    );
}

#[test]
fn credentials_always_redacted() {
    let secrets = [
        (
            "CREATE ROLE bob LOGIN PASSWORD 'Sup3rSecret'",
            "Sup3rSecret",
        ),
        (
            "create user bob with encrypted password 'Sup3rSecret' valid until '2030-01-01'",
            "Sup3rSecret",
        ),
        ("ALTER ROLE bob PASSWORD E'Sup3r\\'Secret'", "Sup3r"),
        (
            "ALTER USER bob WITH PASSWORD $$Sup3rSecret$$",
            "Sup3rSecret",
        ),
        ("ALTER GROUP g PASSWORD 'Sup3rSecret'", "Sup3rSecret"),
        (
            "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'Sup3rSecret')",
            "Sup3rSecret",
        ),
        (
            "ALTER USER MAPPING FOR bob SERVER s OPTIONS (SET password 'Sup3rSecret')",
            "Sup3rSecret",
        ),
        (
            "CREATE SERVER s FOREIGN DATA WRAPPER x OPTIONS (secret 'Sup3rSecret')",
            "Sup3rSecret",
        ),
        (
            "ALTER SERVER s OPTIONS (ADD passfile_password 'Sup3rSecret')",
            "Sup3rSecret",
        ),
        (
            "SELECT dblink_connect('host=db user=u password=Sup3rSecret')",
            "Sup3rSecret",
        ),
        (
            "SELECT dblink_connect('c1', 'host=db user=Sup3rUser')",
            "Sup3rUser",
        ),
        (
            "SELECT * FROM dblink('postgresql://u:Sup3rSecret@h/db', 'select 1') AS t(a int)",
            "Sup3rSecret",
        ),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=h user=Sup3rUser' PUBLICATION p",
            "Sup3rUser",
        ),
        (
            "SELECT 1; CREATE ROLE x PASSWORD 'Sup3rSecret'",
            "Sup3rSecret",
        ),
    ];
    for mode in [Redaction::None, Redaction::Literals] {
        let c = AnalyzerConfig {
            redaction: mode,
            ..cfg()
        };
        let an = Analyzer::new(c.clone());
        for (sql, secret) in secrets {
            for a in analyze(sql.as_bytes(), &c)
                .iter()
                .chain(an.analyze(sql.as_bytes()).iter())
            {
                assert!(
                    !a.statement.text.contains(secret),
                    "{mode:?}: {secret} left in {:?}",
                    a.statement.text
                );
                assert!(!a.normalized.contains(secret));
            }
        }
    }
    // non-credentials stay in mode none
    let a = one("SELECT 'visible' FROM t");
    assert_eq!(a.statement.text, "SELECT 'visible' FROM t");
}

#[test]
fn cached_answers_equal_uncached() {
    // many texts per template: misses, shape hits, template hits and exact
    // hits must all answer like the uncached analysis (but for `cached`)
    for redaction in [Redaction::None, Redaction::Literals] {
        let c = AnalyzerConfig { redaction, ..cfg() };
        let an = Analyzer::new(c.clone());
        let mut r = Rng(0x0bad_cafe_f00d_1234);
        for round in 0..40 {
            for t in TEMPLATES {
                let mut sql = fill(t, &mut r);
                if round % 3 == 1 {
                    sql = format!("/* r{round} */ {sql}");
                }
                for _ in 0..2 {
                    // parser_note may quote a literal of the analyzed text
                    let got: Vec<Analysis> = an
                        .analyze(sql.as_bytes())
                        .iter()
                        .map(|a| Analysis {
                            cached: false,
                            parser_note: a.parser_note.as_ref().map(|_| String::new()),
                            ..a.clone()
                        })
                        .collect();
                    let want: Vec<Analysis> = analyze(sql.as_bytes(), &c)
                        .into_iter()
                        .map(|a| Analysis {
                            parser_note: a.parser_note.map(|_| String::new()),
                            ..a
                        })
                        .collect();
                    assert_eq!(got, want, "{sql}");
                }
            }
        }
        assert!(an.cache_stats().hits > an.cache_stats().misses);
    }
}
