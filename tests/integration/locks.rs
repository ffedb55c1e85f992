//! One pgtrail process per spool directory and per audit file: a second
//! process on the same path refuses to start and names the holder's pid.

use std::time::{Duration, Instant};

use crate::harness::postgres::PgCluster;
use crate::harness::process::PgtrailProcess;
use crate::harness::proxy::config_for;
use pgtrail::config::Config;

/// Runs the binary with `config` (on a free port) and expects it to exit
/// within 20 s with an error; returns its output.
fn run_expecting_refusal(config: &Config, dir: &std::path::Path) -> String {
    let mut config = config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let path = dir.join("second.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!status.success(), "the second process exited 0: {text}");
            return text;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second process started on a path the first one holds");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn base(dir: &std::path::Path) -> Config {
    let pg = PgCluster::shared();
    let mut config = config_for(pg, dir);
    config.audit.file = None;
    config
}

#[tokio::test]
async fn a_second_process_on_one_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base(dir.path());
    // Nothing listens there: the sink starts anyway and keeps retrying.
    config.audit.clickhouse_url = Some("http://127.0.0.1:9".into());
    config.audit.spool_dir = Some(dir.path().join("spool"));
    let first = PgtrailProcess::start(&config, dir.path()).await;
    let text = run_expecting_refusal(&config, dir.path());
    assert!(text.contains("spool directory"), "{text}");
    assert!(text.contains(&format!("pid {}", first.pid())), "{text}");
}

#[tokio::test]
async fn a_second_process_on_one_audit_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base(dir.path());
    config.audit.file = Some(dir.path().join("audit.jsonl"));
    let first = PgtrailProcess::start(&config, dir.path()).await;
    let text = run_expecting_refusal(&config, dir.path());
    assert!(text.contains("audit file"), "{text}");
    assert!(text.contains(&format!("pid {}", first.pid())), "{text}");
}
