//! Statement search, top fingerprints, one statement, a session's
//! statements.

use clickhouse::Row;
use serde::Deserialize;

use super::rows::{statement_columns, StatementRow};
use super::{Arg, Range, Sql, Store, StoreError, ONE_PER_RECORD};
use crate::console::filters::Filters;
use crate::console::users::Role;

/// The statements a privilege change is made of: the predicate of the
/// `privilege_changes` view (schema/views.rs; a test keeps them equal).
pub const PRIVILEGE_PREDICATE: &str = "(class = 'dcl' OR audit_class = 'ROLE' OR kind IN ('reassign_owned', 'drop_owned', 'alter_system', 'create_user_mapping', 'alter_user_mapping', 'drop_user_mapping', 'create_policy', 'alter_policy', 'drop_policy'))";

/// A fingerprint's count and total time.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct FingerprintRow {
    pub fingerprint: u64,
    pub normalized: String,
    pub kind: String,
    pub count: u64,
    pub total_us: u64,
    pub users: u64,
}

/// The names a table filter matches in `objects_read`/`objects_written`
/// (names are kept as written): `orders` and `public.orders` are one table.
pub fn table_variants(name: &str) -> [String; 2] {
    match name.strip_prefix("public.") {
        Some(bare) => [name.to_string(), bare.to_string()],
        None if !name.contains('.') => [name.to_string(), format!("public.{name}")],
        None => [name.to_string(), name.to_string()],
    }
}

impl Store {
    /// `WHERE 1` plus every statement filter that is set.
    pub fn statement_filters(&self, sql: &mut Sql, f: &Filters) {
        if let Some(r) = f.range {
            sql.with(self.dialect.time_range(), r.args());
        }
        sql.and_str(" AND `user` = ?", f.user.as_deref())
            .and_str(" AND db_role = ?", f.role.as_deref())
            .and_str(" AND `database` = ?", f.database.as_deref())
            .and_str(" AND client_addr = ?", f.client.as_deref())
            .and_str(" AND application_name = ?", f.app.as_deref())
            .and_str(" AND kind = ?", f.kind.as_deref())
            .and_str(" AND class = ?", f.class.as_deref())
            .and_str(" AND sqlstate = ?", f.sqlstate.as_deref())
            .and_str(" AND session_id = ?", f.session.as_deref());
        if let Some(ok) = f.success {
            sql.push(if ok {
                " AND success = 1"
            } else {
                " AND success = 0"
            });
        }
        if let Some(fp) = f.fingerprint {
            sql.with(" AND fingerprint = ?", [Arg::U64(fp)]);
        }
        if let Some(t) = &f.table {
            let [a, b] = table_variants(t);
            sql.with(
                " AND (has(objects_read, ?) OR has(objects_written, ?) OR has(objects_read, ?) OR has(objects_written, ?))",
                [Arg::Str(a.clone()), Arg::Str(a), Arg::Str(b.clone()), Arg::Str(b)],
            );
        }
        for w in &f.words {
            if self.dialect.modern {
                // Served by the tokenbf_v1 skip index on `statement`.
                sql.with(
                    " AND hasTokenCaseInsensitive(`statement`, ?)",
                    [Arg::Str(w.clone())],
                );
            } else {
                // A whole word, any case; `w` is letters, digits and `_`.
                sql.with(
                    " AND match(`statement`, ?)",
                    [Arg::Str(format!("(?i)\\b{w}\\b"))],
                );
            }
        }
    }

    /// The newest `limit` statements matching `filters` (a closure adding
    /// ` AND ...` conditions to the inner query), one row per record: the
    /// keys come from the narrow columns, the wide ones are read only for
    /// them (PREWHERE on the keys).
    pub fn latest_statements(
        &self,
        role: Role,
        limit: u32,
        range: Option<Range>,
        filters: impl FnOnce(&mut Sql),
    ) -> Sql {
        let table = self.table("statements");
        let mut sql = Sql::new("SELECT ");
        sql.push(statement_columns(role))
            .push(" FROM ")
            .push(&table)
            .push(" PREWHERE (instance_id, seq) IN (SELECT instance_id, seq FROM ")
            .push(&table)
            .push(" WHERE 1");
        filters(&mut sql);
        // Twice the rows: copies of a record count once below.
        sql.with(
            " ORDER BY event_time DESC, seq DESC LIMIT ?) WHERE 1",
            [Arg::U64(u64::from(limit) * 2)],
        );
        if let Some(r) = range {
            sql.with(self.dialect.time_range(), r.args());
        }
        sql.push(" ORDER BY event_time DESC, seq DESC")
            .push(ONE_PER_RECORD)
            .with(" LIMIT ?", [Arg::U64(limit.into())]);
        sql
    }

    pub fn search_sql(&self, f: &Filters, role: Role, limit: u32) -> Sql {
        self.latest_statements(role, limit, f.range, |sql| self.statement_filters(sql, f))
    }

    pub async fn search(
        &self,
        f: &Filters,
        role: Role,
        limit: u32,
    ) -> Result<Vec<StatementRow>, StoreError> {
        self.fetch("statement search", &self.search_sql(f, role, limit))
            .await
    }

    /// Fingerprints by count (`by_time`: by total duration), top 20.
    pub fn fingerprints_sql(&self, f: &Filters, by_time: bool) -> Sql {
        let mut sql = Sql::new("SELECT fingerprint, any(normalized), any(kind), count() AS n, sum(duration_us) AS total, uniqExact(`user`) FROM (SELECT fingerprint, normalized, kind, duration_us, `user` FROM ");
        sql.push(&self.table("statements")).push(" WHERE 1");
        self.statement_filters(&mut sql, f);
        sql.push(ONE_PER_RECORD).push(")");
        sql.push(if by_time {
            " GROUP BY fingerprint ORDER BY total DESC, n DESC LIMIT 20"
        } else {
            " GROUP BY fingerprint ORDER BY n DESC, total DESC LIMIT 20"
        });
        sql
    }

    pub async fn fingerprints(
        &self,
        f: &Filters,
        by_time: bool,
    ) -> Result<Vec<FingerprintRow>, StoreError> {
        self.fetch("top fingerprints", &self.fingerprints_sql(f, by_time))
            .await
    }

    /// One statement by `(instance_id, seq)`; `user` and the time `t`
    /// (which links carry) let the sorting key find it without a scan.
    pub fn statement_sql(
        &self,
        instance: &str,
        seq: u64,
        user: Option<&str>,
        t: Option<i64>,
        role: Role,
    ) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(statement_columns(role))
            .push(" FROM ")
            .push(&self.table("statements"))
            .with(
                " WHERE instance_id = ? AND seq = ?",
                [Arg::Str(instance.into()), Arg::U64(seq)],
            )
            .and_str(" AND `user` = ?", user);
        if let Some(t) = t {
            let r = Range {
                from: t,
                to: t.saturating_add(1),
            };
            sql.with(self.dialect.time_range(), r.args());
        }
        sql.push(" LIMIT 1");
        sql
    }

    pub async fn statement(
        &self,
        instance: &str,
        seq: u64,
        user: Option<&str>,
        t: Option<i64>,
        role: Role,
    ) -> Result<Option<StatementRow>, StoreError> {
        let sql = self.statement_sql(instance, seq, user, t, role);
        Ok(self.fetch("statement", &sql).await?.into_iter().next())
    }

    /// Every statement of a session in order (`user` and the session's
    /// time span from its session records use the sorting key).
    pub fn session_statements_sql(
        &self,
        session: &str,
        user: &str,
        span: Range,
        role: Role,
        limit: u32,
    ) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(statement_columns(role))
            .push(" FROM ")
            .push(&self.table("statements"))
            .with(" WHERE `user` = ?", [Arg::Str(user.into())])
            .with(self.dialect.time_range(), span.args())
            .with(
                " AND session_id = ? ORDER BY seq LIMIT 1 BY instance_id, seq LIMIT ?",
                [Arg::Str(session.into()), Arg::U64(limit.into())],
            );
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_match_with_and_without_public() {
        assert_eq!(table_variants("orders"), ["orders", "public.orders"]);
        assert_eq!(table_variants("public.orders"), ["public.orders", "orders"]);
        assert_eq!(table_variants("s.orders"), ["s.orders", "s.orders"]);
    }
}
