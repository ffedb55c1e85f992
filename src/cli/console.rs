//! `pgtrail console` (serve the web console) and `pgtrail console user
//! add/remove/list` (its people).

use std::net::SocketAddr;
use std::path::PathBuf;

use pgtrail::console::users::{self, Role};
use pgtrail::console::{Console, ConsoleConfig};

use super::error::CliError;

#[derive(clap::Args)]
pub struct ConsoleArgs {
    #[command(subcommand)]
    action: Option<ConsoleAction>,
    /// The console's TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// ClickHouse HTTP URL; the password comes from CLICKHOUSE_PASSWORD.
    #[arg(long)]
    clickhouse_url: Option<String>,
    #[arg(long)]
    database: Option<String>,
    /// The console's users file (`pgtrail console user add`).
    #[arg(long)]
    users: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum ConsoleAction {
    /// Manage the console's people.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(clap::Subcommand)]
enum UserAction {
    /// Add or replace a person; the password is the first line of stdin,
    /// or, with --generate, made and printed.
    Add {
        name: String,
        /// auditor (everything) or dba (no parameters, no redacted values).
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "console-users.toml")]
        users: PathBuf,
        /// Make a random password and print it.
        #[arg(long)]
        generate: bool,
    },
    /// Remove a person.
    Remove {
        name: String,
        #[arg(long, default_value = "console-users.toml")]
        users: PathBuf,
    },
    /// Names and roles (never secrets).
    List {
        #[arg(long, default_value = "console-users.toml")]
        users: PathBuf,
    },
}

pub fn console(args: ConsoleArgs) -> Result<(), CliError> {
    match args.action {
        Some(ConsoleAction::User { action }) => user(action),
        None => serve(&args),
    }
}

fn load(args: &ConsoleArgs) -> Result<ConsoleConfig, CliError> {
    let mut config = match &args.config {
        Some(p) => ConsoleConfig::load(p)
            .map_err(|e| CliError::Console(pgtrail::console::ConsoleError::Config(e)))?,
        None => ConsoleConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = &args.clickhouse_url {
        config.clickhouse_url = Some(v.clone());
    }
    if let Some(v) = &args.database {
        config.database = v.clone();
    }
    if let Some(v) = &args.users {
        config.users_file = v.clone();
    }
    Ok(config)
}

fn serve(args: &ConsoleArgs) -> Result<(), CliError> {
    let config = load(args)?;
    let _log = pgtrail::logging::init(&pgtrail::config::LogConfig::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let password = std::env::var("CLICKHOUSE_PASSWORD").ok();
        let console = Console::bind(&config, password)
            .await
            .map_err(CliError::Console)?;
        let url = console.url();
        tracing::info!(%url, "console listening");
        println!("pgtrail console: {url}");
        console
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        Ok(())
    })
}

fn user(action: UserAction) -> Result<(), CliError> {
    match action {
        UserAction::Add {
            name,
            role,
            users: path,
            generate,
        } => {
            let role = Role::parse(&role).ok_or(CliError::ConsoleRole(role))?;
            let password = if generate {
                let token = pgtrail::console::logins::random_token().ok_or_else(|| {
                    CliError::ReadPassword(std::io::Error::other("no system randomness"))
                })?;
                token[..24].to_string()
            } else {
                super::user::read_password()?
            };
            users::upsert(&path, &name, role, &password).map_err(CliError::ConsoleUsers)?;
            if generate {
                println!("{name} ({}): password {password}", role.name());
            }
            println!("{name}: written to {}", path.display());
            Ok(())
        }
        UserAction::Remove { name, users: path } => {
            if users::remove(&path, &name).map_err(CliError::ConsoleUsers)? {
                println!("{name}: removed from {}", path.display());
                Ok(())
            } else {
                Err(CliError::NotInFile { name, path })
            }
        }
        UserAction::List { users: path } => {
            for (name, role) in users::list(&path).map_err(CliError::ConsoleUsers)? {
                println!("{name}\trole={}", role.name());
            }
            Ok(())
        }
    }
}
