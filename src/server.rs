//! The accept loop: one task per connection, a connection limit, and
//! graceful shutdown (stop accepting, let sessions finish, then close them
//! with 57P01, then drain the audit queue).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::audit::builder::{Classifier, RecordBuilder};
use crate::audit::clickhouse::ClickHouseSink;
use crate::audit::gate::SkippedRun;
use crate::audit::jsonl::JsonlSink;
use crate::audit::seqmark::SeqMark;
use crate::audit::spool::{self, Spool, SpoolOptions};
use crate::audit::{pipeline, AuditGate, AuditSink, AuditWorker};
use crate::auth::users::Users;
use crate::cancel::CancelRegistry;
use crate::config::{AuthMode, Config, Durability};
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
        let classifier = ext.classifier.clone();
        let (audit, audit_worker, gauges) =
            start_audit(&config, ext.classifier, ext.sinks).map_err(StartupError::Audit)?;
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
            observed: Observed {
                instance_id: gauges.instance_id,
                classifier,
                clickhouse: gauges.clickhouse,
                spool: gauges.spool,
            },
        };
        Ok(Server {
            listener,
            ctx: Arc::new(ctx),
            force_close,
            audit_worker,
            admin,
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
        } = self;
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_task = admin.map(|l| {
            tokio::spawn(crate::admin::serve(l, ctx.clone(), async move {
                let _ = admin_stopped.await;
            }))
        });
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
        tracing::info!("pgtrail stopped");
    }
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

/// What `/metrics` reads of the audit path: the instance id its records
/// carry, and the sinks' counters.
#[derive(Default)]
struct AuditGauges {
    instance_id: String,
    clickhouse: Option<Arc<crate::audit::clickhouse::ClickHouseStats>>,
    spool: Option<crate::audit::spool::SpoolUsage>,
}

/// Where the record sequence continues, and what start found missing.
struct SeqStart {
    next_seq: u64,
    mark: Option<SeqMark>,
    /// Seqs reserved by the previous run that no kept record holds.
    unused: Option<(u64, u64)>,
    /// Spool corruption found at start.
    gaps: Vec<spool::Gap>,
}

impl Default for SeqStart {
    fn default() -> Self {
        SeqStart {
            next_seq: 1,
            mark: None,
            unused: None,
            gaps: Vec::new(),
        }
    }
}

fn start_audit(
    config: &Config,
    classifier: Arc<dyn Classifier>,
    mut sinks: Vec<Box<dyn AuditSink>>,
) -> Result<(crate::audit::AuditSender, AuditWorker, AuditGauges), String> {
    let audit = &config.audit;
    let gate = Arc::new(AuditGate::default());
    // before_ack without a spool makes the file the durable copy.
    let file_durable = audit.durability == Durability::BeforeAck && audit.spool_dir.is_none();
    if let Some(path) = &audit.file {
        let mut sink = JsonlSink::open(path, file_durable, audit.file_rotate_bytes)
            .map_err(|e| format!("audit.file {}: {e}", path.display()))?;
        sink.guard(gate.clone());
        sinks.push(Box::new(sink));
    }
    let mut seq = SeqStart::default();
    let mut spool_instance_id = None;
    let mut gauges = AuditGauges::default();
    if let Some(url) = &audit.clickhouse_url {
        let mut sink = match &audit.spool_dir {
            Some(dir) => {
                let (sink, start, id) = start_spooled(audit, url, dir, &gate, &mut gauges)?;
                (seq, spool_instance_id) = (start, id);
                sink
            }
            None => {
                tracing::warn!("audit.clickhouse_url without audit.spool_dir: records for ClickHouse wait in memory and a crash loses them; set audit.spool_dir");
                ClickHouseSink::start(url, &audit.clickhouse).map_err(|e| {
                    let url = crate::secrets::masked_url(url);
                    format!("audit.clickhouse_url {url}: {e}")
                })?
            }
        };
        sink.guard(gate.clone());
        sink.stall_timeout(std::time::Duration::from_millis(
            audit.clickhouse_stall_timeout_ms,
        ));
        gauges.clickhouse = Some(sink.stats_handle());
        sinks.push(Box::new(sink));
    } else if let Some(dir) = &audit.spool_dir {
        tracing::warn!(dir = %dir.display(), "audit.spool_dir is set but audit.clickhouse_url is not: the spool is not used");
    }
    if sinks.is_empty() {
        tracing::warn!("no audit destination configured (audit.file, audit.clickhouse_url): audit records are discarded");
    }
    if seq.mark.is_none() && audit.instance_id.is_some() {
        if let Some(path) = &audit.file {
            seq = file_seq_start(path)?;
        }
    }
    let instance_id = audit
        .instance_id
        .clone()
        .or(spool_instance_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    gauges.instance_id = instance_id.clone();
    let mut builder = RecordBuilder::new(instance_id, audit.max_statement_bytes, classifier)
        .starting_at(seq.next_seq);
    if let Some(mark) = seq.mark.take() {
        builder = builder.reserving(mark);
    }
    write_start_gaps(&mut builder, seq, &mut sinks);
    let options = pipeline::WriterOptions {
        capacity: audit.queue_capacity,
        flush_interval: std::time::Duration::from_millis(audit.flush_interval_ms),
        policy: audit.failure_policy,
        gate,
    };
    let (sender, worker) =
        pipeline::start(options, builder, sinks).map_err(|e| format!("audit writer: {e}"))?;
    Ok((sender, worker, gauges))
}

/// Opens the spool (lock, recovery, marks) and starts the ClickHouse sink
/// on it; also the spool's instance id when none is configured.
fn start_spooled(
    audit: &crate::config::AuditConfig,
    url: &str,
    dir: &std::path::Path,
    gate: &Arc<AuditGate>,
    gauges: &mut AuditGauges,
) -> Result<(ClickHouseSink, SeqStart, Option<String>), String> {
    let fail = |e: std::io::Error| format!("audit.spool_dir {}: {e}", dir.display());
    let options = SpoolOptions {
        max_bytes: audit.spool_max_bytes,
        segment_bytes: audit.spool_segment_bytes,
    };
    let mut spool = Spool::open(dir, options).map_err(fail)?;
    let instance_id = match audit.instance_id {
        None => Some(spool::marker::instance_id(dir).map_err(fail)?),
        Some(_) => None,
    };
    spool.writer.guard(gate.clone());
    gauges.spool = Some(spool.writer.usage());
    let start = SeqStart {
        next_seq: spool.next_seq,
        mark: Some(SeqMark::new(spool.seq_mark, spool.next_seq - 1)),
        unused: spool.unused_seqs,
        gaps: spool.gaps,
    };
    let sink = ClickHouseSink::start_spooled(url, &audit.clickhouse, spool.writer, spool.reader)
        .map_err(|e| {
            let url = crate::secrets::masked_url(url);
            format!("audit.clickhouse_url {url}: {e}")
        })?;
    Ok((sink, start, instance_id))
}

/// A fixed instance id without a spool: the audit file's own mark keeps
/// seqs from being used again after a restart.
fn file_seq_start(path: &std::path::Path) -> Result<SeqStart, String> {
    let fail = |e: std::io::Error| format!("audit.file {}: seq mark: {e}", path.display());
    let (slot, mark, last) = crate::audit::seqmark::for_audit_file(path).map_err(fail)?;
    let seen = last.unwrap_or(0);
    let next_seq = mark.max(seen) + 1;
    if last.is_none() && mark > 0 {
        tracing::warn!(file = %path.display(), next_seq, "the audit file has no record to show where the last run stopped (rotated or empty): seqs continue above the mark, without a gap record");
    }
    Ok(SeqStart {
        next_seq,
        mark: Some(SeqMark::new(slot, next_seq - 1)),
        unused: (last.is_some() && mark > seen).then(|| (seen + 1, mark - seen)),
        gaps: Vec::new(),
    })
}

/// Corruption found in the spool at start is itself part of the trail,
/// and so are seqs the last run reserved but left no record of.
fn write_start_gaps(builder: &mut RecordBuilder, seq: SeqStart, sinks: &mut [Box<dyn AuditSink>]) {
    let mut gaps: Vec<_> = seq
        .gaps
        .into_iter()
        .map(|gap| builder.gap(gap.missing_events, &gap.reason))
        .collect();
    if let Some((first, count)) = seq.unused {
        tracing::warn!(first_seq = first, count, "seqs reserved by the previous run hold no kept record (a crash lost unflushed records, or they were never used): a gap record says so");
        let run = SkippedRun::span(first, count, builder.instance_id());
        let last = first + count - 1;
        gaps.push(run.gap_record(format!("seqs {first}..{last} were reserved by the previous run but no record with them was kept (lost in a crash before their fsync, or never used)")));
    }
    for record in gaps {
        for sink in sinks.iter_mut() {
            if let Err(e) = sink.write(&record).and_then(|()| sink.flush()) {
                tracing::error!(sink = %sink.name(), error = %e, "could not write a gap record found at start");
            }
        }
    }
}
