//! `/access`: who looked at what in the console (auditors only).

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout::{field, range_fields, time};
use crate::console::filters::Params;
use crate::console::web::{now_micros, Ctx};

pub async fn access(ctx: Ctx, Query(p): Query<Params>) -> Response {
    if !ctx.is_auditor() {
        return ctx.deny("access").await;
    }
    let f = match p.check(now_micros(), Some(7)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(range) = f.range else {
        return ctx.error(StatusCode::BAD_REQUEST, "no range");
    };
    let rows = match ctx
        .app
        .store
        .access_log(
            range,
            f.user.as_deref(),
            f.action.as_deref(),
            ctx.app.page_rows,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let body = html! {
        form.filters method="get" action="/access" {
            (field("user", "Console user", &p.user))
            (field("action", "Action", &p.action))
            (range_fields(Some(range)))
            button type="submit" { "Filter" }
        }
        p.note { (rows.len()) " console accesses, newest first." }
        table id="access" {
            thead { tr { th { "time" } th { "console user" } th { "role" } th { "client" } th { "action" } th { "page" } th { "subject" } th { "filters" } th { "status" } th { "rows" } } }
            tbody {
                @for a in &rows {
                    tr {
                        td.t { (time(a.event_time)) }
                        td { (a.console_user) }
                        td { (a.role) }
                        td { (a.client_addr) }
                        td { (a.action) }
                        td { (a.page) }
                        td.mono { (a.subject) }
                        td.mono { (a.filters) }
                        td.num { (a.status) }
                        td.num { (a.rows) }
                    }
                }
            }
        }
    };
    ctx.page("access", "", rows.len() as u64, "Console access", body)
        .await
}
