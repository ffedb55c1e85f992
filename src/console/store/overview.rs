//! The overview: counts over a range, the people active, audit health.

use clickhouse::Row;
use serde::Deserialize;

use super::statements::PRIVILEGE_PREDICATE;
use super::{Range, Sql, Store, StoreError};

#[derive(Debug, Clone, Default, Row, Deserialize)]
pub struct StatementTotals {
    pub statements: u64,
    pub failed: u64,
    pub ddl: u64,
    pub privilege: u64,
    pub writes: u64,
    pub people: u64,
    pub sessions: u64,
}

#[derive(Debug, Clone, Default, Row, Deserialize)]
pub struct LoginTotals {
    pub failed_logins: u64,
    pub logins: u64,
}

#[derive(Debug, Clone, Default, Row, Deserialize)]
pub struct ChangeTotals {
    pub changes: u64,
    pub outside: u64,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct PersonRow {
    pub user: String,
    pub statements: u64,
    pub failed: u64,
    pub writes: u64,
    pub sessions: u64,
    pub last: i64,
}

/// Per instance: the newest statement record in the range.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct InstanceRow {
    pub instance_id: String,
    pub last_seq: u64,
    pub last_time: i64,
    pub records: u64,
}

#[derive(Debug, Clone, Default, Row, Deserialize)]
pub struct GapTotals {
    pub gaps: u64,
    pub missing_events: u64,
    pub skipped_seqs: u64,
}

/// Per instance: the last checkpoint and the last lifecycle event.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct MarkRow {
    pub instance_id: String,
    pub last_seq: u64,
    pub last_time: i64,
    pub detail: String,
}

impl Store {
    fn ranged(
        &self,
        select: &'static str,
        table: &'static str,
        range: Range,
        rest: &'static str,
    ) -> Sql {
        let mut sql = Sql::new(select);
        sql.push(&self.table(table))
            .push(" FINAL WHERE 1")
            .with(self.dialect.time_range(), range.args())
            .push(rest);
        sql
    }

    pub fn overview_sql(&self, range: Range) -> [Sql; 6] {
        let mut totals =
            Sql::new("SELECT count(), countIf(success = 0), countIf(class = 'ddl'), countIf(");
        totals
            .push(PRIVILEGE_PREDICATE)
            .push("), countIf(class = 'write'), uniqExact(`user`), uniqExact(session_id) FROM ")
            .push(&self.table("statements"))
            .push(" FINAL WHERE 1")
            .with(self.dialect.time_range(), range.args());
        [
            totals,
            self.ranged("SELECT countIf(event_type = 'auth_failed'), countIf(event_type = 'auth_ok') FROM ", "sessions", range, ""),
            self.ranged("SELECT count(), countIf(attribution = 'none') FROM ", "changes", range, ""),
            self.ranged("SELECT `user`, count() AS n, countIf(success = 0), countIf(class = 'write'), uniqExact(session_id), max(event_time) FROM ", "statements", range, " GROUP BY `user` ORDER BY n DESC LIMIT 100"),
            self.ranged("SELECT CAST(instance_id AS String) AS i, max(seq), max(event_time), count() FROM ", "statements", range, " GROUP BY i ORDER BY i LIMIT 100"),
            self.ranged("SELECT count(), sum(missing_events), sum(skipped_seqs) FROM ", "gaps", range, ""),
        ]
    }

    pub async fn overview(&self, range: Range) -> Result<Overview, StoreError> {
        let [totals, logins, changes, people, instances, gaps] = self.overview_sql(range);
        Ok(Overview {
            totals: first(self.fetch("totals", &totals).await?),
            logins: first(self.fetch("logins", &logins).await?),
            changes: first(self.fetch("changes", &changes).await?),
            people: self.fetch("people", &people).await?,
            instances: self.fetch("instances", &instances).await?,
            gaps: first(self.fetch("gaps", &gaps).await?),
            checkpoints: self
                .fetch("checkpoints", &self.marks_sql("checkpoints"))
                .await?,
            lifecycle: self
                .fetch("lifecycle", &self.marks_sql("lifecycle"))
                .await?,
        })
    }

    /// The newest record per instance of a small table (`checkpoints`,
    /// `lifecycle`), whatever the range: health is about now.
    pub fn marks_sql(&self, table: &'static str) -> Sql {
        let detail = if table == "checkpoints" {
            "CAST(argMax(key_id, seq) AS String)"
        } else {
            "CAST(argMax(event_type, seq) AS String)"
        };
        let mut sql =
            Sql::new("SELECT CAST(instance_id AS String) AS i, max(seq), max(event_time), ");
        sql.push(detail)
            .push(" FROM ")
            .push(&self.table(table))
            .push(" GROUP BY i ORDER BY i LIMIT 100");
        sql
    }
}

/// The one row of an aggregate without GROUP BY (none: zeros).
fn first<T: Default>(rows: Vec<T>) -> T {
    rows.into_iter().next().unwrap_or_default()
}

pub struct Overview {
    pub totals: StatementTotals,
    pub logins: LoginTotals,
    pub changes: ChangeTotals,
    pub people: Vec<PersonRow>,
    pub instances: Vec<InstanceRow>,
    pub gaps: GapTotals,
    pub checkpoints: Vec<MarkRow>,
    pub lifecycle: Vec<MarkRow>,
}
