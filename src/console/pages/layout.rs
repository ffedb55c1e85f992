//! The page frame (navigation, who is logged in, logout) and the small
//! formatting helpers every page uses. maud escapes every interpolated
//! value; nothing here builds HTML from strings.

use maud::{html, Markup, DOCTYPE};

use crate::audit::record::format_micros;
use crate::console::filters::{input_time, Params};
use crate::console::store::Range;
use crate::console::web::Ctx;

/// Percent-encodes a query value (unreserved characters stay).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&...` of the pairs whose value is not empty.
pub fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// `2025-01-02 03:04:05.123` (UTC).
pub fn time(micros: i64) -> String {
    let t = format_micros(micros);
    let mut s: String = t.chars().take(23).collect();
    if s.len() > 10 {
        s.replace_range(10..11, " ");
    }
    s
}

pub fn duration(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

pub fn fingerprint(fp: u64) -> String {
    format!("{fp:016x}")
}

pub fn person_link(user: &str) -> Markup {
    html! { a href=(link("/person", &[("name", user)])) { (user) } }
}

pub fn table_link(name: &str) -> Markup {
    html! { a.obj href=(link("/table", &[("name", name)])) { (name) } }
}

pub fn session_link(id: &str) -> Markup {
    let short: String = id.chars().take(13).collect();
    html! { a.mono href=(link(&format!("/session/{}", enc(id)), &[])) title=(id) { (short) "…" } }
}

pub fn objects(read: &[String], written: &[String]) -> Markup {
    html! {
        @for o in written { span.w title="written" { "✎ " (table_link(o)) } " " }
        @for o in read { span.r title="read" { (table_link(o)) } " " }
    }
}

pub fn outcome(success: u8, sqlstate: &str) -> Markup {
    html! {
        @if success == 1 { span.ok { "ok" } } @else { span.bad title="SQLSTATE" { "error " (sqlstate) } }
    }
}

pub fn error_box(message: &str) -> Markup {
    html! { div.error { (message) } }
}

/// The time range fields of a filter form.
pub fn range_fields(range: Option<Range>) -> Markup {
    let (from, to) = range.map_or((String::new(), String::new()), |r| {
        (input_time(r.from), input_time(r.to))
    });
    html! {
        label { "From (UTC) " input type="datetime-local" name="from" value=(from); }
        label { "To " input type="datetime-local" name="to" value=(to); }
    }
}

/// A text field of a filter form, keeping its current value.
pub fn field(name: &str, label: &str, value: &Option<String>) -> Markup {
    html! { label { (label) " " input type="text" name=(name) value=(value.as_deref().unwrap_or("")) maxlength="256"; } }
}

/// The current filters as a query string (for links to exports).
pub fn query_of(p: &Params) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .map(|s| format!("{k}={}", enc(s)))
                })
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default()
}

pub fn page(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pgtrail console" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                nav {
                    a.brand href="/" { "pgtrail" }
                    a href="/" { "Overview" }
                    a href="/sessions" { "Sessions" }
                    a href="/statements" { "Statements" }
                    a href="/compliance/failed_logins" { "Failed logins" }
                    a href="/compliance/privilege_changes" { "Privileges" }
                    a href="/compliance/ddl_changes" { "DDL" }
                    a href="/compliance/changes_outside_pgtrail" { "Outside changes" }
                    a href="/compliance/sensitive_access" { "Sensitive" }
                    a href="/compliance/end_user_activity" { "End users" }
                    @if ctx.is_auditor() { a href="/access" { "Console access" } }
                    span.who { (ctx.viewer.name) " (" (ctx.viewer.role.name()) ")" }
                    form.logout method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(ctx.viewer.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login page (no one is logged in: no navigation).
pub fn login_page(next: &str, csrf: &str, message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · pgtrail console" }
                link rel="stylesheet" href="/static/console.css";
            }
            body.login {
                main {
                    h1 { "pgtrail console" }
                    @if let Some(m) = message { (error_box(m)) }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        label { "Name " input type="text" name="username" autocomplete="username" required; }
                        label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { "Log in" }
                    }
                    p.note { "Every page you open here is recorded." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_values() {
        assert_eq!(
            link("/t", &[("name", "a b&c"), ("x", "")]),
            "/t?name=a%20b%26c"
        );
        assert_eq!(enc("é"), "%C3%A9");
        assert_eq!(time(0), "1970-01-01 00:00:00.000");
        assert_eq!(duration(1500), "1.5 ms");
        assert_eq!(fingerprint(255), "00000000000000ff");
    }
}
