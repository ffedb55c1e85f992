//! The console in Chromium (tests/python/console_browser.py): login, the
//! overview's counts, overview -> sessions -> timeline -> statement ->
//! table, search, person, the compliance views and their CSV exports, the
//! access page, and what a dba does not see; a screenshot of every page
//! in `target/console-screenshots/`.

use std::process::Command;

use super::{Fixture, AUDITOR, DBA, INES_STATEMENTS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_walks_the_console_in_chromium() {
    let f = Fixture::start("console_browser").await;
    let case = serde_json::json!({
        "auditor": [AUDITOR.0, AUDITOR.1],
        "dba": [DBA.0, DBA.1],
        "ines_session": f.ines_session,
        "ines_statements": INES_STATEMENTS,
    });
    let script = format!(
        "{}/tests/python/console_browser.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let shots = Fixture::screenshots_dir();
    let url = f.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([
                &script,
                &url,
                &case.to_string(),
                &shots.display().to_string(),
            ])
            .output()
    })
    .await
    .expect("join")
    .expect(
        "run python3 (scripts/install-deps.sh installs selenium, chromium and chromium-driver)",
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "console_browser.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    // Every page the walk opened is on record, by the person who opened it.
    for page in [
        "overview",
        "sessions",
        "session",
        "statement",
        "table",
        "statements",
        "person",
        "failed_logins",
        "privilege_changes",
        "ddl_changes",
        "access",
    ] {
        assert!(
            f.access_count(&format!(
                "console_user = 'ann' AND action = 'view' AND page = '{page}'"
            )) >= 1,
            "{page}"
        );
    }
    assert_eq!(
        f.access_count("console_user = 'ann' AND action = 'export'"),
        3
    );
    assert_eq!(
        f.access_count(&format!(
            "console_user = 'dan' AND page = 'session' AND subject = '{}'",
            f.ines_session
        )),
        1
    );
    f.finish().await;
}
