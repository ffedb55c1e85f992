//! The `pgtrail` command line.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

// Records are allocated on the audit writer thread and freed on the
// ClickHouse sender thread; glibc's malloc spends much of that hand-over in
// consolidation (perf). With mimalloc benches/sink.sh delivers 1.4x (memory)
// to 1.6x (spooled) the records per second.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pgtrail::config::{AuthMode, Config};
use pgtrail::server::{Extensions, Server};

mod cli {
    pub mod cdc;
    pub mod console;
    pub mod error;
    pub mod user;
    pub mod verify;
}
use cli::cdc::{cdc, CdcAction};
use cli::error::CliError;
use cli::user::{user, UserAction};

#[derive(Parser)]
#[command(name = "pgtrail", version, about = "PostgreSQL audit proxy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Run(RunArgs),
    /// Check a configuration file and exit.
    CheckConfig { file: PathBuf },
    /// Manage the users file of proxy mode.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Print the ClickHouse DDL (database, tables, schema_migrations).
    Schema(SchemaArgs),
    /// Row changes from PostgreSQL's logical decoding.
    Cdc {
        #[command(subcommand)]
        action: CdcAction,
    },
    /// Make an Ed25519 key pair for signing audit checkpoints.
    Keygen(cli::verify::KeygenArgs),
    /// Check an audit trail's hash chain and signed checkpoints
    /// (exit 0: intact; 1: tampering or damage found; 2: could not read).
    Verify(cli::verify::VerifyArgs),
    /// Serve the web console for DBAs and auditors (reads ClickHouse);
    /// `console user add` makes its people.
    Console(cli::console::ConsoleArgs),
    /// Print the version.
    Version,
}

#[derive(clap::Args)]
struct SchemaArgs {
    /// ClickHouse server version the DDL is for, e.g. 24.8 or 18.16
    /// (servers before 20.1 get the degraded schema).
    #[arg(long, default_value = "24.8")]
    server_version: String,
    /// Take database, retention_days and cluster from this configuration.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// e.g. postgres://127.0.0.1:5432
    #[arg(long)]
    upstream: Option<String>,
    #[arg(long, value_enum)]
    auth: Option<AuthMode>,
    #[arg(long)]
    users: Option<PathBuf>,
    /// JSON Lines audit output.
    #[arg(long)]
    audit_file: Option<PathBuf>,
    #[arg(long)]
    clickhouse_url: Option<String>,
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::CheckConfig { file } => check_config(&file),
        Command::User { action } => user(action),
        Command::Schema(args) => schema(&args),
        Command::Cdc { action } => cdc(action),
        Command::Keygen(args) => cli::verify::keygen(&args),
        Command::Verify(args) => return cli::verify::verify(args),
        Command::Console(args) => cli::console::console(args),
        Command::Version => {
            println!("pgtrail {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgtrail: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &RunArgs) -> Result<Config, CliError> {
    let mut config = match &args.config {
        Some(path) => pgtrail::config_file::parse(path)?,
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = &args.upstream {
        config.upstream.url = v.clone();
    }
    if let Some(v) = args.auth {
        config.auth.mode = v;
    }
    if let Some(v) = &args.users {
        config.auth.users_file = Some(v.clone());
    }
    if let Some(v) = &args.audit_file {
        config.audit.file = Some(v.clone());
    }
    if let Some(v) = &args.clickhouse_url {
        config.audit.clickhouse_url = Some(v.clone());
    }
    if let Some(v) = args.admin_listen {
        config.admin_listen = Some(v);
    }
    match &args.config {
        Some(path) => pgtrail::config_file::validate(path, &config),
        None => config.validate(),
    }?;
    Ok(config)
}

fn run(args: RunArgs) -> Result<(), CliError> {
    let config = load_config(&args)?;
    let log = pgtrail::logging::init(&config.log);
    pgtrail::secrets::warn_about_readable_secrets(&config, args.config.as_deref());
    pgtrail::fdlimit::raise_and_check(&config)?;
    // One thread serving every session avoids cross-thread wake-ups, which
    // cost more than the relaying itself (see ARCHITECTURE.md).
    let runtime = match config.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let server = Server::bind(config.clone(), Extensions::standard(&config)).await?;
        let ctx = server.context();
        if let Some(log) = log {
            let _ = ctx.log.set(log);
        }
        tokio::spawn(reload_on_sighup(ctx, args));
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

/// SIGHUP reads the configuration file again (with the command-line flags
/// applied on top, as at start) and applies what can change live; see
/// `pgtrail::reload`. A rejected file changes nothing. Without a file only
/// the users file is read again.
async fn reload_on_sighup(ctx: std::sync::Arc<pgtrail::context::ProxyContext>, args: RunArgs) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: reload is off");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let Some(file) = &args.config else {
            reload_users_only(&ctx);
            continue;
        };
        let result = load_config(&args).and_then(|c| Ok(pgtrail::reload::apply(&ctx, file, c)?));
        ctx.stats.reloaded(result.is_ok());
        if let Err(e) = result {
            tracing::error!("SIGHUP: configuration rejected, the previous one stays in force: {e}");
        }
    }
}

fn reload_users_only(ctx: &pgtrail::context::ProxyContext) {
    if ctx.config.auth.mode != AuthMode::Proxy {
        tracing::info!("SIGHUP received: no configuration file, nothing to reload");
        return;
    }
    let result = ctx.reload_users();
    ctx.stats.reloaded(result.is_ok());
    match result {
        Ok(users) => tracing::info!(users, "SIGHUP: users file reloaded"),
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: users file rejected, the previous users stay in force")
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; use SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn schema(args: &SchemaArgs) -> Result<(), CliError> {
    use pgtrail::audit::sink::clickhouse::schema;
    let version = schema::ServerVersion::parse(&args.server_version)
        .ok_or_else(|| CliError::ServerVersion(args.server_version.clone()))?;
    let config = match &args.config {
        Some(path) => pgtrail::config_file::load(path)?,
        None => Config::default(),
    };
    print!(
        "{}",
        schema::script(version, &config.audit.clickhouse.schema_options())
    );
    Ok(())
}

/// Errors read `FILE:LINE:COL: key: why` (see `pgtrail::config_file`), or
/// `FILE: key: PATH: why` for files the configuration names.
fn check_config(file: &Path) -> Result<(), CliError> {
    let config = pgtrail::config_file::load(file)?;
    if let (AuthMode::Proxy, Some(path)) = (config.auth.mode, &config.auth.users_file) {
        let users =
            pgtrail::auth::users::Users::load(path).map_err(|source| CliError::CheckUsers {
                file: file.to_path_buf(),
                source,
            })?;
        println!("{}: {} user(s)", path.display(), users.len());
    }
    let tls = |source| CliError::CheckTls {
        file: file.to_path_buf(),
        source: Box::new(source),
    };
    pgtrail::tls::acceptor(&config.tls).map_err(tls)?;
    pgtrail::tls::connector(&config.upstream).map_err(tls)?;
    pgtrail::identity::Identity::from_config(&config.identity)
        .map_err(|e| CliError::Startup(pgtrail::startup_error::StartupError::IdentityKey(e)))?;
    println!("{}: ok", file.display());
    Ok(())
}
