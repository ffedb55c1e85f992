//! `/table?name=`: who read and wrote a table, when, with which
//! statements; its row history, by key.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::changes::change_table;
use super::layout::{field, link, person_link, range_fields, time};
use super::sessions::statement_line;
use crate::console::filters::{input_time, Params};
use crate::console::store::rows::ChangeRow;
use crate::console::web::{now_micros, Ctx};

/// Statements and changes a table page lists.
const TABLE_ROWS: u32 = 100;

pub async fn table(ctx: Ctx, Query(p): Query<Params>) -> Response {
    let f = match p.check(now_micros(), Some(1)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (Some(name), Some(range)) = (f.name.clone(), f.range) else {
        return ctx.error(StatusCode::BAD_REQUEST, "name: which table?");
    };
    let store = &ctx.app.store;
    let role = ctx.viewer.role;
    let mut stmt_filter = f.clone();
    stmt_filter.table = Some(name.clone());
    stmt_filter.name = None;
    stmt_filter.key = None;
    let found = tokio::try_join!(
        store.table_users(&name, range),
        store.search(&stmt_filter, role, TABLE_ROWS),
        store.row_history(&name, f.key.as_deref(), range, role, TABLE_ROWS),
    );
    let (users, recent, history) = match found {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let (from, to) = (input_time(range.from), input_time(range.to));
    let history_refs: Vec<&ChangeRow> = history.iter().collect();
    let body = html! {
        form.filters method="get" action="/table" {
            (field("name", "Table", &p.name))
            (field("key", "Row key (col=value)", &p.key))
            (range_fields(Some(range)))
            button type="submit" { "Show" }
        }
        h2 { "Who read and wrote it" }
        table id="table-users" {
            thead { tr { th { "person" } th { "reads" } th { "writes" } th { "failed" } th { "first" } th { "last" } } }
            tbody {
                @for u in &users {
                    tr {
                        td { (person_link(&u.user)) }
                        td.num { (u.reads) }
                        td.num { (u.writes) }
                        td.num { (u.failed) }
                        td { (time(u.first)) }
                        td { (time(u.last)) }
                    }
                }
            }
        }
        h2 { "Statements, newest first" }
        p.note { a href=(link("/statements", &[("table", &name), ("from", &from), ("to", &to)])) { "Search these statements" } }
        div id="table-statements" { @for s in &recent { div.stmt { (statement_line(s)) } } }
        h2 { "Row history" @if let Some(k) = &f.key { " of " (k) } }
        @if history.is_empty() { p.note { "No row changes recorded in this range (row changes need [cdc] enabled)." } }
        div id="row-history" { (change_table(&history_refs)) }
    };
    let rows = (users.len() + recent.len() + history.len()) as u64;
    let title = format!("Table {name}");
    ctx.page("table", &name, rows, &title, body).await
}
