//! What every request shares: the state, the logged-in context extractor
//! (no page without a login), the security headers, and the response a
//! page of audit data ends in (its access row first).

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;

use super::access::{Access, Action};
use super::logins::{Logins, Viewer};
use super::pages::layout;
use super::store::Store;
use super::users::{ConsoleUsers, Role};
use super::verify::LastVerify;
use crate::audit::record::micros_since_epoch;

pub const SESSION_COOKIE: &str = "pgtrail_console";
pub const LOGIN_CSRF_COOKIE: &str = "pgtrail_console_login";

/// What the console's handlers share.
pub struct AppState {
    pub store: Store,
    pub users: ConsoleUsers,
    pub logins: Logins,
    /// Cookies get `Secure` (the console serves TLS).
    pub secure_cookies: bool,
    pub page_rows: u32,
    /// How long a login lasts (the cookie's Max-Age).
    pub session_secs: u64,
    pub verify: super::verify::VerifySource,
    pub last_verify: Mutex<Option<LastVerify>>,
}

pub type App = Arc<AppState>;

/// The peer address, put into each request by the accept loop.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

pub fn now_micros() -> i64 {
    micros_since_epoch(std::time::SystemTime::now())
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for `name`; `max_age` 0 deletes it.
pub fn set_cookie(app: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The query string without its empty fields (a form sends them all), as
/// the access record keeps it.
fn filled(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| kv.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
        .collect::<Vec<_>>()
        .join("&")
}

/// A logged-in request: who, from where, which page with which filters.
pub struct Ctx {
    pub app: App,
    pub viewer: Viewer,
    pub client: String,
    pub path: String,
    /// The raw query string (recorded with the access row).
    pub query: String,
}

impl FromRequestParts<App> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Ctx, Response> {
        let path = parts.uri.path().to_string();
        let query = filled(parts.uri.query().unwrap_or(""));
        let viewer = cookie(&parts.headers, SESSION_COOKIE).and_then(|t| app.logins.viewer(t));
        let Some(viewer) = viewer else {
            let next = match query.is_empty() {
                true => path.clone(),
                false => format!("{path}?{query}"),
            };
            let to = format!("/login?next={}", layout::enc(&next));
            return Err(Redirect::to(&to).into_response());
        };
        let client = parts
            .extensions
            .get::<ClientAddr>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        Ok(Ctx {
            app: app.clone(),
            viewer,
            client,
            path,
            query,
        })
    }
}

impl Ctx {
    fn access<'a>(
        &'a self,
        action: Action,
        page: &'a str,
        subject: &'a str,
        status: u16,
        rows: u64,
    ) -> Access<'a> {
        Access {
            time: now_micros(),
            console_user: &self.viewer.name,
            role: self.viewer.role.name(),
            client_addr: &self.client,
            action,
            page,
            subject,
            filters: &self.query,
            status,
            rows,
        }
    }

    /// Writes the access row; the page goes out only if it was written.
    pub async fn record(
        &self,
        action: Action,
        page: &str,
        subject: &str,
        rows: u64,
    ) -> Result<(), Response> {
        let access = self.access(action, page, subject, 200, rows);
        match self.app.store.record(&access).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "console: access not recorded; page withheld");
                Err(self.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This view could not be recorded in the console's access log, so it is not shown. Try again later.",
                ))
            }
        }
    }

    /// A page of audit data: its access row, then the HTML.
    pub async fn page(
        &self,
        page: &str,
        subject: &str,
        rows: u64,
        title: &str,
        body: Markup,
    ) -> Response {
        if let Err(r) = self.record(Action::View, page, subject, rows).await {
            return r;
        }
        html(StatusCode::OK, layout::page(self, title, body))
    }

    /// An error page (bad filter, failed query), without audit data.
    pub fn error(&self, status: StatusCode, message: &str) -> Response {
        html(
            status,
            layout::page(self, "Error", layout::error_box(message)),
        )
    }

    /// A page the role may not see: refused, and the attempt recorded.
    pub async fn deny(&self, page: &str) -> Response {
        let access = self.access(Action::Denied, page, "", 403, 0);
        if let Err(e) = self.app.store.record(&access).await {
            tracing::error!(error = %e, "console: refusal not recorded");
        }
        self.error(StatusCode::FORBIDDEN, "Your role may not see this page.")
    }

    /// A failed query: logged in full, shown without the server's text.
    pub fn failed(&self, e: &super::store::StoreError) -> Response {
        tracing::error!(error = %e, path = %self.path, "console: query failed");
        self.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The audit trail could not be read (the console's log has the reason).",
        )
    }

    pub fn is_auditor(&self) -> bool {
        self.viewer.role == Role::Auditor
    }
}

pub fn html(status: StatusCode, body: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response()
}

/// Headers on every response: no framing, no inline script or style, no
/// caching of audit data, no MIME sniffing; over TLS, HSTS.
pub async fn security_headers(tls: bool, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
