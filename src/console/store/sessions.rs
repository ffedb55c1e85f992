//! Sessions: the list, one session's events, and what its timeline needs
//! besides its statements (transactions, row changes).

use super::rows::{
    ChangeRow, SessionEventRow, SessionRow, TransactionRow, CHANGE_COLUMNS, SESSION_EVENT_COLUMNS,
};
use super::{Arg, Range, Sql, Store, StoreError, ONE_PER_CHANGE, ONE_PER_RECORD};
use crate::console::filters::Filters;
use crate::console::users::Role;

impl Store {
    pub fn sessions_sql(&self, f: &Filters, limit: u32) -> Sql {
        let mut sql = Sql::new(
            "SELECT session_id, any(`user`), any(db_role), any(`database`), any(client_addr), any(application_name), min(event_time) AS started, max(event_time), max(statements), groupUniqArray(CAST(event_type AS String)), toUInt8(max(tls)) FROM (SELECT session_id, `user`, db_role, `database`, client_addr, application_name, event_time, statements, event_type, tls FROM ",
        );
        sql.push(&self.table("sessions")).push(" WHERE 1");
        if let Some(r) = f.range {
            sql.with(self.dialect.time_range(), r.args());
        }
        sql.and_str(" AND `user` = ?", f.user.as_deref())
            .and_str(" AND db_role = ?", f.role.as_deref())
            .and_str(" AND `database` = ?", f.database.as_deref())
            .and_str(" AND client_addr = ?", f.client.as_deref())
            .and_str(" AND application_name = ?", f.app.as_deref())
            .push(ONE_PER_RECORD)
            .with(
                ") GROUP BY session_id ORDER BY started DESC LIMIT ?",
                [Arg::U64(limit.into())],
            );
        sql
    }

    pub async fn sessions(&self, f: &Filters, limit: u32) -> Result<Vec<SessionRow>, StoreError> {
        self.fetch("sessions", &self.sessions_sql(f, limit)).await
    }

    /// A session's own records (at most a handful), in order.
    pub fn session_events_sql(&self, session: &str) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(SESSION_EVENT_COLUMNS)
            .push(" FROM ")
            .push(&self.table("sessions"))
            .with(
                " WHERE session_id = ? ORDER BY seq LIMIT 1 BY instance_id, seq LIMIT 100",
                [Arg::Str(session.into())],
            );
        sql
    }

    pub async fn session_events(&self, session: &str) -> Result<Vec<SessionEventRow>, StoreError> {
        self.fetch("session", &self.session_events_sql(session))
            .await
    }

    /// The transactions of a session (same person and span as its
    /// statements).
    pub fn session_transactions_sql(&self, session: &str, user: &str, span: Range) -> Sql {
        let mut sql = Sql::new("SELECT toString(transaction_id), outcome, first_seq, last_seq, rows_changed, undone_from_seq, undone_to_seq FROM ");
        sql.push(&self.table("transactions"))
            .with(" WHERE `user` = ?", [Arg::Str(user.into())])
            .with(self.dialect.time_range(), span.args())
            .with(
                " AND session_id = ? ORDER BY seq LIMIT 1 BY instance_id, seq LIMIT 10000",
                [Arg::Str(session.into())],
            );
        sql
    }

    pub async fn session_transactions(
        &self,
        session: &str,
        user: &str,
        span: Range,
    ) -> Result<Vec<TransactionRow>, StoreError> {
        self.fetch(
            "transactions",
            &self.session_transactions_sql(session, user, span),
        )
        .await
    }

    /// The row changes attributed to a session, in commit order.
    pub fn session_changes_sql(&self, session: &str, span: Range, limit: u32) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(CHANGE_COLUMNS)
            .push(" FROM ")
            .push(&self.table("changes"))
            .with(" WHERE session_id = ?", [Arg::Str(session.into())])
            .with(self.dialect.time_range(), span.args())
            .push(" ORDER BY commit_lsn, change_index")
            .push(ONE_PER_CHANGE)
            .with(" LIMIT ?", [Arg::U64(limit.into())]);
        sql
    }

    /// The row changes one statement made (written after it, within `span`).
    pub fn statement_changes_sql(&self, session: &str, seq: u64, span: Range) -> Sql {
        let mut sql = Sql::new("SELECT ");
        sql.push(CHANGE_COLUMNS)
            .push(" FROM ")
            .push(&self.table("changes"))
            .with(
                " WHERE session_id = ? AND statement_seq = ?",
                [Arg::Str(session.into()), Arg::U64(seq)],
            )
            .with(self.dialect.time_range(), span.args())
            .push(" ORDER BY commit_lsn, change_index")
            .push(ONE_PER_CHANGE)
            .push(" LIMIT 1000");
        sql
    }

    pub async fn statement_changes(
        &self,
        session: &str,
        seq: u64,
        span: Range,
        role: Role,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let rows: Vec<ChangeRow> = self
            .fetch("changes", &self.statement_changes_sql(session, seq, span))
            .await?;
        Ok(rows.into_iter().map(|c| c.for_role(role)).collect())
    }

    pub async fn session_changes(
        &self,
        session: &str,
        span: Range,
        role: Role,
        limit: u32,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let rows: Vec<ChangeRow> = self
            .fetch("changes", &self.session_changes_sql(session, span, limit))
            .await?;
        Ok(rows.into_iter().map(|c| c.for_role(role)).collect())
    }
}
