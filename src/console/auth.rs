//! Logging in and out, and the chain check (the console's POSTs). Each
//! POST carries a CSRF token: the login form's is a random value also set
//! as a cookie (double submit), every later form's is the login's own.
//! Logins, failed logins and logouts are access rows; a password is never
//! logged or recorded.

use axum::extract::{Extension, Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::access::{Access, Action};
use super::logins::{csrf_matches, random_token};
use super::pages::layout::login_page;
use super::store::overview::MarkRow;
use super::verify::LastVerify;
use super::web::{
    cookie, html, now_micros, set_cookie, App, ClientAddr, Ctx, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NextParam {
    next: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    #[serde(default)]
    next: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Where to go after logging in: a path of this site only.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048;
    if ok {
        next
    } else {
        "/"
    }
}

fn login_form(app: &App, next: &str, status: StatusCode, message: Option<&str>) -> Response {
    let Some(token) = random_token() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness for a login token",
        )
            .into_response();
    };
    let mut response = html(status, login_page(safe_next(next), &token, message));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, LOGIN_CSRF_COOKIE, &token, 3600),
    );
    response
}

pub async fn login_get(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<NextParam>,
) -> Response {
    if cookie(&headers, SESSION_COOKIE)
        .and_then(|t| app.logins.viewer(t))
        .is_some()
    {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    login_form(&app, &q.next, StatusCode::OK, None)
}

pub async fn login_post(
    State(app): State<App>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !csrf_matches(expected, &form.csrf) {
        return login_form(
            &app,
            &form.next,
            StatusCode::FORBIDDEN,
            Some("The form expired; log in again."),
        );
    }
    let name: String = form.username.chars().take(256).collect();
    let checker = app.clone();
    let (n, pw) = (name.clone(), form.password);
    let role = tokio::task::spawn_blocking(move || checker.users.check(&n, &pw))
        .await
        .ok()
        .flatten();
    let access = |action, status, role: &'static str| Access {
        time: now_micros(),
        console_user: &name,
        role,
        client_addr: &client.0,
        action,
        page: "login",
        subject: "",
        filters: "",
        status,
        rows: 0,
    };
    let Some(role) = role else {
        tracing::warn!(user = %name, client = %client.0, "console: failed login");
        if let Err(e) = app
            .store
            .record(&access(Action::LoginFailed, 401, ""))
            .await
        {
            tracing::error!(error = %e, "console: failed login not recorded");
        }
        return login_form(
            &app,
            &form.next,
            StatusCode::UNAUTHORIZED,
            Some("Wrong name or password."),
        );
    };
    if let Err(e) = app
        .store
        .record(&access(Action::Login, 200, role.name()))
        .await
    {
        tracing::error!(error = %e, "console: login not recorded; refused");
        return login_form(
            &app,
            &form.next,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("Logins cannot be recorded now; try again later."),
        );
    }
    let Some(token) = app.logins.start(&name, role) else {
        return login_form(
            &app,
            &form.next,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("No login could be started."),
        );
    };
    tracing::info!(user = %name, role = role.name(), client = %client.0, "console: login");
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&app, SESSION_COOKIE, &token, app.session_secs),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&app, LOGIN_CSRF_COOKIE, "", 0),
    );
    response
}

pub async fn logout(ctx: Ctx, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if !csrf_matches(&ctx.viewer.csrf, &form.csrf) {
        return ctx.error(StatusCode::FORBIDDEN, "The form expired; reload the page.");
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        ctx.app.logins.end(token);
    }
    if let Err(e) = ctx.record(Action::Logout, "logout", "", 0).await {
        tracing::error!("console: logout not recorded");
        drop(e);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&ctx.app, SESSION_COOKIE, "", 0),
    );
    response
}

/// Runs the chain check over each instance's newest records.
pub async fn verify(ctx: Ctx, Form(form): Form<CsrfForm>) -> Response {
    if !csrf_matches(&ctx.viewer.csrf, &form.csrf) {
        return ctx.error(StatusCode::FORBIDDEN, "The form expired; reload the page.");
    }
    let store = &ctx.app.store;
    // Each instance's newest seq that a small table knows (checkpoints
    // come every `audit.checkpoint_records`; lifecycle at start and stop).
    let mut instances: Vec<(String, u64)> = Vec::new();
    for table in ["checkpoints", "lifecycle"] {
        let marks = match store.fetch::<MarkRow>(table, &store.marks_sql(table)).await {
            Ok(m) => m,
            Err(e) => return ctx.failed(&e),
        };
        for m in marks {
            match instances.iter_mut().find(|(i, _)| *i == m.instance_id) {
                Some(entry) => entry.1 = entry.1.max(m.last_seq),
                None => instances.push((m.instance_id, m.last_seq)),
            }
        }
    }
    let (ok, summary) = match ctx.app.verify.run(&instances).await {
        Ok(report) => (report.ok, report.human()),
        Err(e) => (false, format!("the check could not run: {e}")),
    };
    if let Err(r) = ctx
        .record(Action::Verify, "verify", "", instances.len() as u64)
        .await
    {
        return r;
    }
    if let Ok(mut last) = ctx.app.last_verify.lock() {
        *last = Some(LastVerify {
            time: now_micros(),
            by: ctx.viewer.name.clone(),
            ok,
            summary,
        });
    }
    Redirect::to("/#verify").into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/session/x?a=1"), "/session/x?a=1");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil"), "/");
    }
}
