//! The console over raw HTTP: nothing without a login, CSRF on every POST,
//! the security headers, what a dba may not see, injection attempts in
//! every filter, and the access records of what was looked at.

use super::client::{form, login, request};
use super::{Fixture, AUDITOR, DBA, INES_STATEMENTS};

async fn closed_by_default(f: &Fixture) {
    let addr = f.console_addr;
    for path in [
        "/",
        "/sessions",
        &format!("/session/{}", f.ines_session),
        "/statements?q=orders",
        "/table?name=orders",
        "/person?name=ines",
        "/compliance/ddl_changes",
        "/export/ddl_changes.csv",
        "/access",
    ] {
        let r = request(addr, "GET", path, "", "").await;
        assert_eq!(r.status, 303, "{path} without a login: {}", r.body);
        assert!(
            r.header("location")[0].starts_with("/login?next="),
            "{path}"
        );
        assert!(!r.body.contains("ines"), "{path}");
    }
    // A forged or expired cookie is no login.
    let r = request(addr, "GET", "/", "pgtrail_console=00ff", "").await;
    assert_eq!(r.status, 303);
    // The login form's CSRF token must match its cookie.
    let page = request(addr, "GET", "/login", "", "").await;
    let body = form(&[
        ("csrf", &page.csrf()),
        ("username", AUDITOR.0),
        ("password", AUDITOR.1),
    ]);
    let r = request(addr, "POST", "/login", "pgtrail_console_login=other", &body).await;
    assert_eq!(r.status, 403);
    assert!(r.cookie("pgtrail_console").is_none());
    // A wrong password: refused and recorded, the password nowhere.
    let pre = page.cookie("pgtrail_console_login").expect("cookie");
    let body = form(&[
        ("csrf", &page.csrf()),
        ("username", AUDITOR.0),
        ("password", "guess-1234"),
    ]);
    let r = request(addr, "POST", "/login", &pre, &body).await;
    assert_eq!(r.status, 401);
    assert!(r.cookie("pgtrail_console").is_none());
    assert_eq!(
        f.access_count("action = 'login_failed' AND console_user = 'ann'"),
        1
    );
    assert_eq!(
        f.access_count("position(filters, 'guess') > 0 OR position(subject, 'guess') > 0"),
        0
    );
}

/// A record delivered twice (a retried batch, not yet merged) shows once.
async fn copies_count_once(f: &Fixture, cookie: &str) {
    let ch = crate::harness::clickhouse::ChServer::shared();
    let db = &f.ch_db;
    ch.query(&format!(
        "INSERT INTO `{db}`.statements SELECT * FROM `{db}`.statements WHERE `user` = 'ines'"
    ));
    ch.query(&format!(
        "INSERT INTO `{db}`.sessions SELECT * FROM `{db}`.sessions WHERE `user` = 'ines'"
    ));
    let addr = f.console_addr;
    let r = request(
        addr,
        "GET",
        &format!("/session/{}", f.ines_session),
        cookie,
        "",
    )
    .await;
    assert_eq!(r.body.matches("class=\"stmt").count(), 10, "{}", r.body);
    let r = request(addr, "GET", "/statements?user=ines", cookie, "").await;
    assert!(r.body.contains("10 statements, newest first"), "{}", r.body);
    let r = request(addr, "GET", "/sessions?user=ines", cookie, "").await;
    assert!(r.body.contains("2 sessions, newest first"), "{}", r.body);
    let r = request(addr, "GET", "/", cookie, "").await;
    let people = &r.body[r.body.find("id=\"people\"").expect("people table")..];
    assert!(
        people.contains("ines</a></td><td class=\"num\">10</td>"),
        "{people}"
    );
}

async fn auditor_sees_everything(f: &Fixture, cookie: &str) {
    let addr = f.console_addr;
    let r = request(addr, "GET", "/", cookie, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-security-policy")[0].split(';').next(),
        Some("default-src 'self'")
    );
    assert_eq!(r.header("x-frame-options"), ["DENY"]);
    assert_eq!(r.header("cache-control"), ["no-store"]);
    assert!(
        r.body.contains("href=\"/person?name=ines\"")
            && r.body.contains("href=\"/person?name=omar\"")
    );
    // The timeline: ines's statements in order, the rolled-back one marked.
    let r = request(
        addr,
        "GET",
        &format!("/session/{}", f.ines_session),
        cookie,
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut at = 0;
    for sql in INES_STATEMENTS {
        let escaped = sql.replace('\'', "&#39;");
        let pos = r.body[at..]
            .find(&escaped)
            .or_else(|| r.body[at..].find(*sql));
        let pos = pos.unwrap_or_else(|| {
            panic!("{sql} missing or out of order in the timeline:\n{}", r.body)
        });
        at += pos + 1;
    }
    assert!(
        r.body.contains("data-outcome=\"rolled_back\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("data-outcome=\"committed\""));
    assert!(
        r.body.contains("parameters: "),
        "an auditor sees parameters"
    );
    // The row changes with before/after values; the redacted column's hash.
    assert!(
        r.body.contains("widget") && r.body.contains("hmac:"),
        "{}",
        r.body
    );
    // Statement detail, table, person, compliance, export.
    let r = request(addr, "GET", "/table?name=orders", cookie, "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("/person?name=ines") && r.body.contains("row-history"));
    // Row history by key: id=10 follows the row through its insert and
    // update (REPLICA IDENTITY FULL puts every column in the key).
    let r = request(
        addr,
        "GET",
        "/table?name=public.orders&key=id%3D10",
        cookie,
        "",
    )
    .await;
    assert_eq!(r.body.matches("class=\"change\"").count(), 2, "{}", r.body);
    let r = request(addr, "GET", "/table?name=orders&key=id%3D999", cookie, "").await;
    assert_eq!(r.body.matches("class=\"change\"").count(), 0);
    let r = request(addr, "GET", "/person?name=ines", cookie, "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("orders"));
    // Privilege changes naming ines, made by the admin.
    let received = &r.body[r.body.find("id=\"received\"").expect("received")..];
    assert!(
        received.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO ines"),
        "{received}"
    );
    assert!(!received.contains("TO omar"), "{received}");
    let r = request(addr, "GET", "/compliance/failed_logins", cookie, "").await;
    assert!(r.status == 200 && r.body.contains("/person?name=ines"));
    // Statements that touched a labelled column (issue 16's `labels`).
    let r = request(addr, "GET", "/compliance/sensitive_access", cookie, "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("INSERT INTO orders VALUES (10, &#39;widget&#39;")
            || r.body.contains("INSERT INTO orders VALUES (10, 'widget'"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("SELECT item FROM orders"), "{}", r.body);
    // Statements that named an end user (issue 18), with who logged in.
    let r = request(addr, "GET", "/compliance/end_user_activity", cookie, "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("zoe@example.com") && r.body.contains("/person?name=omar"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("SELECT item FROM orders"), "{}", r.body);
    let r = request(
        addr,
        "GET",
        "/statements?end_user=zoe%40example.com",
        cookie,
        "",
    )
    .await;
    assert!(
        r.status == 200 && r.body.contains("1 statements, newest first"),
        "{}",
        r.body
    );
    let r = request(addr, "GET", "/export/privilege_changes.csv", cookie, "").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type")[0].starts_with("text/csv"));
    assert!(
        r.body.starts_with("time,user,") && r.body.contains("GRANT SELECT ON customers TO omar"),
        "{}",
        r.body
    );
    let r = request(addr, "GET", "/access", cookie, "").await;
    assert!(r.status == 200 && r.body.contains("export"));
}

async fn dba_sees_less(f: &Fixture, cookie: &str) {
    let addr = f.console_addr;
    let r = request(
        addr,
        "GET",
        &format!("/session/{}", f.ines_session),
        cookie,
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("parameters: "), "a dba sees no parameters");
    assert!(!r.body.contains("hmac:"), "a dba sees no redacted values");
    assert!(r.body.contains("(redacted)") && r.body.contains("widget"));
    let r = request(addr, "GET", "/table?name=orders", cookie, "").await;
    assert!(!r.body.contains("hmac:"));
    let r = request(addr, "GET", "/access", cookie, "").await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("console_user"));
    assert_eq!(
        f.access_count("action = 'denied' AND console_user = 'dan' AND page = 'access'"),
        1
    );
}

/// Quotes, SQL fragments and huge values in every filter: a 400, or a page
/// with nothing in it; never rows of other people.
async fn injection_finds_nothing(f: &Fixture, cookie: &str) {
    let addr = f.console_addr;
    let attacks = [
        "' OR 1=1 --",
        "ines' OR '1'='1",
        "x') UNION ALL SELECT * FROM system.tables --",
        "\\' OR 1=1 --",
        "?",
        &"A".repeat(5000),
    ];
    let range = ["from", "to"];
    let pages: [(&str, &[&str]); 7] = [
        ("/sessions", &["user", "role", "database", "client", "app"]),
        (
            "/statements",
            &[
                "q",
                "user",
                "table",
                "kind",
                "class",
                "sqlstate",
                "fingerprint",
                "session",
                "outcome",
                "role",
                "database",
                "client",
                "app",
            ],
        ),
        ("/compliance/failed_logins", &["user", "database", "client"]),
        (
            "/compliance/privilege_changes",
            &["user", "database", "client"],
        ),
        ("/table", &["name", "key"]),
        ("/person", &["name"]),
        ("/statement", &["instance", "seq", "user", "t"]),
    ];
    let mut checked = 0;
    for (page, fields) in pages {
        for field in fields.iter().chain(&range) {
            for a in attacks {
                let mut path =
                    format!("{page}?{field}={}", pgtrail::console::pages::layout::enc(a));
                // The other key fields of pages keyed by a name or a record.
                match page {
                    "/table" | "/person" if *field != "name" => path.push_str("&name=nobody_here"),
                    "/statement" => path.push_str("&instance=x&seq=1"),
                    _ => {}
                }
                let r = request(addr, "GET", &path, cookie, "").await;
                assert!(matches!(r.status, 200 | 400 | 404), "{path}: {}", r.status);
                for leak in [
                    "/person?name=ines",
                    "/person?name=omar",
                    "SELECT id, item",
                    "system.tables</td>",
                ] {
                    assert!(!r.body.contains(leak), "{path} shows {leak}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 45 * attacks.len());
    let r = request(addr, "GET", "/session/'%20OR%201=1%20--", cookie, "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_roles_injection_and_records() {
    let f = Fixture::start("console_http").await;
    closed_by_default(&f).await;
    let auditor = login(f.console_addr, AUDITOR.0, AUDITOR.1).await;
    auditor_sees_everything(&f, &auditor).await;
    let dba = login(f.console_addr, DBA.0, DBA.1).await;
    dba_sees_less(&f, &dba).await;
    injection_finds_nothing(&f, &dba).await;
    // What ann looked at is on record: the session, the table, the person,
    // the export.
    let ann = "console_user = 'ann' AND role = 'auditor'";
    assert_eq!(
        f.access_count(&format!(
            "{ann} AND action = 'view' AND page = 'session' AND subject = '{}'",
            f.ines_session
        )),
        1
    );
    assert_eq!(
        f.access_count(&format!("{ann} AND page = 'table' AND subject = 'orders'")),
        2
    );
    // With the filters looked at.
    assert_eq!(
        f.access_count(&format!(
            "{ann} AND page = 'table' AND subject = 'public.orders' AND filters = 'name=public.orders&key=id%3D10'"
        )),
        1
    );
    assert_eq!(
        f.access_count(&format!("{ann} AND page = 'person' AND subject = 'ines'")),
        1
    );
    assert_eq!(
        f.access_count(&format!(
            "{ann} AND action = 'export' AND page = 'privilege_changes' AND `rows` >= 2"
        )),
        1
    );
    assert_eq!(
        f.access_count("action = 'login' AND client_addr = '127.0.0.1'"),
        2
    );
    copies_count_once(&f, &auditor).await;
    // Logout needs the CSRF token; afterwards the cookie is no login.
    let page = request(f.console_addr, "GET", "/sessions", &dba, "").await;
    let r = request(f.console_addr, "POST", "/logout", &dba, "csrf=wrong").await;
    assert_eq!(r.status, 403);
    let r = request(
        f.console_addr,
        "POST",
        "/logout",
        &dba,
        &format!("csrf={}", page.csrf()),
    )
    .await;
    assert_eq!(r.status, 303);
    let r = request(f.console_addr, "GET", "/sessions", &dba, "").await;
    assert_eq!(r.status, 303);
    // The chain check from the console (POST with the CSRF token).
    let page = request(f.console_addr, "GET", "/", &auditor, "").await;
    let r = request(
        f.console_addr,
        "POST",
        "/verify",
        &auditor,
        &format!("csrf={}", page.csrf()),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = request(f.console_addr, "GET", "/", &auditor, "").await;
    assert!(r.body.contains("Chain check passed"), "{}", r.body);
    f.finish().await;
}
