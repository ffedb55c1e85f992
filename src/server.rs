//! The accept loop: one task per connection, a connection limit, and
//! graceful shutdown (stop accepting, let sessions finish, then close them
//! with 57P01, stop the decoding consumer, then drain the audit queue).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::audit::build::Classifier;
use crate::audit::{AuditSink, AuditWorker};
use crate::auth::users::Users;
use crate::cancel::CancelRegistry;
use crate::config::{AuthMode, Config};
use crate::context::{LiveSettings, Observed, ProxyContext, ProxyStats};
use crate::hooks::{NoHooks, SessionHooks};
use crate::protocol::build::{self, Severity};
use crate::protocol::sqlstate;
use crate::startup_error::StartupError;

/// A bound, not yet running proxy.
pub struct Server {
    listener: TcpListener,
    ctx: Arc<ProxyContext>,
    force_close: watch::Sender<bool>,
    audit_worker: AuditWorker,
    /// The admin HTTP listener (`admin_listen`), bound with the proxy's.
    admin: Option<TcpListener>,
    /// The last row change the audit trail holds, for the decoding
    /// consumer (`AuditGauges::durable_change`).
    durable_change: Option<(u64, u32)>,
    /// `[catalog]`, loaded by a task of its own while serving.
    catalog: Option<Arc<crate::catalog::Catalog>>,
}

/// Optional parts a caller (or a test) may plug in.
pub struct Extensions {
    pub hooks: Arc<dyn SessionHooks>,
    pub classifier: Arc<dyn Classifier>,
    pub sinks: Vec<Box<dyn AuditSink>>,
}

impl Extensions {
    /// The standard setup: the SQL analyzer configured by `[analysis]`.
    pub fn standard(config: &Config) -> Self {
        let analyzer = crate::sql::Analyzer::new(config.analysis.analyzer_config());
        Extensions {
            hooks: Arc::new(NoHooks),
            classifier: Arc::new(analyzer),
            sinks: Vec::new(),
        }
    }
}

/// The catalog (when `[catalog] url` is set) and `[labels]` that
/// statements' columns are resolved and labelled with.
fn column_policy(config: &Config) -> Result<crate::audit::build::ColumnPolicy, StartupError> {
    use crate::catalog::{Catalog, CatalogLogin, Labels};
    let labels = Labels::new(&config.labels).map_err(|e| StartupError::Config(e.to_string()))?;
    let catalog = if config.catalog.enabled() {
        let login = CatalogLogin::from_config(&config.catalog, &config.upstream)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let refresh = std::time::Duration::from_secs(config.catalog.refresh_interval_s.max(1));
        Some(Arc::new(Catalog::new(
            login,
            refresh,
            &config.catalog.databases,
        )))
    } else {
        None
    };
    Ok(crate::audit::build::ColumnPolicy { catalog, labels })
}

/// The marker signer when `cdc.enabled`: the key file named by
/// `cdc.marker_key_file`, or `marker.key` in the spool directory or beside
/// the audit file; made (0600) on first start.
fn marker_signer(
    config: &Config,
) -> Result<Option<Arc<crate::cdc::marker::MarkerSigner>>, StartupError> {
    use crate::cdc::marker::{MarkerKey, MarkerSigner};
    if !config.cdc.enabled {
        return Ok(None);
    }
    let path = match (
        &config.cdc.marker_key_file,
        &config.audit.spool_dir,
        &config.audit.file,
    ) {
        (Some(p), _, _) => p.clone(),
        (None, Some(dir), _) => dir.join("marker.key"),
        (None, None, Some(file)) => file.with_file_name("marker.key"),
        (None, None, None) => {
            return Err(StartupError::Config(
                "cdc.enabled needs cdc.marker_key_file, audit.spool_dir or audit.file".into(),
            ))
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let key = MarkerKey::load_or_create(&path).map_err(StartupError::MarkerKey)?;
    Ok(Some(Arc::new(MarkerSigner::new(key))))
}

impl Server {
    /// Validates the configuration, loads what it names and binds the listener.
    pub async fn bind(config: Config, ext: Extensions) -> Result<Server, StartupError> {
        config
            .validate()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let (upstream_host, upstream_port) = config.upstream.host_port()?;
        let tls_acceptor = crate::tls::acceptor(&config.tls).map_err(StartupError::Tls)?;
        let upstream_tls = crate::tls::connector(&config.upstream).map_err(StartupError::Tls)?;
        let users = match (&config.auth.mode, &config.auth.users_file) {
            (AuthMode::Proxy, Some(path)) => Users::load(path).map_err(StartupError::Users)?,
            _ => Users::default(),
        };
        let markers = marker_signer(&config)?;
        let identity = crate::identity::Identity::from_config(&config.identity)
            .map_err(StartupError::IdentityKey)?
            .map(Arc::new);
        let cdc_stats = markers.as_ref().map(|_| Arc::default());
        let classifier = ext.classifier.clone();
        let columns = column_policy(&config)?;
        let catalog = columns.catalog.clone();
        let (audit, audit_worker, mut gauges) =
            crate::audit::start::start(&config, ext.classifier, ext.sinks, columns)
                .map_err(StartupError::Audit)?;
        let listener = bind_listener("listen", config.listen).await?;
        let admin = match config.admin_listen {
            Some(addr) => Some(bind_listener("admin_listen", addr).await?),
            None => None,
        };
        let (force_close, force_rx) = watch::channel(false);
        let live = RwLock::new(Arc::new(LiveSettings::new(&config, tls_acceptor)));
        let ctx = ProxyContext {
            config: Arc::new(config),
            live,
            log: std::sync::OnceLock::new(),
            upstream_tls,
            upstream_host,
            upstream_port,
            users: RwLock::new(Arc::new(users)),
            cancel: Arc::new(CancelRegistry::default()),
            audit,
            hooks: ext.hooks,
            force_close: force_rx,
            stats: ProxyStats::default(),
            markers,
            identity,
            observed: Observed {
                instance_id: std::mem::take(&mut gauges.instance_id),
                classifier,
                clickhouse: gauges.clickhouse.take(),
                spool: gauges.spool.take(),
                cdc: cdc_stats,
                catalog: catalog.clone(),
            },
        };
        Ok(Server {
            listener,
            ctx: Arc::new(ctx),
            force_close,
            audit_worker,
            admin,
            durable_change: gauges.durable_change,
            catalog,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where the admin listener (`/metrics`, `/healthz`, `/readyz`) is
    /// bound, when `admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn context(&self) -> Arc<ProxyContext> {
        self.ctx.clone()
    }

    /// Serves until `shutdown` resolves, then drains: sessions get
    /// `limits.shutdown_timeout_ms` to finish before they are closed, and
    /// every queued audit event is written before this returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            ctx,
            force_close,
            audit_worker,
            admin,
            durable_change,
            catalog,
        } = self;
        let catalog_task = catalog.map(|c| tokio::spawn(c.run(std::future::pending())));
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_task = admin.map(|l| {
            tokio::spawn(crate::admin::serve(l, ctx.clone(), async move {
                let _ = admin_stopped.await;
            }))
        });
        let consumer = start_consumer(&ctx, durable_change);
        let limit = Arc::new(Semaphore::new(ctx.config.max_connections));
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        tracing::info!(listen = %ctx.config.listen, upstream = %crate::secrets::masked_url(&ctx.config.upstream.url), "pgtrail is accepting connections");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => spawn_session(&mut sessions, socket, peer, &ctx, &limit),
                    // Out of file descriptors and the like: back off briefly.
                    Err(e) => {
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        drop(listener);
        let active = sessions.len();
        tracing::info!(
            active,
            "shutting down: no new connections; waiting for sessions to finish"
        );
        let drained =
            tokio::time::timeout(ctx.config.shutdown_timeout(), drain(&mut sessions)).await;
        if drained.is_err() {
            tracing::info!(
                remaining = sessions.len(),
                "shutdown timeout: closing remaining sessions"
            );
            let _ = force_close.send(true);
            drain(&mut sessions).await;
        }
        // The consumer's last records are acknowledged by the writer, so
        // it stops before the writer does.
        if let Some(consumer) = consumer {
            consumer.stop().await;
        }
        // Every session is gone: nothing more can be queued.
        ctx.audit.close().await;
        if tokio::task::spawn_blocking(move || audit_worker.join())
            .await
            .is_err()
        {
            tracing::error!("audit writer did not stop cleanly");
        }
        let _ = admin_stop.send(());
        if let Some(task) = admin_task {
            let _ = task.await;
        }
        if let Some(task) = catalog_task {
            task.abort();
        }
        tracing::info!("pgtrail stopped");
    }
}

/// The decoding consumer, when `cdc.enabled` (the signer and its stats
/// exist exactly then) and `cdc.consume`.
fn start_consumer(
    ctx: &Arc<ProxyContext>,
    durable_change: Option<(u64, u32)>,
) -> Option<crate::cdc::consumer::ConsumerHandle> {
    if !ctx.config.cdc.consume {
        return None;
    }
    let signer = ctx.markers.clone()?;
    let stats = ctx.observed.cdc.clone()?;
    Some(crate::cdc::consumer::start(
        ctx.config.clone(),
        ctx.audit.clone(),
        signer,
        stats,
        durable_change,
    ))
}

async fn drain(sessions: &mut JoinSet<()>) {
    while sessions.join_next().await.is_some() {}
}

fn spawn_session(
    sessions: &mut JoinSet<()>,
    socket: TcpStream,
    peer: SocketAddr,
    ctx: &Arc<ProxyContext>,
    limit: &Arc<Semaphore>,
) {
    let ctx = ctx.clone();
    match limit.clone().try_acquire_owned() {
        Ok(permit) => {
            sessions.spawn(async move {
                crate::session::serve(socket, peer, ctx).await;
                drop(permit);
            });
        }
        Err(_) => {
            sessions.spawn(async move {
                tracing::warn!(%peer, "connection limit reached");
                ctx.stats.sessions_total.fetch_add(1, Ordering::Relaxed);
                refuse(socket).await;
            });
        }
    }
}

async fn bind_listener(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen { what, addr, source })
}

/// After a failed accept (out of file descriptors and the like), the pause
/// before the next.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);
/// How long a refused client gets to take its "too many clients" error.
const REFUSAL_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// PostgreSQL's answer when max_connections is reached. The client's startup
/// packet is not read: an ErrorResponse is valid at any point of startup.
async fn refuse(mut socket: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let frame = build::error_response(
        Severity::Fatal,
        sqlstate::TOO_MANY_CONNECTIONS,
        "sorry, too many clients already",
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE, socket.write_all(&frame)).await;
}
