//! What every session shares: configuration, TLS, users, cancel keys, the
//! audit sender, hooks and the shutdown signal. One per server instance, so
//! several servers (tests) run side by side in one process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::audit::AuditSender;
use crate::auth::users::Users;
use crate::cancel::CancelRegistry;
use crate::config::Config;
use crate::hooks::SessionHooks;

pub struct ProxyContext {
    pub config: Arc<Config>,
    pub tls_acceptor: Option<TlsAcceptor>,
    pub upstream_tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    pub upstream_host: String,
    pub upstream_port: u16,
    pub users: RwLock<Arc<Users>>,
    pub cancel: Arc<CancelRegistry>,
    pub audit: AuditSender,
    pub hooks: Arc<dyn SessionHooks>,
    /// Salts mock SCRAM exchanges for unknown users.
    pub instance_secret: [u8; 32],
    /// Flips to true when sessions must close now (shutdown timeout).
    pub force_close: watch::Receiver<bool>,
    pub stats: ProxyStats,
}

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    pub auth_failures: AtomicU64,
    pub statements: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Bytes held in session buffers right now (client and upstream reads).
    pub buffered_bytes: AtomicU64,
}

impl ProxyStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl ProxyContext {
    pub fn users(&self) -> Arc<Users> {
        match self.users.read() {
            Ok(u) => u.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Resolves when sessions must close (shutdown timeout expired).
    pub async fn forced_close(&self) {
        let mut rx = self.force_close.clone();
        // An error means the server is gone: close as well.
        let _ = rx.wait_for(|&forced| forced).await;
    }
}
