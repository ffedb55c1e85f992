//! `../shared/tools/ch-modern-check`: SQL run against a modern ClickHouse
//! engine in-process (chdb), for what the local 18.16 cannot show.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$CARGO_MANIFEST_DIR/../shared/tools/ch-modern-check`, as CI lays it out.
pub fn tool() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/ch-modern-check");
    p.is_file().then_some(p)
}

/// Runs `sql` (statements ending in `;`) through the tool and fails the
/// test unless every statement passes. `false` (with a SKIPPED line naming
/// `what`) when the tool is not there.
pub fn check(sql: &str, what: &str) -> bool {
    let Some(tool) = tool() else {
        eprintln!("SKIPPED: ../shared/tools/ch-modern-check not found; {what} not checked on a modern engine");
        return false;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("modern.sql");
    std::fs::write(&file, sql).expect("write SQL");
    let out = std::process::Command::new(&tool)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ch-modern-check failed:\n{stdout}\n{}\n--- SQL ---\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    true
}
