//! A fixed `audit.instance_id` with only the audit file (no spool): seqs
//! continue across a SIGKILL and restart instead of starting at 1 again,
//! so no `(instance_id, seq)` names two records.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::{config_for, connect, fresh_db, read_records};

#[tokio::test]
async fn a_fixed_instance_id_with_only_the_audit_file_never_reuses_a_seq() {
    let (pg, db) = fresh_db("seq_file");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(pg, dir.path());
    config.audit.instance_id = Some("fixed-1".into());
    let file = config.audit.file.clone().unwrap();
    for run in 0..2 {
        let proc = PgtrailProcess::start(&config, dir.path()).await;
        let conn = format!(
            "host=127.0.0.1 port={} user={} password={} dbname={db}",
            proc.port,
            pg.superuser(),
            pg.password()
        );
        let client = connect(&conn).await;
        for i in 0..50 {
            client
                .simple_query(&format!("SELECT {run}, {i}"))
                .await
                .unwrap();
        }
        // Written (not fsynced) once the queue runs empty; then SIGKILL.
        let want = 50 * (run + 1);
        for _ in 0..100 {
            let n = read_records(&file)
                .iter()
                .filter(|r| {
                    r["statement"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("SELECT "))
                })
                .count();
            if n == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(proc);
    }
    let mut by_seq: BTreeMap<u64, usize> = BTreeMap::new();
    for r in read_records(&file).iter().filter(|r| r["record"] != "gaps") {
        *by_seq.entry(r["seq"].as_u64().unwrap()).or_default() += 1;
    }
    let reused = by_seq.values().filter(|&&n| n > 1).count();
    assert_eq!(reused, 0, "{reused} seqs used twice");
}
