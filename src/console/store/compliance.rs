//! The compliance views the console browses and exports: failed logins,
//! privilege changes, DDL. Each reads the view's table with the view's
//! predicate and the page's time range, so that the sorting key bounds the
//! read (on 18.16 a filter on a view is not pushed into it).

use super::rows::{
    ChangeRow, SessionEventRow, StatementRow, CHANGE_COLUMNS, SESSION_EVENT_COLUMNS,
};
use super::statements::PRIVILEGE_PREDICATE;
use super::{Arg, Sql, Store, StoreError, ONE_PER_CHANGE, ONE_PER_RECORD};
use crate::console::filters::Filters;
use crate::console::users::Role;

/// The views, by the name in their URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    FailedLogins,
    PrivilegeChanges,
    DdlChanges,
    /// Row changes no pgtrail transaction made (`changes_outside_pgtrail`).
    ChangesOutside,
}

impl View {
    pub const ALL: [View; 4] = [
        View::FailedLogins,
        View::PrivilegeChanges,
        View::DdlChanges,
        View::ChangesOutside,
    ];

    pub fn name(self) -> &'static str {
        match self {
            View::FailedLogins => "failed_logins",
            View::PrivilegeChanges => "privilege_changes",
            View::DdlChanges => "ddl_changes",
            View::ChangesOutside => "changes_outside_pgtrail",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::FailedLogins => "Failed logins",
            View::PrivilegeChanges => "Privilege changes",
            View::DdlChanges => "DDL changes",
            View::ChangesOutside => "Changes outside pgtrail",
        }
    }

    pub fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// A view's rows: login events or statements.
pub enum ViewRows {
    Logins(Vec<SessionEventRow>),
    Statements(Vec<StatementRow>),
    Changes(Vec<ChangeRow>),
}

impl ViewRows {
    pub fn len(&self) -> usize {
        match self {
            ViewRows::Logins(r) => r.len(),
            ViewRows::Statements(r) => r.len(),
            ViewRows::Changes(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store {
    pub fn view_sql(&self, view: View, f: &Filters, role: Role, limit: u32) -> Sql {
        let filters = |sql: &mut Sql, with_client: bool| {
            if let Some(r) = f.range {
                sql.with(self.dialect.time_range(), r.args());
            }
            sql.and_str(" AND `user` = ?", f.user.as_deref())
                .and_str(" AND `database` = ?", f.database.as_deref());
            if with_client {
                sql.and_str(" AND client_addr = ?", f.client.as_deref());
            }
        };
        let mut sql = Sql::new("SELECT ");
        match view {
            View::FailedLogins => {
                sql.push(SESSION_EVENT_COLUMNS)
                    .push(" FROM ")
                    .push(&self.table("sessions"))
                    .push(" WHERE event_type = 'auth_failed'");
                filters(&mut sql, true);
                sql.push(" ORDER BY event_time DESC, seq DESC")
                    .push(ONE_PER_RECORD);
            }
            View::ChangesOutside => {
                sql.push(CHANGE_COLUMNS)
                    .push(" FROM ")
                    .push(&self.table("changes"))
                    .push(" WHERE attribution = 'none'");
                filters(&mut sql, false);
                sql.push(" ORDER BY event_time DESC, seq DESC")
                    .push(ONE_PER_CHANGE);
            }
            View::PrivilegeChanges | View::DdlChanges => {
                return self.latest_statements(role, limit, f.range, |sql| {
                    sql.push(" AND ").push(if view == View::DdlChanges {
                        "class = 'ddl'"
                    } else {
                        PRIVILEGE_PREDICATE
                    });
                    filters(sql, true);
                });
            }
        }
        sql.with(" LIMIT ?", [Arg::U64(limit.into())]);
        sql
    }

    pub async fn view(
        &self,
        view: View,
        f: &Filters,
        role: Role,
        limit: u32,
    ) -> Result<ViewRows, StoreError> {
        let sql = self.view_sql(view, f, role, limit);
        Ok(match view {
            View::FailedLogins => ViewRows::Logins(self.fetch(view.name(), &sql).await?),
            View::ChangesOutside => {
                let rows: Vec<ChangeRow> = self.fetch(view.name(), &sql).await?;
                ViewRows::Changes(rows.into_iter().map(|c| c.for_role(role)).collect())
            }
            _ => ViewRows::Statements(self.fetch(view.name(), &sql).await?),
        })
    }
}
