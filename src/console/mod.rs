//! `pgtrail console`: a web application for DBAs and auditors that reads
//! the trail pgtrail writes to ClickHouse. It runs apart from the proxy
//! (auditors need no access to the proxy host), renders HTML on the server
//! (maud templates, no JavaScript), and is closed by default: people log
//! in with a SCRAM-verified password from the console's users file, as
//! `auditor` (everything) or `dba` (no statement parameters, no values of
//! redacted columns). Every page view, export and login is itself recorded
//! in ClickHouse (`console_access`, see `access`).
//!
//! Files: `config` (the console's configuration file), `users` (its
//! people), `logins` (logged-in sessions, CSRF tokens), `web` (state,
//! the logged-in context, security headers), `auth` (login, logout, the
//! chain check), `filters` (checked URL filters), `store/` (every
//! ClickHouse query, parameterised and bounded), `access` (the access
//! records), `verify` (the chain check), `pages/` (one file per page),
//! `serve` (the accept loop, plain or TLS).

pub mod access;
pub mod auth;
pub mod config;
pub mod filters;
pub mod logins;
pub mod pages;
pub mod serve;
pub mod store;
pub mod users;
pub mod verify;
pub mod web;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub use config::ConsoleConfig;
pub use serve::Console;

use store::{Store, StoreError};
use users::{ConsoleUsers, ConsoleUsersError};
use web::{App, AppState};

/// Why the console did not start.
#[derive(Debug)]
pub enum ConsoleError {
    Config(config::ConsoleConfigError),
    Users(ConsoleUsersError),
    /// No person could log in: the users file is empty.
    NoUsers(std::path::PathBuf),
    ClickHouse(StoreError),
    Tls(String),
    Listen(std::io::Error),
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::Config(e) => write!(f, "{e}"),
            ConsoleError::Users(e) => write!(f, "{e}"),
            ConsoleError::NoUsers(p) => write!(
                f,
                "{}: no console users (add one with `pgtrail console user add NAME --role auditor`)",
                p.display()
            ),
            ConsoleError::ClickHouse(e) => write!(f, "ClickHouse: {e}"),
            ConsoleError::Tls(e) => write!(f, "console TLS: {e}"),
            ConsoleError::Listen(e) => write!(f, "console listen: {e}"),
        }
    }
}

impl std::error::Error for ConsoleError {}

const CSS: &str = include_str!("static/console.css");

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

/// Loads the users, connects to ClickHouse and creates `console_access`.
pub async fn state(config: &ConsoleConfig, password: Option<String>) -> Result<App, ConsoleError> {
    config.validate().map_err(ConsoleError::Config)?;
    let users = ConsoleUsers::load(&config.users_file).map_err(ConsoleError::Users)?;
    if users.is_empty() {
        return Err(ConsoleError::NoUsers(config.users_file.clone()));
    }
    let url = config.clickhouse_url.clone().unwrap_or_default();
    let store = Store::connect(
        &url,
        &config.database,
        config.clickhouse_user.as_deref(),
        password.as_deref(),
    )
    .await
    .map_err(ConsoleError::ClickHouse)?;
    store
        .ensure_access_table()
        .await
        .map_err(ConsoleError::ClickHouse)?;
    let session_secs = config.session_minutes.saturating_mul(60);
    Ok(Arc::new(AppState {
        store,
        users,
        logins: logins::Logins::new(Duration::from_secs(session_secs)),
        secure_cookies: config.tls.is_some(),
        page_rows: config.page_rows(),
        session_secs,
        verify: verify::VerifySource {
            url,
            database: config.database.clone(),
            user: config.clickhouse_user.clone(),
            password,
            public_key: config.public_key.clone(),
        },
        last_verify: Mutex::new(None),
    }))
}

/// Every route; the security headers go on every response.
pub fn router(app: App) -> Router {
    let tls = app.secure_cookies;
    Router::new()
        .route("/", get(pages::overview::overview))
        .route("/login", get(auth::login_get).post(auth::login_post))
        .route("/logout", post(auth::logout))
        .route("/verify", post(auth::verify))
        .route("/sessions", get(pages::sessions::list))
        .route("/session/{id}", get(pages::sessions::timeline))
        .route("/statements", get(pages::statements::search))
        .route("/statement", get(pages::statements::one))
        .route("/table", get(pages::tables::table))
        .route("/person", get(pages::people::person))
        .route("/compliance/{view}", get(pages::compliance::page))
        .route("/export/{file}", get(pages::compliance::export))
        .route("/access", get(pages::access::access))
        .route("/static/console.css", get(css))
        .with_state(app)
        .layer(axum::middleware::from_fn(move |request, next| {
            web::security_headers(tls, request, next)
        }))
}
