//! A throw-away ClickHouse server for integration tests.
//!
//! `ChServer::shared()` starts one server per test binary on first use;
//! `ChServer::start()` starts a private one, stopped when dropped. Tests
//! should use their own database (`CREATE DATABASE ...`) in the shared one.
//!
//! The binary is `$PGTRAIL_CLICKHOUSE_SERVER` if set, else `clickhouse-server`
//! (Debian 12 ships ClickHouse 18.16 as `/usr/sbin/clickhouse-server`), else
//! `clickhouse server` (the single binary of modern releases). The config is
//! written in the old `<yandex>` root format, which every release accepts.
//! ClickHouse runs fine as root (18.16 does not refuse), so no user switch.
//!
//! Cleanup at process exit uses the same watchdog as `postgres.rs` (see its
//! module docs): an `sh` child blocked reading a pipe from the test process;
//! when the test process dies the pipe closes and the watchdog SIGKILLs the
//! server and removes the directory. No `libc`, works on SIGKILL/panic.
//!
//! HTTP is spoken over a raw `std::net::TcpStream` (HTTP/1.0, one request
//! per connection) so the harness needs no HTTP client crate.
#![allow(dead_code)]

use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ChServer {
    dir: PathBuf,
    tempdir: Option<tempfile::TempDir>,
    http_port: u16,
    tcp_port: u16,
    process: Mutex<Option<Child>>,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

static SHARED: OnceLock<ChServer> = OnceLock::new();

/// A database name no other test of this process uses.
pub fn unique_ch_db(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

impl ChServer {
    /// Runs `SELECT 'done'` through `client` every 200 ms until its record
    /// is in `db.statements` (delivery resumed after an outage); fails the
    /// test after 60 s.
    pub async fn send_until_recorded(&self, db: &str, client: &tokio_postgres::Client) {
        let done = format!(
            "SELECT count() > 0 FROM `{db}`.statements WHERE statement = 'SELECT ''done'''"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.try_query(&done).as_deref() != Ok("1") {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing reached ClickHouse again"
            );
            client.simple_query("SELECT 'done'").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// A new database (named from `prefix`) holding pgtrail's schema for
    /// this server's version, views included.
    pub fn fresh_schema(&self, prefix: &str) -> (String, ServerVersion) {
        let version = ServerVersion::parse(&self.version()).expect("ClickHouse version");
        let opts = SchemaOptions {
            database: unique_ch_db(prefix),
            ..SchemaOptions::default()
        };
        for st in schema::statements(version, &opts) {
            self.query(&st);
        }
        (opts.database, version)
    }

    /// The server shared by all tests of this test binary.
    pub fn shared() -> &'static ChServer {
        SHARED.get_or_init(|| {
            let mut server = ChServer::start();
            // Statics are never dropped: the watchdog removes the directory.
            if let Some(tempdir) = server.tempdir.take() {
                let _kept = tempdir.keep();
            }
            server
        })
    }

    /// Start a private server. Panics (test code) with the server log when
    /// it cannot be started.
    pub fn start() -> ChServer {
        let tempdir = tempfile::Builder::new()
            .prefix("pgtrail-ch-")
            .tempdir()
            .expect("create temporary directory for ClickHouse");
        let dir = tempdir.path().to_path_buf();
        for sub in ["data", "tmp", "user_files", "format_schemas"] {
            fs::create_dir_all(dir.join(sub)).expect("create ClickHouse directories");
        }
        fs::write(dir.join("users.xml"), USERS_XML).expect("write ClickHouse users.xml");

        let mut last_error = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let http_port = free_port();
            let tcp_port = free_port();
            if http_port == tcp_port {
                continue;
            }
            fs::write(
                dir.join("config.xml"),
                config_xml(&dir, http_port, tcp_port),
            )
            .expect("write ClickHouse config.xml");
            let mut server = ChServer {
                dir: dir.clone(),
                tempdir: None,
                http_port,
                tcp_port,
                process: Mutex::new(None),
                watchdog: Mutex::new(None),
            };
            match server.spawn_and_wait() {
                Ok(()) => {
                    server.tempdir = Some(tempdir);
                    return server;
                }
                Err(e) => {
                    server.kill();
                    last_error = e;
                    let log = server.log_contents();
                    if !log.contains("already in use") && !log.contains("Address in use") {
                        break;
                    }
                }
            }
        }
        let log = fs::read_to_string(dir.join("clickhouse-server.err.log")).unwrap_or_default();
        let out = fs::read_to_string(dir.join("stdout.log")).unwrap_or_default();
        panic!("ClickHouse did not start: {last_error}\n--- stdout/stderr ---\n{out}\n--- error log ---\n{log}");
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stdout.log"))
            .map_err(|e| format!("open stdout.log: {e}"))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("clone log handle: {e}"))?;
        let (program, first_arg) = server_binary();
        let mut cmd = Command::new(&program);
        if let Some(arg) = first_arg {
            cmd.arg(arg);
        }
        let mut child = cmd
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let watchdog = spawn_watchdog(child.id(), &self.dir);
        *lock(&self.watchdog) = Some(watchdog);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                *lock(&self.process) = Some(child);
                return Err(format!("clickhouse-server exited during startup: {status}"));
            }
            if matches!(self.http("GET", "/ping", ""), Ok((200, ref body)) if body.starts_with("Ok."))
            {
                *lock(&self.process) = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                *lock(&self.process) = Some(child);
                return Err(format!("no answer on /ping after {READY_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// Native protocol port (clickhouse-client).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// `http://127.0.0.1:<http_port>`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Server log (information level) so far, for assertion messages.
    pub fn log_contents(&self) -> String {
        let mut s = fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        s.push_str(
            &fs::read_to_string(self.dir.join("clickhouse-server.err.log")).unwrap_or_default(),
        );
        s
    }

    /// Run one statement; returns the response body (TabSeparated by
    /// default), with the trailing newline trimmed. Panics on error.
    pub fn query(&self, sql: &str) -> String {
        match self.try_query(sql) {
            Ok(body) => body,
            Err(e) => panic!("ClickHouse query failed: {e}\nSQL: {sql}"),
        }
    }

    /// Like `query`; the error is the HTTP status and ClickHouse's message.
    /// `wait_end_of_query=1` makes the status reflect errors that happen
    /// after the first result block.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        match self.http("POST", "/?wait_end_of_query=1", sql)? {
            (200, body) => Ok(body.trim_end_matches('\n').to_string()),
            (status, body) => Err(format!("HTTP {status}: {}", body.trim())),
        }
    }

    /// Server version string, e.g. "18.16.1".
    pub fn version(&self) -> String {
        self.query("SELECT version()")
    }

    /// Is the server answering `/ping`?
    pub fn is_up(&self) -> bool {
        matches!(self.http("GET", "/ping", ""), Ok((200, _)))
    }

    /// SIGKILL the server (to test outages). The data directory is kept;
    /// `restart()` brings it back on the same ports.
    pub fn kill(&self) {
        if let Some((mut watchdog, stdin)) = lock(&self.watchdog).take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
        if let Some(mut child) = lock(&self.process).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again after `kill()` (same ports, same data).
    /// Retries for a while if the old listening sockets are still held.
    pub fn restart(&self) {
        self.kill();
        let mut last = String::new();
        for _ in 0..20 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => {
                    last = e;
                    self.kill();
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
        panic!(
            "ClickHouse did not restart: {last}\n{}",
            self.log_contents()
        );
    }

    /// One HTTP/1.0 request on a fresh connection; returns (status, body).
    pub fn http(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port))
            .map_err(|e| format!("connect to ClickHouse HTTP port {}: {e}", self.http_port))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("set socket timeouts: {e}"))?;
        let request = format!(
            "{method} {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.http_port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .and_then(|()| stream.flush())
            .map_err(|e| format!("send HTTP request: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| format!("read HTTP response: {e}"))?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| {
                format!(
                    "malformed HTTP response: {}",
                    String::from_utf8_lossy(&response)
                )
            })?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("malformed HTTP status line: {head}"))?;
        let body = String::from_utf8_lossy(&response[split + 4..]).into_owned();
        Ok((status, body))
    }
}

impl Drop for ChServer {
    fn drop(&mut self) {
        self.kill();
        // An owned `tempdir` removes the directory when dropped next.
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// (program, optional first argument)
fn server_binary() -> (PathBuf, Option<&'static str>) {
    if let Some(p) = std::env::var_os("PGTRAIL_CLICKHOUSE_SERVER") {
        return (PathBuf::from(p), None);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(p) = dirs
        .iter()
        .map(|d| d.join("clickhouse-server"))
        .find(|p| p.is_file())
    {
        return (p, None);
    }
    if let Some(p) = dirs
        .iter()
        .map(|d| d.join("clickhouse"))
        .find(|p| p.is_file())
    {
        return (p, Some("server"));
    }
    panic!("no clickhouse-server binary found (install clickhouse-server: bash scripts/install-deps.sh, or set PGTRAIL_CLICKHOUSE_SERVER)");
}

fn config_xml(dir: &Path, http_port: u16, tcp_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{d}/clickhouse-server.log</log>
        <errorlog>{d}/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
</yandex>
"#
    )
}

const USERS_XML: &str = r#"<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#;

/// See the module docs: SIGKILL `pid` and remove `dir` once the test
/// process (the writer of our stdin) is gone.
fn spawn_watchdog(pid: u32, dir: &Path) -> (Child, ChildStdin) {
    const SCRIPT: &str = r#"
trap '' INT HUP
read -r _ignored
kill -KILL "$1" 2>/dev/null
# Alive = has a /proc entry and is not a zombie (init may reap it late).
alive() {
  s=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null)
  [ -n "$s" ] && [ "$s" != Z ]
}
i=0
while alive "$1" && [ "$i" -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done
rm -rf "$2"
"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("pgtrail-watchdog")
        .arg(pid.to_string())
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watchdog shell");
    let stdin = child.stdin.take().expect("watchdog stdin is piped");
    (child, stdin)
}
