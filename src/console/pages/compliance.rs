//! `/compliance/{view}`: failed logins, privilege changes, DDL and changes
//! outside pgtrail, browsable; `/export/{view}.csv`: the same rows as CSV
//! (at most `MAX_EXPORT_ROWS`), recorded as an export.

use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::changes::change_table;
use super::csv::view_csv;
use super::layout::{
    field, link, objects, outcome, person_link, query_of, range_fields, session_link, time,
};
use crate::console::access::Action;
use crate::console::config::MAX_EXPORT_ROWS;
use crate::console::filters::Params;
use crate::console::store::compliance::{View, ViewRows};
use crate::console::store::rows::ChangeRow;
use crate::console::web::{now_micros, Ctx};

pub async fn page(ctx: Ctx, Path(name): Path<String>, Query(p): Query<Params>) -> Response {
    let Some(view) = View::parse(&name) else {
        return ctx.error(StatusCode::NOT_FOUND, "No such view.");
    };
    let f = match p.check(now_micros(), Some(7)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let rows = match ctx
        .app
        .store
        .view(view, &f, ctx.viewer.role, ctx.app.page_rows)
        .await
    {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let export = format!("/export/{}.csv?{}", view.name(), query_of(&p));
    let body = html! {
        form.filters method="get" action=(format!("/compliance/{}", view.name())) {
            (field("user", "Person", &p.user))
            (field("database", "Database", &p.database))
            @if view != View::ChangesOutside { (field("client", "Client address", &p.client)) }
            (range_fields(f.range))
            button type="submit" { "Filter" }
        }
        p.note {
            (rows.len()) " rows, newest first. "
            a id="export" href=(export) download { "Export CSV" }
        }
        (view_table(&rows))
    };
    ctx.page(view.name(), "", rows.len() as u64, view.title(), body)
        .await
}

/// A view's rows as an HTML table.
pub fn view_table(rows: &ViewRows) -> Markup {
    if rows.is_empty() {
        return html! { p.note.empty { "None in this range." } };
    }
    match rows {
        ViewRows::Logins(r) => html! {
            table.view.logins {
                thead { tr { th { "time" } th { "person" } th { "database" } th { "client" } th { "application" } th { "method" } th { "reason" } } }
                tbody {
                    @for e in r {
                        tr {
                            td { (time(e.event_time)) }
                            td { (person_link(&e.user)) }
                            td { (e.database) }
                            td { (e.client_addr) }
                            td { (e.application_name) }
                            td { (e.auth_method) }
                            td { (e.reason) }
                        }
                    }
                }
            }
        },
        ViewRows::Statements(r) => html! {
            table.view.statements {
                thead { tr { th { "time" } th { "person" } th { "session" } th { "kind" } th { "objects" } th { "outcome" } th { "statement" } } }
                tbody {
                    @for s in r {
                        tr {
                            td { a href=(link("/statement", &[("instance", &s.instance_id), ("seq", &s.seq.to_string()), ("user", &s.user), ("t", &s.event_time.to_string())])) { (time(s.event_time)) } }
                            td { (person_link(&s.user)) (super::statements::end_user_note(s)) }
                            td { (session_link(&s.session_id)) }
                            td { (s.kind) }
                            td { (objects(&s.objects_read, &s.objects_written)) }
                            td { (outcome(s.success, &s.sqlstate)) }
                            td.sql { (s.statement) }
                        }
                    }
                }
            }
        },
        ViewRows::Changes(r) => {
            let refs: Vec<&ChangeRow> = r.iter().collect();
            change_table(&refs)
        }
    }
}

pub async fn export(ctx: Ctx, Path(file): Path<String>, Query(p): Query<Params>) -> Response {
    let Some(view) = file.strip_suffix(".csv").and_then(View::parse) else {
        return ctx.error(StatusCode::NOT_FOUND, "No such export.");
    };
    let f = match p.check(now_micros(), Some(7)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let rows = match ctx
        .app
        .store
        .view(view, &f, ctx.viewer.role, MAX_EXPORT_ROWS)
        .await
    {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    if let Err(r) = ctx
        .record(Action::Export, view.name(), "", rows.len() as u64)
        .await
    {
        return r;
    }
    let disposition = format!("attachment; filename=\"{}.csv\"", view.name());
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        view_csv(&rows),
    )
        .into_response()
}
