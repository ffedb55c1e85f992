//! A table: who read and wrote it, and its row history.

use clickhouse::Row;
use serde::Deserialize;

use super::rows::{ChangeRow, CHANGE_COLUMNS};
use super::statements::table_variants;
use super::{Arg, Range, Sql, Store, StoreError, ONE_PER_CHANGE, ONE_PER_RECORD};
use crate::console::users::Role;

/// One person's reads and writes of a table in the range.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct TableUserRow {
    pub user: String,
    pub reads: u64,
    pub writes: u64,
    pub failed: u64,
    pub first: i64,
    pub last: i64,
}

/// `schema` and `table` of a name as written (`public` when bare).
pub fn split_table(name: &str) -> (String, String) {
    match name.rsplit_once('.') {
        Some((schema, table)) => (schema.to_string(), table.to_string()),
        None => ("public".to_string(), name.to_string()),
    }
}

/// The `col=value` pairs of a key filter (at most 16).
pub fn key_pairs(key: &str) -> Vec<String> {
    key.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .take(16)
        .map(str::to_string)
        .collect()
}

impl Store {
    pub fn table_users_sql(&self, table: &str, range: Range) -> Sql {
        let [a, b] = table_variants(table);
        let s = |v: &String| Arg::Str(v.clone());
        let mut sql = Sql::new("SELECT `user`, countIf(has(objects_read, ?) OR has(objects_read, ?)) AS reads, countIf(has(objects_written, ?) OR has(objects_written, ?)) AS writes, countIf(success = 0), min(event_time), max(event_time) FROM (SELECT `user`, objects_read, objects_written, success, event_time FROM ");
        sql.with("", [s(&a), s(&b), s(&a), s(&b)]);
        sql.push(&self.table("statements"));
        self.dialect.where_range(&mut sql, Some(range));
        sql.with(
                " AND (has(objects_read, ?) OR has(objects_written, ?) OR has(objects_read, ?) OR has(objects_written, ?))",
                [s(&a), s(&a), s(&b), s(&b)],
            )
            .push(ONE_PER_RECORD)
            .push(") GROUP BY `user` ORDER BY writes DESC, reads DESC LIMIT 500");
        sql
    }

    pub async fn table_users(
        &self,
        table: &str,
        range: Range,
    ) -> Result<Vec<TableUserRow>, StoreError> {
        self.fetch("table access", &self.table_users_sql(table, range))
            .await
    }

    /// Row changes of a table, newest first; `key` is `col=value[,...]`:
    /// changes whose key has every pair (a table with REPLICA IDENTITY FULL
    /// has every column in its key, so `id=10` follows the row across
    /// updates where the whole `row_key` would change).
    pub fn row_history_sql(&self, table: &str, key: Option<&str>, range: Range, limit: u32) -> Sql {
        let (schema, name) = split_table(table);
        let mut sql = Sql::new("SELECT ");
        sql.push(CHANGE_COLUMNS)
            .push(" FROM ")
            .push(&self.table("changes"))
            .with(
                " WHERE `schema` = ? AND `table` = ?",
                [Arg::Str(schema), Arg::Str(name)],
            )
            .with(self.dialect.time_range(), range.args());
        for pair in key_pairs(key.unwrap_or("")) {
            sql.with(
                " AND has(arrayMap((n, x) -> concat(n, '=', ifNull(x, 'NULL')), `key.name`, `key.value`), ?)",
                [Arg::Str(pair)],
            );
        }
        sql.push(" ORDER BY commit_lsn DESC, change_index DESC")
            .push(ONE_PER_CHANGE)
            .with(" LIMIT ?", [Arg::U64(limit.into())]);
        sql
    }

    pub async fn row_history(
        &self,
        table: &str,
        key: Option<&str>,
        range: Range,
        role: Role,
        limit: u32,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let rows: Vec<ChangeRow> = self
            .fetch(
                "row history",
                &self.row_history_sql(table, key, range, limit),
            )
            .await?;
        Ok(rows.into_iter().map(|c| c.for_role(role)).collect())
    }
}
