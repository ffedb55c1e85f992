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

/// How many fingerprints each top list shows.
const TOP: usize = 20;

/// A fingerprint's count and total time, as grouped.
#[derive(Debug, Clone, Row, Deserialize)]
struct FingerprintStats {
    fingerprint: u64,
    kind: String,
    count: u64,
    total_us: u64,
    users: u64,
}

/// A fingerprint with its normalized text, as the page shows it.
#[derive(Debug, Clone)]
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
    /// ` AND ...` for every statement filter that is set but the time range
    /// (`Dialect::where_range`).
    pub fn statement_filters(&self, sql: &mut Sql, f: &Filters) {
        sql.and_str(" AND `user` = ?", f.user.as_deref())
            .and_str(" AND end_user = ?", f.end_user.as_deref())
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

    /// The keys step of a search (`latest`).
    pub fn search_sql(&self, f: &Filters, limit: u32) -> Sql {
        self.keys_sql(limit, f.range, |sql| self.statement_filters(sql, f))
    }

    pub async fn search(
        &self,
        f: &Filters,
        role: Role,
        limit: u32,
    ) -> Result<Vec<StatementRow>, StoreError> {
        self.latest("statement search", role, limit, self.search_sql(f, limit))
            .await
    }

    /// Every fingerprint of the matching statements with its count, total
    /// time and people (one scan; both top lists are cut from it).
    pub fn fingerprints_sql(&self, f: &Filters) -> Sql {
        let mut sql = Sql::new("SELECT fingerprint, any(kind), count() AS n, sum(duration_us) AS total, uniqExact(`user`) FROM (SELECT fingerprint, kind, duration_us, `user` FROM ");
        sql.push(&self.table("statements"));
        self.dialect.where_range(&mut sql, f.range);
        self.statement_filters(&mut sql, f);
        sql.push(ONE_PER_RECORD)
            .push(") GROUP BY fingerprint ORDER BY n DESC LIMIT 100000");
        sql
    }

    /// One normalized text of each fingerprint (the first found).
    pub fn normalized_sql(&self, range: Option<Range>, fingerprints: &[u64]) -> Sql {
        let mut sql = Sql::new("SELECT fingerprint, normalized FROM ");
        sql.push(&self.table("statements"));
        self.dialect.where_range(&mut sql, range);
        sql.in_list(
            " AND fingerprint IN ",
            fingerprints.iter().map(|f| Arg::U64(*f)),
        )
        .with(
            " LIMIT 1 BY fingerprint LIMIT ?",
            [Arg::U64(fingerprints.len() as u64)],
        );
        sql
    }

    /// The top fingerprints by count and by total time.
    pub async fn fingerprints(
        &self,
        f: &Filters,
    ) -> Result<(Vec<FingerprintRow>, Vec<FingerprintRow>), StoreError> {
        let all: Vec<FingerprintStats> = self
            .fetch("top fingerprints", &self.fingerprints_sql(f))
            .await?;
        let by_count: Vec<&FingerprintStats> = all.iter().take(TOP).collect();
        let mut by_time: Vec<&FingerprintStats> = all.iter().collect();
        by_time.sort_by_key(|s| std::cmp::Reverse((s.total_us, s.count)));
        by_time.truncate(TOP);
        let mut wanted: Vec<u64> = by_count
            .iter()
            .chain(&by_time)
            .map(|s| s.fingerprint)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let texts: Vec<(u64, String)> = if wanted.is_empty() {
            Vec::new()
        } else {
            self.fetch("normalized", &self.normalized_sql(f.range, &wanted))
                .await?
        };
        let text = |fp: u64| {
            texts
                .iter()
                .find(|t| t.0 == fp)
                .map(|t| t.1.clone())
                .unwrap_or_default()
        };
        let row = |s: &&FingerprintStats| FingerprintRow {
            fingerprint: s.fingerprint,
            normalized: text(s.fingerprint),
            kind: s.kind.clone(),
            count: s.count,
            total_us: s.total_us,
            users: s.users,
        };
        Ok((
            by_count.iter().map(row).collect(),
            by_time.iter().map(row).collect(),
        ))
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
