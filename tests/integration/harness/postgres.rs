//! A throw-away PostgreSQL cluster for integration tests.
//!
//! `PgCluster::shared()` starts one cluster per test binary (lazily, on first
//! use) and every test creates its own database in it with
//! `PgCluster::unique_db_name`, so tests can run in parallel.
//! `PgCluster::start()` / `PgCluster::start_with(opts)` start a private
//! cluster that is stopped when the value is dropped.
//!
//! The server binaries come from the highest version under
//! `/usr/lib/postgresql/*/bin` (override with `PGTRAIL_PG_BIN=/path/to/bin`).
//!
//! Cleanup, and why it works without `libc`:
//! statics are never dropped, so the shared cluster cannot rely on `Drop`.
//! Instead every cluster gets a *watchdog*: a tiny `sh` process whose stdin is
//! a pipe from the test process. The test process never writes to it; when
//! the test process exits for any reason (normal exit, panic, SIGKILL), the
//! kernel closes the write end, `read` in the watchdog returns, and the
//! watchdog sends SIGQUIT (immediate shutdown) to the postmaster, waits for it
//! to go away (SIGKILL after 10 s) and removes the temporary directory. The
//! watchdog ignores SIGINT/SIGHUP so a Ctrl-C on `cargo test` (which also
//! reaches the postmaster, in the same process group, and shuts it down) does
//! not stop it from cleaning the directory.
//! This is more robust than `PR_SET_PDEATHSIG` (which fires when the *thread*
//! that spawned the child exits, i.e. at the end of whichever test started the
//! shared cluster, and is cleared by the uid switch) and than `atexit` (which
//! does not run on SIGKILL or on a panic that aborts).
//!
//! Running as root (CI does): `initdb` and `postgres` refuse to run as root,
//! so they are started as the system user `pgtrail-test` (created with
//! `useradd --system` when missing) through `std::os::unix::process::CommandExt::{uid, gid}`;
//! the temporary directory is chowned to that user. `psql`/`pgbench` connect
//! over TCP and run as the current user.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// System user the server runs as when the tests run as root.
pub const TEST_OS_USER: &str = "pgtrail-test";

const SUPERUSER: &str = "postgres";
const PASSWORD: &str = "pgtrail-test-pw";
const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// TLS files for `PgOptions::ssl`.
#[derive(Debug, Clone)]
pub struct PgSsl {
    /// PEM certificate (chain) file; copied into the cluster directory.
    pub cert_file: PathBuf,
    /// PEM private key file; copied into the cluster directory (mode 0600).
    pub key_file: PathBuf,
    /// When true, pg_hba.conf only has `hostssl` lines (plain TCP is rejected);
    /// when false, `host` lines accept both.
    pub require: bool,
}

/// Options for `PgCluster::start_with`.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Enable `ssl = on` with these files.
    pub ssl: Option<PgSsl>,
    /// Extra `postgresql.conf` lines, appended after the defaults.
    pub extra_conf: Vec<String>,
    /// Extra `pg_hba.conf` lines, placed *before* the default lines.
    pub extra_hba: Vec<String>,
}

/// A running throw-away cluster.
pub struct PgCluster {
    dir: PathBuf,
    // Keeps the directory alive for a private cluster; `None` means the
    // watchdog removes it (shared cluster) -- see the module docs.
    tempdir: Option<tempfile::TempDir>,
    bin_dir: PathBuf,
    port: u16,
    postmaster: Mutex<Option<Child>>,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
    run_as: Option<(u32, u32)>,
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();
static NAME_COUNTER: AtomicU64 = AtomicU64::new(0);

impl PgCluster {
    /// The cluster shared by all tests of this test binary (started on first
    /// use, stopped and removed when the process exits).
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| {
            let mut cluster = PgCluster::start();
            // Hand the directory over to the watchdog: statics are never dropped.
            if let Some(tempdir) = cluster.tempdir.take() {
                let _kept = tempdir.keep();
            }
            cluster
        })
    }

    /// Start a private cluster with default options.
    pub fn start() -> PgCluster {
        PgCluster::start_with(PgOptions::default())
    }

    /// Start a private cluster with `opts`. Panics (test code) with the
    /// server log when the cluster cannot be started.
    pub fn start_with(opts: PgOptions) -> PgCluster {
        let bin_dir = pg_bin_dir();
        let run_as = if is_root() {
            Some(ensure_test_user())
        } else {
            None
        };
        let tempdir = tempfile::Builder::new()
            .prefix("pgtrail-pg-")
            .tempdir()
            .expect("create temporary directory for PostgreSQL");
        let dir = tempdir.path().to_path_buf();
        // World-traversable so the server user can reach its data directory
        // (the directory itself belongs to that user when we run as root).
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .expect("chmod PostgreSQL temporary directory");

        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, format!("{PASSWORD}\n")).expect("write initdb password file");
        if let Some(ssl) = &opts.ssl {
            fs::copy(&ssl.cert_file, dir.join("server.crt")).expect("copy TLS certificate");
            fs::copy(&ssl.key_file, dir.join("server.key")).expect("copy TLS key");
            fs::set_permissions(dir.join("server.key"), fs::Permissions::from_mode(0o600))
                .expect("chmod TLS key");
        }
        if let Some((uid, gid)) = run_as {
            chown_recursive(&dir, uid, gid);
        }

        let data = dir.join("data");
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("--no-sync");
        let out = run_as_server_user(&mut initdb, run_as, &dir);
        if !out.status.success() {
            panic!(
                "initdb failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = fs::remove_file(&pwfile);

        write_hba(&data, &opts);
        let log_file = dir.join("postgres.log");

        let mut last_error = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let port = free_port();
            write_conf(&data, &dir, port, &opts);
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_file)
                .expect("open PostgreSQL log file");
            let log_err = log.try_clone().expect("clone PostgreSQL log file handle");
            let mut cmd = Command::new(bin_dir.join("postgres"));
            cmd.arg("-D")
                .arg(&data)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err));
            if let Some((uid, gid)) = run_as {
                cmd.uid(uid).gid(gid);
            }
            let mut child = cmd.spawn().expect("spawn postgres");
            match wait_ready(&mut child, port, &data) {
                Ok(()) => {
                    let watchdog = spawn_watchdog(child.id(), &dir, &data, "QUIT");
                    return PgCluster {
                        dir,
                        tempdir: Some(tempdir),
                        bin_dir,
                        port,
                        postmaster: Mutex::new(Some(child)),
                        watchdog: Mutex::new(Some(watchdog)),
                        run_as,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = e;
                    let log = fs::read_to_string(&log_file).unwrap_or_default();
                    if !log.contains("could not bind")
                        && !log.contains("already in use")
                        && !log.contains("could not create any TCP/IP sockets")
                    {
                        break; // not a port collision: retrying will not help
                    }
                }
            }
        }
        let log = fs::read_to_string(&log_file).unwrap_or_default();
        panic!(
            "PostgreSQL did not start: {last_error}\n--- {} ---\n{log}",
            log_file.display()
        );
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// Directory holding the data directory, the log and the Unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Unix socket directory (`unix_socket_directories`).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The server log so far (for assertion messages).
    pub fn log_contents(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Directory of the PostgreSQL binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Path of a PostgreSQL program (`psql`, `pgbench`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Major version of the server binaries (directory name, e.g. 15).
    pub fn major_version(&self) -> u32 {
        self.bin_dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// `postgres://postgres:<pw>@127.0.0.1:<port>/<db>`
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            SUPERUSER, PASSWORD, self.port, db
        )
    }

    /// Key/value connection string (for `tokio_postgres::connect`).
    pub fn conn_string(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={}",
            self.port, SUPERUSER, PASSWORD, db
        )
    }

    /// A name unique across tests and test processes: `<prefix>_<pid>_<n>`.
    pub fn unique_db_name(prefix: &str) -> String {
        let n = NAME_COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}_{}_{}", prefix, std::process::id(), n)
    }

    pub fn create_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        );
    }

    /// e.g. `create_database_with_encoding("x", "LATIN1")` (the cluster uses
    /// the C locale, so any server encoding is allowed).
    pub fn create_database_with_encoding(&self, name: &str, encoding: &str) {
        self.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {} ENCODING {} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'",
                quote_ident(name),
                quote_literal(encoding)
            ),
        );
    }

    pub fn drop_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
        );
    }

    /// `CREATE ROLE name LOGIN PASSWORD 'password' [SUPERUSER]` (stored as a
    /// SCRAM-SHA-256 verifier, the server default).
    pub fn create_role(&self, name: &str, password: &str, superuser: bool) {
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE {} LOGIN PASSWORD {}{}",
                quote_ident(name),
                quote_literal(password),
                if superuser { " SUPERUSER" } else { "" }
            ),
        );
    }

    /// The stored verifier of a role (`pg_authid.rolpassword`).
    pub fn role_verifier(&self, name: &str) -> String {
        self.psql(
            "postgres",
            &format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = {}",
                quote_literal(name)
            ),
        )
    }

    /// Run `sql` with psql as the superuser; returns unaligned, tuples-only
    /// output (`|`-separated columns, one row per line), trimmed.
    /// Panics with psql's error output on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        match self.try_psql(db, sql) {
            Ok(out) => out,
            Err(e) => panic!("psql -d {db} failed: {e}\nSQL: {sql}"),
        }
    }

    /// Like `psql`, but returns psql's stderr as the error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        self.try_psql_as(SUPERUSER, PASSWORD, db, sql)
    }

    /// Run `sql` as another role. Statements are read from stdin, so several
    /// statements (even `CREATE DATABASE`) run one after the other; the first
    /// error stops the script (ON_ERROR_STOP).
    pub fn try_psql_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let mut child = Command::new(self.bin("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-f", "-"])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn psql: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .and_then(|()| stdin.write_all(b"\n"))
                .map_err(|e| format!("write SQL to psql: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("wait for psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Stop the server now (immediate shutdown). Also done by `Drop` and, for
    /// the shared cluster, by the watchdog at process exit.
    pub fn stop(&self) {
        // Retire the watchdog first so it can never signal a recycled pid.
        if let Some((mut watchdog, stdin)) = lock(&self.watchdog).take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
        if let Some(mut child) = lock(&self.postmaster).take() {
            signal(child.id(), "QUIT");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        // An owned `tempdir` removes the directory when dropped next.
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Quote an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quote an SQL string literal (standard_conforming_strings is on).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Highest `/usr/lib/postgresql/<N>/bin` that has a `postgres` binary, or
/// `$PGTRAIL_PG_BIN`.
pub fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGTRAIL_PG_BIN") {
        return PathBuf::from(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let entries = fs::read_dir(root).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (install PostgreSQL: bash scripts/install-deps.sh, or set PGTRAIL_PG_BIN)",
            root.display()
        )
    });
    let best = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match best {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server under {} (install postgresql, or set PGTRAIL_PG_BIN)",
            root.display()
        ),
    }
}

/// True when running as uid 0 (checked with `id -u`, no libc needed).
pub fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// Make sure `TEST_OS_USER` exists; returns its (uid, gid).
/// Several test binaries may race here: useradd failing because another
/// process created the user (or holds the passwd lock) is retried.
pub fn ensure_test_user() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        for _ in 0..50 {
            if let Some(ids) = user_ids(TEST_OS_USER) {
                return ids;
            }
            let _ = Command::new(find_sbin("useradd"))
                .args(["--system", "--no-create-home", "--user-group"])
                .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
                .arg(TEST_OS_USER)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if let Some(ids) = user_ids(TEST_OS_USER) {
                return ids;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("running as root, but could not create system user {TEST_OS_USER} with useradd");
    })
}

fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(user).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn find_sbin(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn chown_recursive(dir: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(dir)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown -R {uid}:{gid} {} failed",
        dir.display()
    );
}

fn run_as_server_user(cmd: &mut Command, run_as: Option<(u32, u32)>, cwd: &Path) -> Output {
    cmd.current_dir(cwd).stdin(Stdio::null());
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd.output().expect("spawn PostgreSQL program")
}

/// A port that was free a moment ago (bind to :0, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

fn write_conf(data: &Path, dir: &Path, port: u16, opts: &PgOptions) {
    let mut conf = format!(
        "\n# pgtrail test harness\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{}'\n\
         wal_level = logical\n\
         max_connections = 200\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         shared_buffers = 128MB\n\
         max_wal_senders = 10\n\
         max_replication_slots = 10\n\
         logging_collector = off\n\
         log_min_messages = warning\n\
         log_timezone = 'UTC'\n\
         timezone = 'UTC'\n",
        dir.display()
    );
    if opts.ssl.is_some() {
        conf.push_str(&format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        ));
    }
    for line in &opts.extra_conf {
        conf.push_str(line);
        conf.push('\n');
    }
    // postgresql.auto.conf is read last and wins: write the settings there so
    // a retry with another port simply rewrites the file.
    fs::write(data.join("postgresql.auto.conf"), conf).expect("write postgresql.auto.conf");
}

fn write_hba(data: &Path, opts: &PgOptions) {
    let mut hba = String::from("# pgtrail test harness\n");
    for line in &opts.extra_hba {
        hba.push_str(line);
        hba.push('\n');
    }
    let kind = match &opts.ssl {
        Some(ssl) if ssl.require => "hostssl",
        _ => "host",
    };
    hba.push_str("local all all scram-sha-256\n");
    hba.push_str(&format!("{kind} all all 127.0.0.1/32 scram-sha-256\n"));
    hba.push_str(&format!(
        "{kind} replication all 127.0.0.1/32 scram-sha-256\n"
    ));
    fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
}

/// Wait until the server accepts TCP connections and has written its pid
/// file with "ready" status; fail early if the process exits.
fn wait_ready(child: &mut Child, port: u16, data: &Path) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("postgres exited during startup: {status}"));
        }
        // Line 8 of postmaster.pid is the status, "ready" once connections
        // are accepted (PostgreSQL >= 10); pg_isready is not needed.
        let ready = fs::read_to_string(data.join("postmaster.pid"))
            .map(|s| s.lines().nth(7).map(str::trim) == Some("ready"))
            .unwrap_or(false);
        if ready && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// See the module docs. The watchdog waits for EOF on stdin (the test
/// process is gone), signals `pid`, waits up to 10 s for the postmaster pid
/// file to disappear (SIGKILL then), and removes `dir`.
fn spawn_watchdog(pid: u32, dir: &Path, data: &Path, sig: &str) -> (Child, ChildStdin) {
    const SCRIPT: &str = r#"
trap '' INT HUP
read -r _ignored
kill -"$2" "$1" 2>/dev/null
i=0
while [ -e "$4/postmaster.pid" ] && kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
kill -KILL "$1" 2>/dev/null
rm -rf "$3"
"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("pgtrail-watchdog")
        .arg(pid.to_string())
        .arg(sig)
        .arg(dir)
        .arg(data)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watchdog shell");
    let stdin = child.stdin.take().expect("watchdog stdin is piped");
    (child, stdin)
}
