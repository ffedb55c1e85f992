//! Texts ending inside an unterminated construct (string, dollar quote,
//! quoted identifier, block comment) share a shape with valid texts but
//! take the lexer path: the cache must never answer one with the other's
//! analysis, in either order, through any of its lookups (shape,
//! template, exact text, picked statement). Nor may literals whose escapes
//! PostgreSQL rejects (`E'\xff'`, `U&'\zzzz'`).

use super::props::{fill, Rng, TEMPLATES};
use super::robust::corpus;
use crate::sql::*;

/// (valid, invalid of the same shape and literal classes).
const PAIRS: &[(&str, &str)] = &[
    ("SELECT U&'x' UESCAPE '!'", "SELECT 'open"),
    ("SELECT 'x'", "SELECT 'open"),
    ("SELECT 'x'", "SELECT 'it''s"),
    ("SELECT E'x'", "SELECT E'op\\'en"),
    ("SELECT E'x'", "SELECT E'open\\"),
    ("SELECT N'x'", "SELECT N'open"),
    ("SELECT B'01'", "SELECT B'01"),
    ("SELECT X'ff'", "SELECT X'ff"),
    ("SELECT U&'x'", "SELECT U&'open"),
    ("SELECT U&'x'", "SELECT U&'x' UESCAPE '!"),
    ("SELECT $$x$$", "SELECT $$open"),
    ("SELECT $q$x$q$", "SELECT $q$open $$"),
    ("SELECT 'a'\n'b'", "SELECT 'a'\n'b"),
    ("SELECT \"a\" FROM t", "SELECT \"a FROM t"),
    ("SELECT U&\"a\" FROM t", "SELECT U&\"a FROM t"),
    ("SELECT 1 /* c */", "SELECT 1 /* open"),
    (
        "SELECT * FROM t /* a /* b */ */",
        "SELECT * FROM t /* a /* b */",
    ),
    ("UPDATE t SET a = 'x'", "UPDATE t SET a = 'open"),
    ("CREATE ROLE r PASSWORD 'x'", "CREATE ROLE r PASSWORD 'open"),
    ("SELECT 1; SELECT 'x'", "SELECT 1; SELECT 'open"),
    ("SELECT 1; SELECT 2 /* c */", "SELECT 1; SELECT 2 /* open"),
];

/// `got` (from a cached analyzer) against the uncached analysis of `text`,
/// every field but `cached`; with `mask_note`, `parser_note` only as
/// present or not (it may quote a literal of the first text of a shape).
fn check(got: &[Analysis], text: &[u8], c: &AnalyzerConfig, mask_note: bool, ctx: &str) {
    let norm = |a: &Analysis| Analysis {
        cached: false,
        parser_note: if mask_note {
            a.parser_note.as_ref().map(|_| String::new())
        } else {
            a.parser_note.clone()
        },
        ..a.clone()
    };
    let got: Vec<Analysis> = got.iter().map(norm).collect();
    let want: Vec<Analysis> = analyze(text, c).iter().map(norm).collect();
    assert_eq!(got, want, "{ctx}: {:?}", String::from_utf8_lossy(text));
}

#[test]
fn unterminated_never_shares_an_entry() {
    for c in [
        AnalyzerConfig::default(),
        AnalyzerConfig {
            standard_conforming_strings: false,
            redaction: Redaction::Literals,
            ..AnalyzerConfig::default()
        },
    ] {
        for &(valid, invalid) in PAIRS {
            for order in [[valid, invalid], [invalid, valid]] {
                let an = Analyzer::new(c.clone());
                // twice: misses, then template / exact hits
                for text in order.iter().chain(&order) {
                    let t = text.as_bytes();
                    check(&an.analyze(t), t, &c, false, "analyze");
                    let (_, got) = an.analyze_picked(t, |p| Some(p.len() - 1));
                    let last = statement_ranges(t).pop().unwrap_or(0..0);
                    check(&got, &t[last], &c, false, "picked");
                }
            }
        }
    }
}

/// Corpus-like texts cut short inside a literal, quoted identifier or
/// comment, or ended by an opener.
fn truncated(r: &mut Rng) -> Vec<String> {
    let mut out = Vec::new();
    for t in TEMPLATES {
        let s = fill(t, r);
        cut_short(&s, r, &mut out);
    }
    out
}

/// Openers of quoted constructs and comments, with a valid construct
/// they begin.
const OPENERS: &[(&str, &str)] = &[
    ("'", "'x'"),
    ("E'", "E'x\\'y'"),
    ("N'", "N'x'"),
    ("B'", "B'01'"),
    ("X'", "X'ff'"),
    ("U&'", "U&'x'"),
    ("U&'x' UESCAPE '", "U&'x' UESCAPE '!'"),
    ("$$", "$$x$$"),
    ("$q$", "$q$x$q$"),
    ("\"", "\"x\""),
    ("U&\"", "U&\"x\""),
    ("/*", "/* x */"),
    ("/* /* */", "/* /* */ */"),
];
/// `s` itself, cut after each quote, `$` or `*` (and one or two bytes
/// later), and followed by an unterminated and a terminated construct.
fn cut_short(s: &str, r: &mut Rng, out: &mut Vec<String>) {
    // cut at every char boundary inside a quoted construct or comment
    let mut cuts: Vec<usize> = (1..s.len())
        .filter(|&i| s.is_char_boundary(i))
        .filter(|&i| matches!(s.as_bytes()[i - 1], b'\'' | b'$' | b'"' | b'*'))
        .flat_map(|i| [i, (i + 1).min(s.len()), (i + 2).min(s.len())])
        .collect();
    cuts.dedup();
    out.extend(
        cuts.into_iter()
            .filter(|&i| s.is_char_boundary(i))
            .map(|i| s[..i].to_string()),
    );
    let (o, c) = OPENERS[(r.next() % OPENERS.len() as u64) as usize];
    out.push(format!("{s} {o}open{}", r.next() % 1000));
    out.push(format!("{s} {c}"));
    out.push(s.to_string());
}

#[test]
fn cached_equals_uncached_with_truncated_literals() {
    for redaction in [Redaction::None, Redaction::Literals] {
        let c = AnalyzerConfig {
            redaction,
            ..AnalyzerConfig::default()
        };
        let an = Analyzer::new(c.clone());
        let mut r = Rng(0x7e11_0a11_5eed_0001);
        for round in 0..6 {
            for text in truncated(&mut r) {
                let t = text.as_bytes();
                check(&an.analyze(t), t, &c, true, &format!("round {round}"));
            }
        }
        assert!(an.cache_stats().hits > 0);
    }
}

#[test]
fn corpus_cut_short_cached_equals_uncached() {
    let Some(data) = corpus() else {
        eprintln!("corpus not found; skipping");
        return;
    };
    let c = AnalyzerConfig::default();
    let an = Analyzer::new(c.clone());
    let mut r = Rng(0xc0de_0a11_5eed_0002);
    let mut texts = Vec::new();
    for line in data.lines().step_by(37) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match v.get("sql").and_then(|s| s.as_str()) {
            Some(sql) if v.get("std_strings_off").is_none() && sql.len() < 400 => {
                texts.clear();
                cut_short(sql, &mut r, &mut texts);
                // the whole text and a sample of its cuts
                let n = texts.len();
                for text in texts
                    .iter()
                    .skip(r.next() as usize % 3)
                    .step_by(3)
                    .chain(&texts[n - 3..])
                {
                    let t = text.as_bytes();
                    check(&an.analyze(t), t, &c, true, "corpus");
                }
            }
            _ => continue,
        }
    }
    assert!(an.cache_stats().hits > 0);
}

/// Terminated literals whose escapes PostgreSQL's lexer rejects share a
/// literal class with valid ones: keyed by their bytes instead.
#[test]
fn invalid_escapes_never_share_an_entry() {
    let c = AnalyzerConfig::default();
    for invalid in [
        "SELECT U&'x' UESCAPE 'ab'",
        "SELECT U&'\\zzzz'",
        "SELECT E'\\xff'",
        "SELECT E'\\uzzzz'",
        "SELECT E'\\ud800'",
        "SELECT E'\\400'",
        "SELECT U&'x' UESCAPE '+'",
    ] {
        let valid = ["SELECT 'x'", "SELECT E'\\x41'", "SELECT U&'\\0041'"];
        for order in valid.iter().flat_map(|&v| [[v, invalid], [invalid, v]]) {
            let an = Analyzer::new(c.clone());
            for text in order.iter().chain(&order) {
                let t = text.as_bytes();
                check(&an.analyze(t), t, &c, false, "escapes");
            }
        }
    }
    // backslashes escape in plain strings when standard_conforming_strings is off
    let c = AnalyzerConfig {
        standard_conforming_strings: false,
        ..c
    };
    for order in [
        ["SELECT '\\xff'", "SELECT 'x'"],
        ["SELECT 'x'", "SELECT '\\xff'"],
    ] {
        let an = Analyzer::new(c.clone());
        for text in order.iter().chain(&order) {
            let t = text.as_bytes();
            check(&an.analyze(t), t, &c, false, "escapes, std off");
        }
    }
}
