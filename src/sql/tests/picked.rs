//! [`Analyzer::analyze_picked`]: a Query string split once, the chosen
//! statement analyzed exactly as its text alone would be.

use super::CASES;
use crate::sql::*;

/// `analyze_picked` for every statement of `text`, against an analyzer
/// given the statement's text alone (and `analyze` without a cache: with
/// one, `parser` may come from an earlier text of the same shape).
fn check(text: &str, cfg: &AnalyzerConfig) {
    let ranges = statement_ranges(text.as_bytes());
    let picked = Analyzer::new(cfg.clone());
    let alone = Analyzer::new(cfg.clone());
    for round in 0..2 {
        for (i, r) in ranges.iter().enumerate() {
            let (range, got) = picked.analyze_picked(text.as_bytes(), |parts| {
                assert_eq!(parts, &ranges[..]);
                Some(i)
            });
            assert_eq!(&range, r, "{text}");
            let part = &text.as_bytes()[r.clone()];
            assert_eq!(*got, *alone.analyze(part), "{text} [{i}] round {round}");
            if cfg.cache_entries == 0 {
                assert_eq!(*got, analyze(part, cfg)[..], "{text} [{i}]");
            }
        }
        let (range, whole) = picked.analyze_picked(text.as_bytes(), |_| None);
        assert_eq!(range, 0..text.len());
        assert_eq!(*whole, *alone.analyze(text.as_bytes()), "{text}");
    }
}

#[test]
fn picked_statement_is_analyzed_as_alone() {
    let std_off = AnalyzerConfig {
        standard_conforming_strings: false,
        ..AnalyzerConfig::default()
    };
    let no_cache = AnalyzerConfig {
        cache_entries: 0,
        ..AnalyzerConfig::default()
    };
    let n = CASES.len();
    for (k, c) in CASES.iter().enumerate() {
        let next = CASES[(k * 7 + 3) % n].0;
        let text = format!("{}; -- note\n{next} ;; /* c */ SELECT 'a;b', $x$;$x$", c.0);
        check(&text, &AnalyzerConfig::default());
        if k % 5 == 0 {
            check(&text, &std_off);
            check(&text, &no_cache);
        }
    }
    check("SELECT 'a\\'; SELECT 2'; SELECT 3", &std_off);
    check(
        "  SELECT 1; SELECT U&'x' UESCAPE '!'; SELECT 'open",
        &AnalyzerConfig::default(),
    );
}

#[test]
fn picked_index_past_the_end_is_the_whole_text() {
    let an = Analyzer::new(AnalyzerConfig::default());
    let text = b"SELECT 1; SELECT 2";
    let (range, got) = an.analyze_picked(text, |parts| Some(parts.len()));
    assert_eq!(range, 0..text.len());
    assert_eq!(got.len(), 2);
}
