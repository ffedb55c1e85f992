//! `/`: the last 24 hours (or the chosen range) at a glance, and the
//! health of the trail.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::layout::{link, person_link, range_fields, time};
use crate::console::filters::Params;
use crate::console::store::overview::Overview;
use crate::console::store::Range;
use crate::console::web::{now_micros, Ctx};

pub async fn overview(ctx: Ctx, Query(p): Query<Params>) -> Response {
    let f = match p.check(now_micros(), Some(1)) {
        Ok(f) => f,
        Err(e) => return ctx.error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(range) = f.range else {
        return ctx.error(StatusCode::BAD_REQUEST, "no range");
    };
    let o = match ctx.app.store.overview(range).await {
        Ok(o) => o,
        Err(e) => return ctx.failed(&e),
    };
    let body = html! {
        form.filters method="get" action="/" {
            (range_fields(Some(range)))
            button type="submit" { "Show" }
        }
        (counts(&o, range))
        h2 { "Audit health" }
        (health(&ctx, &o))
        h2 { "People active" }
        (people(&o))
    };
    let rows = o.people.len().min(SHOWN_PEOPLE) as u64;
    ctx.page("overview", "", rows, "Overview", body).await
}

fn counts(o: &Overview, r: Range) -> Markup {
    let from = super::layout::time(r.from);
    let (f, t) = (
        crate::console::filters::input_time(r.from),
        crate::console::filters::input_time(r.to),
    );
    let range = [("from", f.as_str()), ("to", t.as_str())];
    let with = |path: &str, extra: &[(&'static str, &'static str)]| {
        let mut pairs: Vec<(&str, &str)> = range.to_vec();
        pairs.extend_from_slice(extra);
        link(path, &pairs)
    };
    let tile = |label: &str, n: u64, href: String, alarm: bool| {
        html! { a.tile.alarm[alarm && n > 0] href=(href) { span.n { (n) } span.l { (label) } } }
    };
    html! {
        p.note { "Since " (from) " UTC." }
        div.tiles id="counts" {
            (tile("statements", o.totals.statements, with("/statements", &[]), false))
            (tile("errors", o.totals.failed, with("/statements", &[("outcome", "failed")]), true))
            (tile("failed logins", o.logins.failed_logins, with("/compliance/failed_logins", &[]), true))
            (tile("privilege changes", o.totals.privilege, with("/compliance/privilege_changes", &[]), true))
            (tile("DDL", o.totals.ddl, with("/compliance/ddl_changes", &[]), false))
            (tile("changes outside pgtrail", o.changes.outside, with("/compliance/changes_outside_pgtrail", &[]), true))
            (tile("people active", o.totals.people, with("/sessions", &[]), false))
            (tile("sessions", o.totals.sessions, with("/sessions", &[]), false))
            (tile("logins", o.logins.logins, with("/sessions", &[]), false))
            (tile("row changes", o.changes.changes, with("/statements", &[("class", "write")]), false))
        }
    }
}

fn health(ctx: &Ctx, o: &Overview) -> Markup {
    let now = now_micros();
    let last = ctx.app.last_verify.lock().ok().and_then(|l| l.clone());
    html! {
        table id="health" {
            thead { tr { th { "instance" } th { "newest record" } th { "lag" } th { "last seq" } th { "last checkpoint" } th { "last lifecycle event" } } }
            tbody {
                @for i in &o.instances {
                    @let cp = o.checkpoints.iter().find(|c| c.instance_id == i.instance_id);
                    @let lc = o.lifecycle.iter().find(|c| c.instance_id == i.instance_id);
                    tr {
                        td.mono { (i.instance_id) }
                        td { (time(i.last_time)) }
                        td { ((now - i.last_time).max(0) / 1_000_000) " s" }
                        td { (i.last_seq) }
                        td { @if let Some(c) = cp { (time(c.last_time)) " (seq " (c.last_seq) ")" } @else { span.bad { "none" } } }
                        td { @if let Some(c) = lc { (c.detail) " at " (time(c.last_time)) } @else { "none" } }
                    }
                }
            }
        }
        p id="gaps" class=(if o.gaps.gaps > 0 { "bad" } else { "ok" }) {
            (o.gaps.gaps) " gap records in the range (" (o.gaps.missing_events) " events not audited, " (o.gaps.skipped_seqs) " seqs skipped)."
        }
        div id="verify" {
            @match last {
                Some(v) => {
                    p class=(if v.ok { "ok" } else { "bad" }) {
                        "Chain check " (if v.ok { "passed" } else { "FAILED" }) " at " (time(v.time)) " (run by " (v.by) ")."
                    }
                    pre { (v.summary) }
                }
                None => { p { "The chain has not been checked from this console yet." } }
            }
            form method="post" action="/verify" {
                input type="hidden" name="csrf" value=(ctx.viewer.csrf);
                button type="submit" { "Check the chain now" }
            }
        }
    }
}

/// People listed on the overview (all of them are counted).
const SHOWN_PEOPLE: usize = 100;

fn people(o: &Overview) -> Markup {
    html! {
        @if o.people.len() > SHOWN_PEOPLE { p.note { "The " (SHOWN_PEOPLE) " most active of " (o.people.len()) " people." } }
        table id="people" {
            thead { tr { th { "person" } th { "statements" } th { "errors" } th { "writes" } th { "sessions" } th { "last seen" } } }
            tbody {
                @for p in o.people.iter().take(SHOWN_PEOPLE) {
                    tr {
                        td { (person_link(&p.user)) }
                        td.num { (p.statements) }
                        td.num { (p.failed) }
                        td.num { (p.writes) }
                        td.num { a href=(link("/sessions", &[("user", &p.user)])) { (p.sessions) } }
                        td { (time(p.last)) }
                    }
                }
            }
        }
    }
}
