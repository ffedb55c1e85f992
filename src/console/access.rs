//! The console's own audit: every page view, export, login and refusal is
//! a row of `console_access`, a table the console creates in pgtrail's
//! database (`CREATE TABLE IF NOT EXISTS`, the same DDL on 18.16 and modern
//! servers: `event_time` is Int64 microseconds on both). Its DDL lives here,
//! not in the proxy's schema module, because only the console writes it.
//!
//! A page of audit data is sent only after its access row is written: when
//! ClickHouse does not take the row, the person gets a 503, not the data.

use clickhouse::Row;
use serde::Deserialize;

use super::store::{Arg, Range, Sql, Store, StoreError};

/// What the access row says was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    View,
    Export,
    Login,
    LoginFailed,
    Logout,
    /// A page the person's role may not see.
    Denied,
    Verify,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Export => "export",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Logout => "logout",
            Action::Denied => "denied",
            Action::Verify => "verify",
        }
    }
}

/// One access row, as written.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    pub time: i64,
    pub console_user: &'a str,
    pub role: &'a str,
    pub client_addr: &'a str,
    pub action: Action,
    /// The page: `overview`, `session`, `table`, `person`, ...
    pub page: &'a str,
    /// What was looked at: a session id, a table, a person, a statement.
    pub subject: &'a str,
    /// The page's query string (its filters).
    pub filters: &'a str,
    pub status: u16,
    pub rows: u64,
}

/// An access row as the access page shows it.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct AccessRow {
    pub event_time: i64,
    pub console_user: String,
    pub role: String,
    pub client_addr: String,
    pub action: String,
    pub page: String,
    pub subject: String,
    pub filters: String,
    pub status: u16,
    pub rows: u64,
}

const COLUMNS: &str =
    "event_time, console_user, role, client_addr, action, page, subject, filters, status, `rows`";

impl Store {
    /// The DDL of `console_access` (no `?`: it is sent as is).
    pub fn access_ddl(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {}\n(\n    event_time Int64,\n    event_date Date DEFAULT toDate(toDateTime(intDiv(event_time, 1000000))),\n    console_user String,\n    role String,\n    client_addr String,\n    action String,\n    page String,\n    subject String,\n    filters String,\n    status UInt16,\n    `rows` UInt64\n)\nENGINE = MergeTree\nPARTITION BY toYYYYMM(event_date)\nORDER BY (event_time, console_user)",
            self.table("console_access")
        )
    }

    /// Creates `console_access` (and the database, when the console starts
    /// before pgtrail made it) when missing.
    pub async fn ensure_access_table(&self) -> Result<(), StoreError> {
        let database = format!("CREATE DATABASE IF NOT EXISTS `{}`", self.database());
        self.execute("CREATE DATABASE", &Sql::new(&database))
            .await?;
        self.execute("console_access DDL", &Sql::new(&self.access_ddl()))
            .await
    }

    pub fn record_sql(&self, a: &Access<'_>) -> Sql {
        let mut sql = Sql::new("INSERT INTO ");
        sql.push(&self.table("console_access"))
            .push(" (")
            .push(COLUMNS)
            .with(
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    Arg::I64(a.time),
                    Arg::Str(a.console_user.into()),
                    Arg::Str(a.role.into()),
                    Arg::Str(a.client_addr.into()),
                    Arg::Str(a.action.name().into()),
                    Arg::Str(a.page.into()),
                    Arg::Str(a.subject.into()),
                    Arg::Str(a.filters.into()),
                    Arg::U64(a.status.into()),
                    Arg::U64(a.rows),
                ],
            );
        sql
    }

    pub async fn record(&self, a: &Access<'_>) -> Result<(), StoreError> {
        self.execute("console_access", &self.record_sql(a)).await
    }

    pub fn access_log_sql(
        &self,
        range: Range,
        user: Option<&str>,
        action: Option<&str>,
        limit: u32,
    ) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM ")
            .push(&self.table("console_access"))
            .with(" WHERE event_time >= ? AND event_time < ?", range.args())
            .and_str(" AND console_user = ?", user)
            .and_str(" AND action = ?", action)
            .with(
                " ORDER BY event_time DESC LIMIT ?",
                [Arg::U64(limit.into())],
            );
        sql
    }

    pub async fn access_log(
        &self,
        range: Range,
        user: Option<&str>,
        action: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessRow>, StoreError> {
        self.fetch(
            "console_access",
            &self.access_log_sql(range, user, action, limit),
        )
        .await
    }
}
