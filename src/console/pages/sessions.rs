//! `/sessions` (filter by person, role, database, client, application,
//! time) and `/session/{id}`: the timeline of one session.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::changes::change_table;
use super::layout::{
    duration, field, link, objects, outcome, person_link, range_fields, session_link, time,
};
use crate::console::filters::Params;
use crate::console::store::rows::{ChangeRow, SessionEventRow, StatementRow, TransactionRow};
use crate::console::store::Range;
use crate::console::web::{now_micros, Ctx};

pub async fn list(ctx: Ctx, Query(p): Query<Params>) -> Response {
    let f = match p.check(now_micros(), Some(1)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let rows = match ctx.app.store.sessions(&f, ctx.app.page_rows).await {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let body = html! {
        form.filters method="get" action="/sessions" {
            (field("user", "Person", &p.user))
            (field("role", "Role", &p.role))
            (field("database", "Database", &p.database))
            (field("client", "Client address", &p.client))
            (field("app", "Application", &p.app))
            (range_fields(f.range))
            button type="submit" { "Filter" }
        }
        p.note { (rows.len()) " sessions, newest first." }
        table id="sessions" {
            thead { tr { th { "session" } th { "started" } th { "person" } th { "role" } th { "database" } th { "client" } th { "application" } th { "statements" } th { "events" } } }
            tbody {
                @for s in &rows {
                    tr {
                        td { (session_link(&s.session_id)) }
                        td { (time(s.started)) }
                        td { (person_link(&s.user)) }
                        td { (s.db_role) }
                        td { (s.database) }
                        td { (s.client_addr) }
                        td { (s.application_name) }
                        td.num { (s.statements) }
                        td { (s.events.join(", ")) }
                    }
                }
            }
        }
    };
    ctx.page("sessions", "", rows.len() as u64, "Sessions", body)
        .await
}

/// Most statements a timeline shows.
const TIMELINE_ROWS: u32 = 5000;
/// A transaction's record can follow its session's disconnect record (it
/// is written when the writer learns the end), and row changes are written
/// at commit, after decoding: look this far past the session's last record
/// for them.
const LATE_RECORDS_US: i64 = 3_600_000_000;

pub async fn timeline(ctx: Ctx, Path(id): Path<String>) -> Response {
    if id.len() > crate::console::filters::MAX_VALUE_BYTES {
        return ctx.error(StatusCode::BAD_REQUEST, "session: too long");
    }
    let store = &ctx.app.store;
    let events = match store.session_events(&id).await {
        Ok(e) => e,
        Err(e) => return ctx.failed(&e),
    };
    let Some(first) = events.first() else {
        return ctx.error(StatusCode::NOT_FOUND, "No session with this id.");
    };
    let user = first.user.clone();
    let ended = events
        .iter()
        .any(|e| e.event_type == "disconnect" || e.event_type == "auth_failed");
    let last = events
        .iter()
        .map(|e| e.event_time)
        .max()
        .unwrap_or(first.event_time);
    let span = Range {
        from: first.event_time,
        to: if ended {
            last + 1
        } else {
            now_micros() + 60_000_000
        },
    };
    let role = ctx.viewer.role;
    // Transactions can be written after the disconnect record, row
    // changes after decoding: their span reaches further.
    let late = Range {
        from: span.from,
        to: span.to + LATE_RECORDS_US,
    };
    let statements_sql = store.session_statements_sql(&id, &user, span, role, TIMELINE_ROWS);
    let found = tokio::try_join!(
        store.fetch::<StatementRow>("session statements", &statements_sql),
        store.session_transactions(&id, &user, late),
        store.session_changes(&id, late, role, TIMELINE_ROWS),
    );
    let (statements, txns, changes) = match found {
        Ok(r) => r,
        Err(e) => return ctx.failed(&e),
    };
    let body = html! {
        (session_head(&events))
        p.note {
            (statements.len()) " statements, " (txns.len()) " transactions, " (changes.len()) " row changes. "
            a href=(link("/statements", &[("session", &id), ("user", &user)])) { "Search within this session" }
        }
        (timeline_body(&statements, &txns, &changes))
    };
    let title = format!("Session of {user}");
    ctx.page("session", &id, statements.len() as u64, &title, body)
        .await
}

fn session_head(events: &[SessionEventRow]) -> Markup {
    html! {
        table id="session-events" {
            thead { tr { th { "time" } th { "event" } th { "person" } th { "role" } th { "database" } th { "client" } th { "application" } th { "TLS" } th { "detail" } } }
            tbody {
                @for e in events {
                    tr {
                        td { (time(e.event_time)) }
                        td { (e.event_type) }
                        td { (person_link(&e.user)) }
                        td { (e.db_role) }
                        td { (e.database) }
                        td { (e.client_addr) ":" (e.client_port) }
                        td { (e.application_name) }
                        td { (if e.tls == 1 { "yes" } else { "no" }) }
                        td {
                            (e.auth_method) " " (e.reason)
                            @if e.event_type == "disconnect" { " · " (e.statements) " statements in " (duration(e.duration_us)) }
                        }
                    }
                }
            }
        }
    }
}

/// Whether ROLLBACK TO SAVEPOINT undid statement `seq`.
fn undone(t: &TransactionRow, seq: u64) -> bool {
    t.undone_from_seq
        .iter()
        .zip(&t.undone_to_seq)
        .any(|(a, b)| seq >= *a && seq <= *b)
}

fn timeline_body(
    statements: &[StatementRow],
    txns: &[TransactionRow],
    changes: &[ChangeRow],
) -> Markup {
    let by_txn: HashMap<&str, &TransactionRow> = txns
        .iter()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    let mut by_seq: HashMap<u64, Vec<&ChangeRow>> = HashMap::new();
    let mut by_txn_only: HashMap<&str, Vec<&ChangeRow>> = HashMap::new();
    for c in changes {
        match c.statement_seq {
            Some(seq) => by_seq.entry(seq).or_default().push(c),
            None => by_txn_only
                .entry(c.transaction_id.as_str())
                .or_default()
                .push(c),
        }
    }
    // Consecutive statements of one transaction form a group.
    let mut groups: Vec<(&str, Vec<&StatementRow>)> = Vec::new();
    for s in statements {
        match groups.last_mut() {
            Some((id, list)) if *id == s.transaction_id => list.push(s),
            _ => groups.push((&s.transaction_id, vec![s])),
        }
    }
    html! {
        ol id="timeline" {
            @for (id, list) in &groups {
                @let txn = by_txn.get(id).copied();
                @let outcome_name = txn.map_or("unknown", |t| t.outcome.as_str());
                @let rolled_back = matches!(outcome_name, "rolled_back" | "failed");
                li.txn.rolledback[rolled_back] data-outcome=(outcome_name) {
                    div.txnhead {
                        "transaction " span.mono title=(id) { (id.chars().take(13).collect::<String>()) "…" }
                        " · " span class=(format!("outcome {outcome_name}")) { (outcome_name.replace('_', " ")) }
                        @if let Some(t) = txn { " · " (t.rows_changed) " rows changed" }
                    }
                    @for s in list {
                        @let undone_here = txn.is_some_and(|t| undone(t, s.seq));
                        div.stmt.undone[undone_here] data-seq=(s.seq) {
                            (statement_line(s))
                            @if undone_here { div.mark { "undone by ROLLBACK TO SAVEPOINT" } }
                            @if let Some(cs) = by_seq.get(&s.seq) { (change_table(cs)) }
                        }
                    }
                    @if let Some(cs) = by_txn_only.get(id) {
                        div.txnchanges { p.note { "Row changes of this transaction (not tied to one statement):" } (change_table(cs)) }
                    }
                }
            }
        }
    }
}

/// One statement as a timeline or a list shows it.
pub fn statement_line(s: &StatementRow) -> Markup {
    let href = link(
        "/statement",
        &[
            ("instance", &s.instance_id),
            ("seq", &s.seq.to_string()),
            ("user", &s.user),
            ("t", &s.event_time.to_string()),
        ],
    );
    html! {
        div.meta {
            a.seq href=(href) { "#" (s.seq) }
            " " span.time { (time(s.event_time)) }
            " " span.kind { (s.kind) }
            " " (objects(&s.objects_read, &s.objects_written))
            " · " span.rows { (s.rows) " rows" }
            " · " (duration(s.duration_us))
            " · " (outcome(s.success, &s.sqlstate))
        }
        pre.sql { (s.statement) }
        @if s.success == 0 && !s.error_message.is_empty() { div.errmsg { (s.error_message) } }
        @if !s.params.is_empty() {
            div.params { "parameters: " @for (i, p) in s.params.iter().enumerate() { code { "$" (i + 1) "=" (p.as_deref().unwrap_or("NULL")) } " " } }
        }
    }
}
