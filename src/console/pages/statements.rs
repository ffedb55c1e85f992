//! `/statements`: search by text, fingerprint, kind, class, table, person,
//! SQLSTATE, session and time, with the top fingerprints; `/statement`:
//! one statement record.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::changes::change_table;
use super::layout::{
    duration, field, fingerprint, link, objects, outcome, person_link, range_fields, session_link,
    time,
};
use super::sessions::statement_line;
use crate::console::filters::Params;
use crate::console::store::rows::{ChangeRow, StatementRow};
use crate::console::store::statements::FingerprintRow;
use crate::console::store::Range;
use crate::console::web::{now_micros, Ctx};

pub async fn search(ctx: Ctx, Query(p): Query<Params>) -> Response {
    let f = match p.check(now_micros(), Some(1)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let store = &ctx.app.store;
    let found = tokio::try_join!(
        store.search(&f, ctx.viewer.role, ctx.app.page_rows),
        store.fingerprints(&f),
    );
    let (rows, (by_count, by_time)) = match found {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let body = html! {
        form.filters method="get" action="/statements" {
            (field("q", "Text", &p.q))
            (field("user", "Person", &p.user))
            (field("end_user", "End user", &p.end_user))
            (field("table", "Table", &p.table))
            (field("kind", "Kind", &p.kind))
            (field("class", "Class", &p.class))
            (field("sqlstate", "SQLSTATE", &p.sqlstate))
            (field("fingerprint", "Fingerprint", &p.fingerprint))
            (field("session", "Session", &p.session))
            label { "Outcome " select name="outcome" {
                option value="" selected[p.outcome.is_none()] { "any" }
                option value="failed" selected[p.outcome.as_deref() == Some("failed")] { "failed" }
                option value="ok" selected[p.outcome.as_deref() == Some("ok")] { "succeeded" }
            } }
            (range_fields(f.range))
            button type="submit" { "Search" }
        }
        p.note { (rows.len()) " statements, newest first (at most " (ctx.app.page_rows) ")." }
        table id="statements" {
            thead { tr { th { "time" } th { "person" } th { "session" } th { "kind" } th { "objects" } th { "rows" } th { "duration" } th { "outcome" } th { "statement" } } }
            tbody {
                @for s in &rows {
                    tr {
                        td { a href=(link("/statement", &[("instance", &s.instance_id), ("seq", &s.seq.to_string()), ("user", &s.user), ("t", &s.event_time.to_string())])) { (time(s.event_time)) } }
                        td { (person_link(&s.user)) (end_user_note(s)) }
                        td { (session_link(&s.session_id)) }
                        td { (s.kind) }
                        td { (objects(&s.objects_read, &s.objects_written)) }
                        td.num { (s.rows) }
                        td.num { (duration(s.duration_us)) }
                        td { (outcome(s.success, &s.sqlstate)) }
                        td.sql { (s.statement) }
                    }
                }
            }
        }
        div.cols {
            div { h2 { "Top fingerprints by count" } (fingerprints(&by_count, "top-count")) }
            div { h2 { "Top fingerprints by total time" } (fingerprints(&by_time, "top-time")) }
        }
    };
    ctx.page("statements", "", rows.len() as u64, "Statements", body)
        .await
}

/// ` for alice ✓` under the person of a statement made for an end user.
pub(super) fn end_user_note(s: &StatementRow) -> Markup {
    html! {
        @if !s.end_user.is_empty() {
            " for " a href=(link("/statements", &[("end_user", &s.end_user)])) { (s.end_user) }
            @if s.end_user_verified == 1 { span.ok title="verified" { " ✓" } }
        }
    }
}

/// How far a claim is trusted, and where it came from.
fn claim_state(s: &StatementRow) -> Markup {
    html! {
        @if s.end_user_verified == 1 {
            span.ok { "(verified, " (s.end_user_source) ")" }
        } @else {
            span.bad { "(not verified: " (s.end_user_reason) "; " (s.end_user_source) ")" }
        }
    }
}

fn fingerprints(rows: &[FingerprintRow], id: &str) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { "fingerprint" } th { "count" } th { "total time" } th { "people" } th { "normalized" } } }
            tbody {
                @for r in rows {
                    tr {
                        td.mono { a href=(link("/statements", &[("fingerprint", &fingerprint(r.fingerprint))])) { (fingerprint(r.fingerprint)) } }
                        td.num { (r.count) }
                        td.num { (duration(r.total_us)) }
                        td.num { (r.users) }
                        td.sql { (r.normalized) }
                    }
                }
            }
        }
    }
}

/// How long after a statement its row changes may be written (at commit,
/// after decoding).
const CHANGES_WITHIN_US: i64 = 86_400_000_000;

pub async fn one(ctx: Ctx, Query(p): Query<Params>) -> Response {
    let f = match p.check(now_micros(), None) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (Some(instance), Some(seq)) = (f.instance.as_deref(), f.seq) else {
        return ctx.error(StatusCode::BAD_REQUEST, "instance and seq are required");
    };
    let found = ctx
        .app
        .store
        .statement(instance, seq, f.user.as_deref(), f.t, ctx.viewer.role)
        .await;
    let s = match found {
        Ok(Some(s)) => s,
        Ok(None) => return ctx.error(StatusCode::NOT_FOUND, "No such statement record."),
        Err(e) => return ctx.failed(&e),
    };
    // Row changes are written at commit, after the statement.
    let after = Range {
        from: s.event_time,
        to: s.event_time + CHANGES_WITHIN_US,
    };
    let changes = match ctx
        .app
        .store
        .statement_changes(&s.session_id, s.seq, after, ctx.viewer.role)
        .await
    {
        Ok(c) => c,
        Err(e) => return ctx.failed(&e),
    };
    let change_refs: Vec<&ChangeRow> = changes.iter().collect();
    let body = html! {
        div id="statement" { (statement_line(&s)) }
        table.record {
            tbody {
                tr { th { "person" } td { (person_link(&s.user)) } }
                @if !s.end_user.is_empty() {
                    tr { th { "end user" } td { (s.end_user) " " (claim_state(&s)) } }
                }
                @if !s.request_id.is_empty() { tr { th { "request id" } td.mono { (s.request_id) } } }
                @if !s.trace_id.is_empty() { tr { th { "trace id" } td.mono { (s.trace_id) } } }
                tr { th { "database role" } td { (s.db_role) } }
                tr { th { "database" } td { (s.database) } }
                tr { th { "client" } td { (s.client_addr) " · " (s.application_name) } }
                tr { th { "session" } td { (session_link(&s.session_id)) } }
                tr { th { "transaction" } td.mono { (s.transaction_id) } }
                tr { th { "class / kind" } td { (s.class) " / " (s.kind) } }
                tr { th { "command tag" } td { (s.command_tag) } }
                tr { th { "protocol" } td { (s.protocol) } }
                tr { th { "fingerprint" } td.mono { a href=(link("/statements", &[("fingerprint", &fingerprint(s.fingerprint))])) { (fingerprint(s.fingerprint)) } } }
                tr { th { "outcome" } td { (outcome(s.success, &s.sqlstate)) " " (s.error_message) } }
                tr { th { "instance / seq" } td.mono { (s.instance_id) " / " (s.seq) } }
                @for (name, list) in [("columns read", &s.columns_read), ("columns written", &s.columns_written), ("labels", &s.labels), ("reached through", &s.via)] {
                    @if !list.is_empty() { tr { th { (name) } td.mono { (list.join(", ")) } } }
                }
            }
        }
        @if !changes.is_empty() { h2 { "Row changes it made" } (change_table(&change_refs)) }
        @if !ctx.is_auditor() { p.note { "Statement parameters are shown to auditors only." } }
    };
    let subject = format!("{instance}/{seq}");
    ctx.page("statement", &subject, 1, "Statement", body).await
}
