//! What every session shares: configuration, TLS, users, cancel keys, the
//! audit sender, hooks and the shutdown signal. One per server instance, so
//! several servers (tests) run side by side in one process.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::audit::build::Classifier;
use crate::audit::sink::clickhouse::ClickHouseStats;
use crate::audit::AuditSender;
use crate::auth::users::{Users, UsersError};
use crate::cancel::CancelRegistry;
use crate::config::{ClientTlsConfig, Config};
use crate::hooks::SessionHooks;
use crate::latency::Latency;
use crate::logging::LogHandle;

pub struct ProxyContext {
    /// The configuration the server started with. Settings a reload can
    /// change are read from [`ProxyContext::live`] instead.
    pub config: Arc<Config>,
    /// What SIGHUP may replace (`crate::reload`); sessions take a snapshot.
    pub live: RwLock<Arc<LiveSettings>>,
    /// Set by the binary when it installed the log subscriber; `None` in
    /// embedders and tests that keep their own.
    pub log: OnceLock<LogHandle>,
    pub upstream_tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    pub upstream_host: String,
    pub upstream_port: u16,
    pub users: RwLock<Arc<Users>>,
    pub cancel: Arc<CancelRegistry>,
    pub audit: AuditSender,
    pub hooks: Arc<dyn SessionHooks>,
    /// Flips to true when sessions must close now (shutdown timeout).
    pub force_close: watch::Receiver<bool>,
    pub stats: ProxyStats,
    /// Signs the attribution markers sessions leave in transactions that
    /// wrote (`cdc.enabled`); `None` sends nothing of pgtrail's upstream.
    pub markers: Option<Arc<crate::cdc::marker::MarkerSigner>>,
    /// End-user claims (`[identity]`); `None` when `claims = false`.
    pub identity: Option<Arc<crate::identity::Identity>>,
    /// What only `/metrics` reads.
    pub observed: Observed,
}

/// What only `/metrics` reads; nothing a session needs.
pub struct Observed {
    /// `instance_id` of this server's records (`pgtrail_build_info`).
    pub instance_id: String,
    /// The classifier the audit writer uses (for its cache counters).
    pub classifier: Arc<dyn Classifier>,
    /// The ClickHouse sink's delivery counters, when one is configured.
    pub clickhouse: Option<Arc<ClickHouseStats>>,
    /// The spool's size, when `audit.spool_dir` is in use.
    pub spool: Option<crate::audit::spool::SpoolUsage>,
    /// The decoding consumer's counters, when `cdc.enabled`.
    pub cdc: Option<Arc<crate::cdc::consumer::CdcStats>>,
    /// `[catalog]`, when configured (its load counters).
    pub catalog: Option<Arc<crate::catalog::Catalog>>,
}

/// The settings a reload applies to new sessions; sessions already open
/// keep the TLS state they negotiated.
pub struct LiveSettings {
    pub tls: ClientTlsConfig,
    /// Built from `tls`; `None` when `tls.mode = "disable"`.
    pub tls_acceptor: Option<TlsAcceptor>,
    pub log_level: String,
    pub users_file: Option<PathBuf>,
    /// `audit.log_parameters`, for sessions that start from now on.
    pub log_parameters: bool,
}

impl LiveSettings {
    pub fn new(config: &Config, tls_acceptor: Option<TlsAcceptor>) -> Self {
        LiveSettings {
            tls: config.tls.clone(),
            tls_acceptor,
            log_level: config.log.level.clone(),
            users_file: config.auth.users_file.clone(),
            log_parameters: config.audit.log_parameters,
        }
    }
}

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Failed logins by reason, indexed by [`AuthFailureReason`].
    pub auth_failures_by_reason: [AtomicU64; AuthFailureReason::ALL.len()],
    pub statements: AtomicU64,
    /// Statements refused because audit was unavailable (`fail_closed`).
    pub statements_refused: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Bytes held in session buffers right now (client and upstream reads).
    pub buffered_bytes: AtomicU64,
    /// Upstream TCP (+ TLS) connect time; failed connects are not observed.
    pub upstream_connect: Latency,
    /// CancelRequests by outcome, indexed like [`CANCEL_RESULTS`].
    pub cancels: [AtomicU64; CANCEL_RESULTS.len()],
    /// Upstream connects that failed (refused, timed out, TLS).
    pub upstream_connect_failures: AtomicU64,
    /// 1 when the last upstream connect succeeded, 0 when it failed; 1
    /// before the first (nothing known to be wrong yet).
    pub upstream_last_connect_failed: AtomicBool,
    /// SIGHUP reloads: [applied, rejected].
    pub reloads: [AtomicU64; 2],
    /// Attribution markers sent on clients' connections, and refused.
    pub markers: Arc<crate::session::tracker::InternalStats>,
}

/// The `result` label of `pgtrail_cancels_total`: the key matched a session
/// and the cancel was forwarded, the key matched but the server could not
/// be reached, or the key matched no session.
pub const CANCEL_RESULTS: [&str; 3] = ["forwarded", "failed", "unmatched"];

/// What became of one CancelRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    Forwarded = 0,
    Failed = 1,
    Unmatched = 2,
}

/// The `reason` label of `pgtrail_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailureReason {
    WrongPassword = 0,
    UnknownUser = 1,
    DatabaseNotAllowed = 2,
    /// PostgreSQL could not be reached, or refused the role pgtrail logs in as.
    Upstream = 3,
    Other = 4,
}

impl AuthFailureReason {
    pub const ALL: [AuthFailureReason; 5] = [
        AuthFailureReason::WrongPassword,
        AuthFailureReason::UnknownUser,
        AuthFailureReason::DatabaseNotAllowed,
        AuthFailureReason::Upstream,
        AuthFailureReason::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AuthFailureReason::WrongPassword => "wrong_password",
            AuthFailureReason::UnknownUser => "unknown_user",
            AuthFailureReason::DatabaseNotAllowed => "database_not_allowed",
            AuthFailureReason::Upstream => "upstream",
            AuthFailureReason::Other => "other",
        }
    }
}

impl ProxyStats {
    /// Counts a SIGHUP reload under `applied` or `rejected`.
    pub fn reloaded(&self, applied: bool) {
        self.reloads[usize::from(!applied)].fetch_add(1, Ordering::Relaxed);
    }

    /// Notes the outcome of an upstream connect.
    pub fn upstream_connected(&self, ok: bool) {
        if !ok {
            self.upstream_connect_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        self.upstream_last_connect_failed
            .store(!ok, Ordering::Relaxed);
    }

    pub fn cancelled(&self, result: CancelResult) {
        self.cancels[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one failed login under its reason label.
    pub fn auth_failed(&self, reason: AuthFailureReason) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
        self.auth_failures_by_reason[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl ProxyContext {
    /// The live settings now in force.
    pub fn live(&self) -> Arc<LiveSettings> {
        match self.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The acceptor for a new client TLS handshake.
    pub fn tls_acceptor(&self) -> Option<TlsAcceptor> {
        self.live().tls_acceptor.clone()
    }

    /// Puts new live settings in force (for sessions that start from now on).
    pub fn set_live(&self, live: LiveSettings) {
        match self.live.write() {
            Ok(mut current) => *current = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
    }

    /// Replaces the users of proxy mode.
    /// Puts `users` in force; what changed in it is a `lifecycle` record
    /// (the audit trail audits pgtrail's own users too).
    pub fn set_users(&self, users: Users) {
        let changes = users.changes_since(&self.users());
        match self.users.write() {
            Ok(mut current) => *current = Arc::new(users),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(users),
        }
        if !changes.is_empty() {
            tracing::info!(changes = %changes.join("; "), "users file changed");
            self.audit
                .send_soon(crate::audit::event::AuditEvent::Lifecycle {
                    event_type: crate::audit::record::LifecycleEvent::Users,
                    config_digest: crate::secrets::config_digest(&self.config),
                    detail: changes.join("\n"),
                });
        }
    }

    pub fn users(&self) -> Arc<Users> {
        match self.users.read() {
            Ok(u) => u.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the users file again (SIGHUP). A file that does not load leaves
    /// the current users in place; sessions already open are not touched.
    pub fn reload_users(&self) -> Result<usize, ReloadUsersError> {
        let Some(path) = self.live().users_file.clone() else {
            return Err(ReloadUsersError::NoUsersFile);
        };
        let users = Users::load(&path).map_err(ReloadUsersError::Users)?;
        let count = users.len();
        self.set_users(users);
        Ok(count)
    }

    /// Resolves when sessions must close (shutdown timeout expired).
    pub async fn forced_close(&self) {
        let mut rx = self.force_close.clone();
        // An error means the server is gone: close as well.
        let _ = rx.wait_for(|&forced| forced).await;
    }
}

/// Why [`ProxyContext::reload_users`] kept the users it had.
#[derive(Debug)]
pub enum ReloadUsersError {
    /// The server runs without `auth.users_file`.
    NoUsersFile,
    /// The file does not load.
    Users(UsersError),
}

impl std::fmt::Display for ReloadUsersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadUsersError::NoUsersFile => f.write_str("no auth.users_file configured"),
            ReloadUsersError::Users(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReloadUsersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReloadUsersError::NoUsersFile => None,
            ReloadUsersError::Users(e) => Some(e),
        }
    }
}
