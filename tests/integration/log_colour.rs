//! Logs written to a file or a pipe carry no terminal colour codes.

use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, fresh_db};

#[tokio::test]
async fn logs_to_a_file_have_no_escape_codes() {
    let (pg, _db) = fresh_db("log_colour");
    let dir = tempfile::tempdir().unwrap();
    let pgtrail = PgtrailProcess::start(&config_for(pg, dir.path()), dir.path()).await;
    let log = pgtrail.log_contents();
    assert!(log.contains("pgtrail is accepting connections"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "escape codes in a log file:\n{log:?}"
    );
}
