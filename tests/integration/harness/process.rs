//! The real pgtrail binary as a child process, for what an in-process
//! server cannot show: SIGKILL, SIGHUP, the command line.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pgtrail::config::Config;

/// A pgtrail process (the real binary) on its own port with `config`.
pub struct PgtrailProcess {
    process: std::process::Child,
    pub port: u16,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl PgtrailProcess {
    pub async fn start(config: &Config, dir: &std::path::Path) -> PgtrailProcess {
        Self::start_under(config, dir, "").await
    }

    /// Like `start`, with `shell` (e.g. `ulimit -Sn 1024;`) run first in
    /// the shell that then execs pgtrail.
    pub async fn start_under(
        config: &Config,
        dir: &std::path::Path,
        shell: &str,
    ) -> PgtrailProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut config = config.clone();
        config.listen = format!("127.0.0.1:{port}").parse().unwrap();
        let path = dir.join(format!("pgtrail-{port}.toml"));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        let log = dir.join(format!("pgtrail-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let process = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{shell} exec \"$0\" run --config \"$1\""))
            .arg(env!("CARGO_BIN_EXE_pgtrail"))
            .arg(&path)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "pgtrail did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        PgtrailProcess { process, port, log }
    }
}

impl Drop for PgtrailProcess {
    fn drop(&mut self) {
        let _ = self.process.kill(); // SIGKILL
        let _ = self.process.wait();
    }
}

impl PgtrailProcess {
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends `signal` (e.g. `"HUP"`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn log_contents(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Resident memory of process `pid` in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
