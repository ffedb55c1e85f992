//! A person: activity by day, tables touched, privilege changes naming
//! them. (Failed logins and privilege changes they made are the
//! compliance views filtered by `user`.)

use clickhouse::Row;
use serde::Deserialize;

use super::rows::StatementRow;
use super::statements::PRIVILEGE_PREDICATE;
use super::{Arg, Range, Sql, Store, StoreError, ONE_PER_RECORD};
use crate::console::users::Role;

#[derive(Debug, Clone, Row, Deserialize)]
pub struct DayRow {
    pub day: String,
    pub statements: u64,
    pub reads: u64,
    pub writes: u64,
    pub ddl: u64,
    pub failed: u64,
    pub sessions: u64,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct TouchedRow {
    pub object: String,
    pub reads: u64,
    pub writes: u64,
    pub last: i64,
}

impl Store {
    pub fn person_days_sql(&self, user: &str, range: Range) -> Sql {
        let mut sql = Sql::new("SELECT d, count(), countIf(class = 'read'), countIf(class = 'write'), countIf(class = 'ddl'), countIf(success = 0), uniqExact(session_id) FROM (SELECT ");
        sql.push(self.dialect.day())
            .push(" AS d, class, success, session_id FROM ")
            .push(&self.table("statements"))
            .with(" WHERE `user` = ?", [Arg::Str(user.into())])
            .with(self.dialect.time_range(), range.args())
            .push(ONE_PER_RECORD)
            .push(") GROUP BY d ORDER BY d DESC LIMIT 400");
        sql
    }

    pub async fn person_days(&self, user: &str, range: Range) -> Result<Vec<DayRow>, StoreError> {
        self.fetch("activity by day", &self.person_days_sql(user, range))
            .await
    }

    /// Every object the person's statements read or wrote.
    pub fn person_tables_sql(&self, user: &str, range: Range) -> Sql {
        let mut sql = Sql::new("SELECT object, countIf(access = 'read'), countIf(access = 'write'), max(event_time) FROM (SELECT event_time, tupleElement(object_access, 1) AS access, tupleElement(object_access, 2) AS object FROM (SELECT event_time, objects_read, objects_written FROM ");
        sql.push(&self.table("statements"))
            .with(" WHERE `user` = ?", [Arg::Str(user.into())])
            .with(self.dialect.time_range(), range.args())
            .push(ONE_PER_RECORD)
            .push(") ARRAY JOIN arrayConcat(arrayMap(o -> ('read', CAST(o AS String)), objects_read), arrayMap(o -> ('write', CAST(o AS String)), objects_written)) AS object_access) GROUP BY object ORDER BY count() DESC LIMIT 500");
        sql
    }

    pub async fn person_tables(
        &self,
        user: &str,
        range: Range,
    ) -> Result<Vec<TouchedRow>, StoreError> {
        self.fetch("tables touched", &self.person_tables_sql(user, range))
            .await
    }

    /// Privilege changes by others whose text names the person (the
    /// record has no grantee column, so this is a text match, made a
    /// whole-word one by `names_word`); the predicate is the PREWHERE.
    fn received_filters(&self, user: &str, sql: &mut Sql) {
        sql.with(
            " AND `user` != ? AND positionCaseInsensitive(`statement`, ?) > 0",
            [Arg::Str(user.into()), Arg::Str(user.into())],
        );
    }

    /// The keys step of `privileges_received`: the privilege predicate in
    /// PREWHERE (one statement in a thousand), so that the statement text
    /// is read only for those (30 days in PREWHERE read all of it: 0.5 s).
    pub fn privileges_received_sql(&self, user: &str, range: Range, limit: u32) -> Sql {
        self.keys_sql_where(
            limit,
            |sql| {
                sql.push(" PREWHERE ")
                    .push(PRIVILEGE_PREDICATE)
                    .push(" WHERE 1");
            },
            |sql| {
                sql.with(self.dialect.time_range(), range.args());
                self.received_filters(user, sql)
            },
        )
    }

    pub async fn privileges_received(
        &self,
        user: &str,
        range: Range,
        role: Role,
        limit: u32,
    ) -> Result<Vec<StatementRow>, StoreError> {
        let rows = self
            .latest(
                "privileges received",
                role,
                limit,
                self.privileges_received_sql(user, range, limit),
            )
            .await?;
        // A whole word: `ann` does not name `joanna`.
        Ok(rows
            .into_iter()
            .filter(|r| names_word(&r.statement, user))
            .collect())
    }
}

/// Whether `text` contains `word` (any case) not inside a longer name.
pub fn names_word(text: &str, word: &str) -> bool {
    let lower = text.to_lowercase();
    let word = word.to_lowercase();
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    lower.match_indices(&word).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

#[cfg(test)]
mod tests {
    use super::names_word;

    #[test]
    fn whole_words_only() {
        assert!(names_word("GRANT SELECT ON t TO ann", "ann"));
        assert!(names_word("grant r to \"Ann\";", "ann"));
        assert!(!names_word("GRANT SELECT ON t TO joanna", "ann"));
        assert!(!names_word("GRANT x TO ann_2", "ann"));
    }
}
