//! One-off robustness run: every corpus statement truncated and mutated.
use pgtrail::sql::{analyze, Analyzer, AnalyzerConfig, Redaction};
fn main() {
    let data = std::fs::read_to_string("/work/shared/corpus/statements.jsonl").unwrap_or_default();
    let cfg = AnalyzerConfig {
        redaction: Redaction::Literals,
        ..AnalyzerConfig::default()
    };
    let an = Analyzer::new(AnalyzerConfig::default());
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut n = 0usize;
    for line in data.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(sql) = v.get("sql").and_then(|s| s.as_str()) else {
            continue;
        };
        let b = sql.as_bytes();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cut = (x as usize) % (b.len() + 1);
            let mut m = b[..cut].to_vec();
            if !m.is_empty() {
                let p = (x >> 20) as usize % m.len();
                m[p] = (x >> 40) as u8;
            }
            let _ = analyze(&m, &cfg);
            let _ = an.analyze(&m);
            n += 1;
        }
    }
    println!(
        "{n} mutated texts analysed without panic; {:?}",
        an.cache_stats()
    );
}
