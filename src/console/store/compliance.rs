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
    /// Statements that touched a labelled column (`sensitive_access`).
    SensitiveAccess,
    /// Statements that named an end user (`end_user_activity`).
    EndUsers,
}

impl View {
    pub const ALL: [View; 6] = [
        View::FailedLogins,
        View::PrivilegeChanges,
        View::DdlChanges,
        View::ChangesOutside,
        View::SensitiveAccess,
        View::EndUsers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            View::FailedLogins => "failed_logins",
            View::PrivilegeChanges => "privilege_changes",
            View::DdlChanges => "ddl_changes",
            View::ChangesOutside => "changes_outside_pgtrail",
            View::SensitiveAccess => "sensitive_access",
            View::EndUsers => "end_user_activity",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::FailedLogins => "Failed logins",
            View::PrivilegeChanges => "Privilege changes",
            View::DdlChanges => "DDL changes",
            View::ChangesOutside => "Changes outside pgtrail",
            View::SensitiveAccess => "Sensitive access",
            View::EndUsers => "End users",
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
    /// A view's own predicate and the page's filters (` AND ...`) but the
    /// time range (`Dialect::where_range`).
    pub fn view_filters(&self, view: View, f: &Filters, sql: &mut Sql) {
        sql.push(match view {
            View::FailedLogins => " AND event_type = 'auth_failed'",
            View::ChangesOutside => " AND attribution = 'none'",
            View::DdlChanges => " AND class = 'ddl'",
            View::SensitiveAccess => " AND notEmpty(labels)",
            View::EndUsers => " AND end_user != ''",
            View::PrivilegeChanges => " AND ",
        });
        if view == View::PrivilegeChanges {
            sql.push(PRIVILEGE_PREDICATE);
        }
        sql.and_str(" AND `user` = ?", f.user.as_deref())
            .and_str(" AND `database` = ?", f.database.as_deref());
        if view != View::ChangesOutside {
            sql.and_str(" AND client_addr = ?", f.client.as_deref());
        }
    }

    /// The view's query (for statement views, the keys step of `latest`).
    pub fn view_sql(&self, view: View, f: &Filters, limit: u32) -> Sql {
        let (columns, table, one) = match view {
            View::FailedLogins => (SESSION_EVENT_COLUMNS, "sessions", ONE_PER_RECORD),
            View::ChangesOutside => (CHANGE_COLUMNS, "changes", ONE_PER_CHANGE),
            View::PrivilegeChanges | View::DdlChanges | View::SensitiveAccess | View::EndUsers => {
                return self.keys_sql(limit, f.range, |sql| self.view_filters(view, f, sql));
            }
        };
        let mut sql = Sql::new("SELECT ");
        sql.push(columns).push(" FROM ").push(&self.table(table));
        self.dialect.where_range(&mut sql, f.range);
        self.view_filters(view, f, &mut sql);
        sql.push(" ORDER BY event_time DESC, seq DESC")
            .push(one)
            .with(" LIMIT ?", [Arg::U64(limit.into())]);
        sql
    }

    pub async fn view(
        &self,
        view: View,
        f: &Filters,
        role: Role,
        limit: u32,
    ) -> Result<ViewRows, StoreError> {
        let sql = self.view_sql(view, f, limit);
        Ok(match view {
            View::FailedLogins => ViewRows::Logins(self.fetch(view.name(), &sql).await?),
            View::ChangesOutside => {
                let rows: Vec<ChangeRow> = self.fetch(view.name(), &sql).await?;
                ViewRows::Changes(rows.into_iter().map(|c| c.for_role(role)).collect())
            }
            _ => ViewRows::Statements(
                self.latest(view.name(), role, limit, self.view_sql(view, f, limit))
                    .await?,
            ),
        })
    }
}
