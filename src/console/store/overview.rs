//! The overview: counts over a range, the people active, audit health.
//! Its queries run side by side (ClickHouse has a core for each).

use clickhouse::Row;
use serde::Deserialize;

use super::statements::PRIVILEGE_PREDICATE;
use super::{Range, Sql, Store, StoreError, ONE_PER_CHANGE, ONE_PER_RECORD};

/// Totals over the range, summed from the people's rows (a session has one
/// person, so sessions add up too).
#[derive(Debug, Clone, Default)]
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

/// One person's statements in the range.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct PersonRow {
    pub user: String,
    pub statements: u64,
    pub failed: u64,
    pub writes: u64,
    pub ddl: u64,
    pub privilege: u64,
    pub sessions: u64,
    pub last: i64,
}

/// Per instance: the newest statement record in the range.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct InstanceRow {
    pub instance_id: String,
    pub last_seq: u64,
    pub last_time: i64,
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

/// At most this many people are counted one by one (the totals are theirs).
const MAX_PEOPLE: &str = " LIMIT 100000";

impl Store {
    /// `SELECT <aggregates> FROM (SELECT <columns> FROM <table> WHERE
    /// <range> <one per record>) <rest>`.
    fn deduped(
        &self,
        aggregates: &str,
        columns: &str,
        table: &'static str,
        one: &str,
        range: Range,
        rest: &str,
    ) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(aggregates)
            .push(" FROM (SELECT ")
            .push(columns)
            .push(" FROM ")
            .push(&self.table(table));
        self.dialect.where_range(&mut sql, Some(range));
        sql.push(one).push(")").push(rest);
        sql
    }

    pub fn overview_sql(&self, range: Range) -> [Sql; 5] {
        let people = format!(
            "`user`, count() AS n, countIf(success = 0), countIf(class = 'write'), countIf(class = 'ddl'), countIf({PRIVILEGE_PREDICATE}), uniqExact(session_id), max(event_time)"
        );
        let mut instances =
            Sql::new("SELECT CAST(instance_id AS String) AS i, max(seq), max(event_time) FROM ");
        instances
            .push(&self.table("statements"))
            .push(" WHERE 1")
            .with(self.dialect.time_range(), range.args())
            .push(" GROUP BY i ORDER BY i LIMIT 100");
        [
            self.deduped(
                &people,
                "`user`, success, class, audit_class, kind, session_id, event_time",
                "statements",
                ONE_PER_RECORD,
                range,
                &format!(" GROUP BY `user` ORDER BY n DESC{MAX_PEOPLE}"),
            ),
            self.deduped(
                "countIf(event_type = 'auth_failed'), countIf(event_type = 'auth_ok')",
                "event_type",
                "sessions",
                ONE_PER_RECORD,
                range,
                "",
            ),
            self.deduped(
                "count(), countIf(attribution = 'none')",
                "attribution",
                "changes",
                ONE_PER_CHANGE,
                range,
                "",
            ),
            instances,
            self.deduped(
                "count(), sum(missing_events), sum(skipped_seqs)",
                "missing_events, skipped_seqs",
                "gaps",
                ONE_PER_RECORD,
                range,
                "",
            ),
        ]
    }

    pub async fn overview(&self, range: Range) -> Result<Overview, StoreError> {
        let [people, logins, changes, instances, gaps] = self.overview_sql(range);
        let (checkpoints, lifecycle) = (self.marks_sql("checkpoints"), self.marks_sql("lifecycle"));
        let (people, logins, changes, instances, gaps, checkpoints, lifecycle) = tokio::try_join!(
            self.fetch::<PersonRow>("people", &people),
            self.fetch::<LoginTotals>("logins", &logins),
            self.fetch::<ChangeTotals>("changes", &changes),
            self.fetch::<InstanceRow>("instances", &instances),
            self.fetch::<GapTotals>("gaps", &gaps),
            self.fetch::<MarkRow>("checkpoints", &checkpoints),
            self.fetch::<MarkRow>("lifecycle", &lifecycle),
        )?;
        Ok(Overview {
            totals: totals(&people),
            people,
            logins: first(logins),
            changes: first(changes),
            instances,
            gaps: first(gaps),
            checkpoints,
            lifecycle,
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

fn totals(people: &[PersonRow]) -> StatementTotals {
    let sum = |f: fn(&PersonRow) -> u64| people.iter().map(f).sum();
    StatementTotals {
        statements: sum(|p| p.statements),
        failed: sum(|p| p.failed),
        ddl: sum(|p| p.ddl),
        privilege: sum(|p| p.privilege),
        writes: sum(|p| p.writes),
        people: people.len() as u64,
        sessions: sum(|p| p.sessions),
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
    /// Every person active in the range, most statements first.
    pub people: Vec<PersonRow>,
    pub instances: Vec<InstanceRow>,
    pub gaps: GapTotals,
    pub checkpoints: Vec<MarkRow>,
    pub lifecycle: Vec<MarkRow>,
}
