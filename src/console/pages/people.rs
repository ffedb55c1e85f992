//! `/person?name=`: activity by day, tables touched, failed logins,
//! privilege changes made and received.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::compliance::view_table;
use super::layout::{link, range_fields, table_link, time};
use super::sessions::statement_line;
use crate::console::filters::{input_time, Params};
use crate::console::store::compliance::View;
use crate::console::web::{now_micros, Ctx};

const PERSON_ROWS: u32 = 100;

pub async fn person(ctx: Ctx, Query(p): Query<Params>) -> Response {
    let f = match p.check(now_micros(), Some(30)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (Some(name), Some(range)) = (f.name.clone(), f.range) else {
        return ctx.error(StatusCode::BAD_REQUEST, "name: which person?");
    };
    let store = &ctx.app.store;
    let role = ctx.viewer.role;
    let mut by_person = f.clone();
    by_person.user = Some(name.clone());
    let found = tokio::try_join!(
        store.person_days(&name, range),
        store.person_tables(&name, range),
        store.view(View::FailedLogins, &by_person, role, PERSON_ROWS),
        store.view(View::PrivilegeChanges, &by_person, role, PERSON_ROWS),
        store.privileges_received(&name, range, role, PERSON_ROWS),
    );
    let (days, tables, logins, made, received) = match found {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let (from, to) = (input_time(range.from), input_time(range.to));
    let body = html! {
        form.filters method="get" action="/person" {
            input type="hidden" name="name" value=(name);
            (range_fields(Some(range)))
            button type="submit" { "Show" }
        }
        p.note {
            a href=(link("/sessions", &[("user", &name), ("from", &from), ("to", &to)])) { "Sessions" } " · "
            a href=(link("/statements", &[("user", &name), ("from", &from), ("to", &to)])) { "Statements" }
        }
        h2 { "Activity by day (UTC)" }
        table id="days" {
            thead { tr { th { "day" } th { "statements" } th { "reads" } th { "writes" } th { "DDL" } th { "failed" } th { "sessions" } } }
            tbody {
                @for d in &days {
                    tr { td { (d.day) } td.num { (d.statements) } td.num { (d.reads) } td.num { (d.writes) } td.num { (d.ddl) } td.num { (d.failed) } td.num { (d.sessions) } }
                }
            }
        }
        h2 { "Tables touched" }
        table id="touched" {
            thead { tr { th { "object" } th { "reads" } th { "writes" } th { "last" } } }
            tbody {
                @for t in &tables {
                    tr { td { (table_link(&t.object)) } td.num { (t.reads) } td.num { (t.writes) } td { (time(t.last)) } }
                }
            }
        }
        h2 { "Failed logins" }
        (view_table(&logins))
        h2 { "Privilege changes made" }
        (view_table(&made))
        h2 { "Privilege changes naming this person" }
        p.note { "Statements by others whose text names this person (records carry no grantee column)." }
        div id="received" { @for s in &received { div.stmt { (statement_line(s)) } } }
    };
    let rows = (days.len() + tables.len() + logins.len() + made.len() + received.len()) as u64;
    let title = format!("Person {name}");
    ctx.page("person", &name, rows, &title, body).await
}
