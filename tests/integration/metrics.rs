//! The admin listener: `/metrics` counters move by exactly a workload's
//! counts; `/healthz`; `/readyz` with a live and a dead upstream.

use std::net::SocketAddr;
use std::time::Duration;

use crate::harness::proxy::{fresh_db, http_get, Proxy};

/// Sum of the samples of `name` whose labels contain every `labels` pair
/// (written `key="value"`).
fn sample(text: &str, name: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name && labels.iter().all(|want| rest.contains(want))
        })
        .map(|(_, v)| v.parse::<f64>().expect("numeric sample") as u64)
        .sum()
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn metrics_move_by_the_workload() {
    let (pg, db) = fresh_db("metrics");
    let proxy = Proxy::start_with(pg, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = proxy.admin_addr.expect("admin listener bound");

    assert_eq!(http_get(admin, "/healthz").await, (200, "ok\n".into()));
    let (status, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(http_get(admin, "/nope").await.0, 404);

    let before = scrape(admin).await;
    for name in [
        "pgtrail_sessions_total",
        "pgtrail_sessions_active",
        "pgtrail_auth_failures_total",
        "pgtrail_bytes_in_total",
        "pgtrail_bytes_out_total",
        "pgtrail_audit_queue_depth",
        "pgtrail_audit_records_written_total",
        "pgtrail_audit_records_dropped_total",
        "pgtrail_audit_sink_errors_total",
        "pgtrail_classification_cache_hits_total",
        "pgtrail_classification_cache_misses_total",
        "pgtrail_upstream_connect_seconds_bucket",
        "pgtrail_upstream_connect_seconds_count",
        "pgtrail_classification_fallback_parses_total",
        "pgtrail_max_connections",
        "pgtrail_upstream_connect_failures_total",
        "pgtrail_upstream_last_connect_failed",
        "pgtrail_reloads_total{result=\"rejected\"}",
        "pgtrail_cancels_total{result=\"unmatched\"}",
    ] {
        assert!(
            before.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{before}"
        );
    }
    let ok0 = sample(&before, "pgtrail_statements_total", &["success=\"true\""]);
    let failed0 = sample(&before, "pgtrail_statements_total", &["success=\"false\""]);
    let sessions0 = sample(&before, "pgtrail_sessions_total", &[]);
    let auth0 = sample(&before, "pgtrail_auth_failures_total", &[]);
    let wrong_pw0 = sample(
        &before,
        "pgtrail_auth_failures_total",
        &["reason=\"wrong_password\""],
    );
    let bytes_in0 = sample(&before, "pgtrail_bytes_in_total", &[]);
    let connects0 = sample(&before, "pgtrail_upstream_connect_seconds_count", &[]);
    let fallback = "pgtrail_classification_fallback_parses_total";
    let pg_query0 = sample(&before, fallback, &["parser=\"pg_query\""]);
    let lexer0 = sample(&before, fallback, &["parser=\"lexer\""]);

    // The workload: one session with 12 statements, 3 of them failing, then
    // one login with a wrong password. Two statements leave the sqlparser
    // path: a DO block (pg_query) and a syntax error (lexer).
    let client = proxy.connect(pg, &db).await;
    for i in 0..8 {
        client
            .simple_query(&format!("SELECT {i}"))
            .await
            .expect("select");
    }
    for _ in 0..2 {
        client
            .simple_query("SELECT * FROM no_such_table_here")
            .await
            .expect_err("missing table");
    }
    client
        .simple_query("DO $$ BEGIN END $$")
        .await
        .expect("DO block");
    client
        .simple_query("SELEKT 1")
        .await
        .expect_err("syntax error");
    drop(client);
    let wrong = format!(
        "host=127.0.0.1 port={} user={} password=wrong dbname={db}",
        proxy.port(),
        pg.superuser()
    );
    assert!(
        tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
            .await
            .is_err(),
        "wrong password refused"
    );

    // Statements are counted by the audit writer, sessions when they end:
    // wait until everything is in, then check the counts are exact.
    for _ in 0..200 {
        let after = scrape(admin).await;
        let done = sample(&after, "pgtrail_statements_total", &[]) >= ok0 + failed0 + 12
            && sample(&after, "pgtrail_sessions_active", &[]) == 0
            && sample(&after, "pgtrail_auth_failures_total", &[]) > auth0;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = scrape(admin).await;
    assert_eq!(
        sample(&after, "pgtrail_statements_total", &["success=\"true\""]) - ok0,
        9,
        "{after}"
    );
    assert_eq!(
        sample(&after, "pgtrail_statements_total", &["success=\"false\""]) - failed0,
        3,
        "{after}"
    );
    // Every audited statement is in a duration histogram of its class.
    assert_eq!(
        sample(&after, "pgtrail_statement_duration_seconds_count", &[])
            - sample(&before, "pgtrail_statement_duration_seconds_count", &[]),
        12,
        "{after}"
    );
    assert!(
        sample(
            &after,
            "pgtrail_statement_duration_seconds_count",
            &["class=\"read\""]
        ) > 0,
        "{after}"
    );
    let info = after
        .lines()
        .find(|l| l.starts_with("pgtrail_build_info{"))
        .unwrap_or_else(|| panic!("no build_info in:\n{after}"));
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && info.contains("instance_id=\"")
            && !info.contains("instance_id=\"\"")
            && info.ends_with(" 1"),
        "{info}"
    );
    assert_eq!(
        sample(&after, "pgtrail_sessions_total", &[]) - sessions0,
        2,
        "{after}"
    );
    assert_eq!(sample(&after, "pgtrail_sessions_active", &[]), 0, "{after}");
    assert_eq!(
        sample(&after, "pgtrail_auth_failures_total", &[]) - auth0,
        1,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "pgtrail_auth_failures_total",
            &["reason=\"wrong_password\""]
        ) - wrong_pw0,
        1,
        "{after}"
    );
    // Passthrough: both logins, the refused one too, connected upstream.
    assert_eq!(
        sample(&after, "pgtrail_upstream_connect_seconds_count", &[]) - connects0,
        2,
        "{after}"
    );
    assert_eq!(
        sample(&after, fallback, &["parser=\"pg_query\""]) - pg_query0,
        1,
        "{after}"
    );
    assert_eq!(
        sample(&after, fallback, &["parser=\"lexer\""]) - lexer0,
        1,
        "{after}"
    );
    assert!(sample(&after, "pgtrail_bytes_in_total", &[]) > bytes_in0);
    assert!(sample(&after, "pgtrail_bytes_out_total", &[]) > 0);
    assert_eq!(
        sample(&after, "pgtrail_audit_records_dropped_total", &[]),
        0
    );
    assert!(sample(&after, "pgtrail_audit_records_written_total", &[]) >= 10);
    proxy.stop().await;
}

#[tokio::test]
async fn readyz_fails_when_upstream_is_down() {
    let (pg, _db) = fresh_db("readyz");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let proxy = Proxy::start_with(pg, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.upstream.url = format!("postgres://127.0.0.1:{dead}");
    })
    .await;
    let admin = proxy.admin_addr.expect("admin listener bound");
    let (status, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("upstream"), "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    // A client's login finds the server down: counted, and flagged for the
    // "process up, upstream unreachable" alert.
    let before = scrape(admin).await;
    assert_eq!(
        sample(&before, "pgtrail_upstream_last_connect_failed", &[]),
        0
    );
    let conn = format!(
        "host=127.0.0.1 port={} user={} password={} dbname=postgres",
        proxy.port(),
        pg.superuser(),
        pg.password()
    );
    let err = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .err()
        .expect("no server behind pgtrail");
    assert_eq!(err.code().map(|c| c.code()), Some("08006"), "{err}");
    let after = scrape(admin).await;
    assert_eq!(
        sample(&after, "pgtrail_upstream_connect_failures_total", &[]),
        1
    );
    assert_eq!(
        sample(&after, "pgtrail_upstream_last_connect_failed", &[]),
        1
    );
    proxy.stop().await;
}
