//! The statement analyzer on arbitrary bytes: it must never panic, every
//! statement range must lie inside the text, and the redacted text of a
//! statement that sets a password must not contain that password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgtrail::sql::{self, AnalyzerConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = AnalyzerConfig::default();
    for range in sql::statement_ranges(data) {
        assert!(range.start <= range.end && range.end <= data.len());
    }
    let analyses = sql::analyze(data, &cfg);
    // A password literal appended to a role statement never survives.
    let mut probe = b"ALTER ROLE r PASSWORD 'fuzz-secret-".to_vec();
    probe.extend(data.iter().filter(|b| b.is_ascii_alphanumeric()).take(16));
    probe.extend_from_slice(b"'");
    for a in sql::analyze(&probe, &cfg) {
        assert!(
            !a.statement.text.contains("fuzz-secret-"),
            "{}",
            a.statement.text
        );
    }
    drop(analyses);
});
