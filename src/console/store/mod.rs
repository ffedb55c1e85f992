//! Reading the trail from ClickHouse for the console.
//!
//! Every query is built by [`Sql`]: its text is made only of `&'static str`
//! pieces and the configured database name (a checked plain identifier);
//! request input reaches ClickHouse only as a bound value, escaped by the
//! `clickhouse` crate on the client side (ClickHouse 18.16 has no server
//! query parameters). Every query is bounded by a time range on
//! `event_time` (the second column of the tables' sorting keys, after
//! `user`, which person filters add) and by a `LIMIT`.
//!
//! One dialect difference matters here: `event_time` is `Int64`
//! microseconds on 18.16 and `DateTime64(6, 'UTC')` on modern servers. Both
//! are an Int64 of microseconds in RowBinary (so are `min`/`max` of it),
//! so the row types are shared; only comparisons and dates differ
//! ([`Dialect`]).
//!
//! A record delivered twice (a retried batch before a merge) shows once:
//! reads keep one row per record with `LIMIT 1 BY instance_id, seq`
//! ([`ONE_PER_RECORD`]; `changes` by their own key, [`ONE_PER_CHANGE`])
//! instead of `FINAL`, which on 18.16 merges in one thread and made list
//! pages 5 to 10 times slower on 5 million records (benches/console_speed.sh).
//! Lists select the keys of the rows they show from the narrow columns
//! first and read the wide ones (statement text, arrays) only for those
//! (`latest`).

pub mod compliance;
pub mod latest;
pub mod overview;
pub mod people;
pub mod rows;
pub mod sessions;
pub mod statements;
pub mod tables;

use std::fmt;

use clickhouse::{Client, Compression};

use crate::audit::sink::clickhouse::schema::ServerVersion;

/// Keeps one row per record (after `ORDER BY`, before `LIMIT`).
pub const ONE_PER_RECORD: &str = " LIMIT 1 BY instance_id, seq";
/// Keeps one row per change (the `changes` table's sorting key).
pub const ONE_PER_CHANGE: &str =
    " LIMIT 1 BY `database`, `schema`, `table`, commit_lsn, change_index";

/// A value bound to one `?` of a query.
#[derive(Debug, Clone)]
pub enum Arg {
    Str(String),
    I64(i64),
    U64(u64),
}

/// A query: fixed text with `?` placeholders, and the values for them.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends fixed text (no placeholders).
    pub fn push(&mut self, text: &str) -> &mut Sql {
        debug_assert!(!text.contains('?'), "{text}");
        self.text.push_str(text);
        self
    }

    /// Appends `text`, whose placeholders take `args` in order.
    pub fn with(&mut self, text: &'static str, args: impl IntoIterator<Item = Arg>) -> &mut Sql {
        self.text.push_str(text);
        self.args.extend(args);
        debug_assert_eq!(
            self.text.matches('?').count(),
            self.args.len(),
            "{}",
            self.text
        );
        self
    }

    /// ` AND <cond>` with one string argument, when `value` is given.
    pub fn and_str(&mut self, cond: &'static str, value: Option<&str>) -> &mut Sql {
        if let Some(v) = value {
            self.with(cond, [Arg::Str(v.to_string())]);
        }
        self
    }

    /// Appends `prefix` and `(?, ?, ...)`, one placeholder per value (the
    /// text depends only on how many there are).
    pub fn in_list(
        &mut self,
        prefix: &'static str,
        values: impl IntoIterator<Item = Arg>,
    ) -> &mut Sql {
        let values: Vec<Arg> = values.into_iter().collect();
        self.text.push_str(prefix);
        self.text.push('(');
        for i in 0..values.len() {
            self.text.push_str(if i == 0 { "?" } else { ", ?" });
        }
        self.text.push(')');
        self.args.extend(values);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The crate's query with every value bound.
    fn query(&self, client: &Client) -> clickhouse::query::Query {
        let mut q = client.query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Str(s) => q.bind(s.as_str()),
                Arg::I64(v) => q.bind(*v),
                Arg::U64(v) => q.bind(*v),
            };
        }
        q
    }

    /// The text as ClickHouse receives it (values in place), for tests
    /// that run the queries on other servers.
    pub fn rendered(&self) -> String {
        self.query(&Client::default()).sql_display().to_string()
    }
}

/// A read failed; the page says so without the server's message (which
/// may quote the query), the log has it.
#[derive(Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

fn ch_error(what: &str, e: clickhouse::error::Error) -> StoreError {
    StoreError(format!("{what}: {e}"))
}

/// Where `event_time` and dates differ between 18.16 and modern servers.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    pub modern: bool,
}

impl Dialect {
    /// `event_time` in `[?, ?)`, both bound as microseconds.
    pub fn time_range(self) -> &'static str {
        if self.modern {
            " AND event_time >= fromUnixTimestamp64Micro(toInt64(?)) AND event_time < fromUnixTimestamp64Micro(toInt64(?))"
        } else {
            " AND event_time >= ? AND event_time < ?"
        }
    }

    /// ` PREWHERE <event_time in [?, ?)> WHERE 1`, or ` WHERE 1`. The range
    /// in PREWHERE drops the rows of the boundary granules before any
    /// other column is read or condition evaluated: on 18.16 a text search
    /// over a day of 5 million records went from 177 to 69 ms.
    pub fn where_range(self, sql: &mut Sql, range: Option<Range>) {
        if let Some(r) = range {
            let cond = self.time_range().trim_start_matches(" AND");
            sql.push(" PREWHERE");
            sql.with(cond, r.args());
        }
        sql.push(" WHERE 1");
    }

    /// The UTC day of `event_time`, as `YYYY-MM-DD` text.
    pub fn day(self) -> &'static str {
        if self.modern {
            "toString(toDate(event_time, 'UTC'))"
        } else {
            "toString(toDate(toDateTime(intDiv(event_time, 1000000)), 'UTC'))"
        }
    }
}

/// A half-open time range in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
}

impl Range {
    pub fn args(self) -> [Arg; 2] {
        [Arg::I64(self.from), Arg::I64(self.to)]
    }
}

/// The console's connection to ClickHouse: a reading client (readonly, with
/// a time limit per query) and a writing one for its own access records.
pub struct Store {
    reader: Client,
    writer: Client,
    db: String,
    pub dialect: Dialect,
    pub server_version: String,
}

/// A query running longer than this is stopped by ClickHouse.
const MAX_EXECUTION_SECONDS: &str = "20";

impl Store {
    /// `database` must be a plain identifier (`config::plain_identifier`).
    pub async fn connect(
        url: &str,
        database: &str,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Result<Store, StoreError> {
        // Uncompressed answers: 18.16 sends an empty body for compressed
        // RowBinary results.
        let mut base = Client::default()
            .with_url(url)
            .with_compression(Compression::None);
        if let Some(u) = user {
            base = base.with_user(u);
        }
        if let Some(p) = password {
            base = base.with_password(p);
        }
        let reader = base
            .clone()
            .with_option("readonly", "2")
            .with_option("max_execution_time", MAX_EXECUTION_SECONDS);
        let text: String = reader
            .query("SELECT version()")
            .fetch_one()
            .await
            .map_err(|e| ch_error("SELECT version()", e))?;
        let version = ServerVersion::parse(&text)
            .ok_or_else(|| StoreError(format!("unrecognised ClickHouse version {text:?}")))?;
        Ok(Store {
            reader,
            writer: base,
            db: database.to_string(),
            dialect: Dialect {
                modern: version.is_modern(),
            },
            server_version: text,
        })
    }

    /// A store that only renders queries (`Sql::rendered`) for a dialect:
    /// tests run them on servers of either kind. Its clients point nowhere.
    pub fn offline(database: &str, modern: bool) -> Store {
        Store {
            reader: Client::default(),
            writer: Client::default(),
            db: database.to_string(),
            dialect: Dialect { modern },
            server_version: String::new(),
        }
    }

    /// `` `db`.`table` `` for a fixed table name.
    pub fn table(&self, name: &'static str) -> String {
        format!("`{}`.`{name}`", self.db)
    }

    pub fn database(&self) -> &str {
        &self.db
    }

    pub async fn fetch<T>(&self, what: &str, sql: &Sql) -> Result<Vec<T>, StoreError>
    where
        T: clickhouse::Row + serde::de::DeserializeOwned,
    {
        sql.query(&self.reader)
            .fetch_all()
            .await
            .map_err(|e| ch_error(what, e))
    }

    /// Runs a statement with the writing client (the console's own table).
    pub async fn execute(&self, what: &str, sql: &Sql) -> Result<(), StoreError> {
        sql.query(&self.writer)
            .execute()
            .await
            .map_err(|e| ch_error(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_not_formatted() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE 1");
        sql.and_str(" AND `user` = ?", Some("x' OR 1=1 --"));
        sql.with(" AND seq = ?", [Arg::U64(7)]);
        let r = sql.rendered();
        assert_eq!(
            r,
            "SELECT 1 FROM t WHERE 1 AND `user` = 'x\\' OR 1=1 --' AND seq = 7"
        );
        assert_eq!(
            sql.text(),
            "SELECT 1 FROM t WHERE 1 AND `user` = ? AND seq = ?"
        );
    }
}
