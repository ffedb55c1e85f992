//! The Grafana dashboard (`deploy/grafana/dashboards/pgtrail.json`) against
//! real servers: every ClickHouse query (panels and template variables),
//! expanded by `scripts/dashboard_queries.py` the way
//! grafana-clickhouse-datasource expands it, runs on pgtrail's schema for
//! the local server's version (18.16 here) with a few sample records inside
//! the time range, and must return at least one row, with the variables
//! set to sample values and set to "All". A query that fails or silently
//! returns nothing (a time filter comparing microseconds with a DateTime
//! does) fails the test, naming the panel. The same queries run on a modern
//! engine through `ch-modern-check`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::cookbook::quoted;
use crate::harness::clickhouse::ChServer;
use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};

/// 2026-11-25 03:00:00 UTC: the sample records are at T .. T + 5 minutes.
const T: i64 = 1_795_575_600;
/// The dashboard's time range: an hour before T to two hours after.
const FROM: i64 = T - 3600;
const TO: i64 = T + 7200;
/// Values of the dashboard variables when not "All".
const VARS: &[&str] = &["instance=i1,i2", "user=alice,bob,mallory", "database=app"];
/// A person whose only statement is 30 days before the range.
const OUTSIDE: &str = "zed_outside_the_range";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(label, sql)` of every ClickHouse query of the dashboard; panics on a
/// query the script could not expand.
fn expanded(all: bool) -> Vec<(String, String)> {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("scripts/dashboard_queries.py"))
        .args(["--from", &FROM.to_string(), "--to", &TO.to_string()])
        .args(["--interval", "60"]);
    if all {
        cmd.arg("--all");
    }
    for v in VARS {
        cmd.args(["--var", v]);
    }
    let out = cmd
        .arg(root().join("deploy/grafana/dashboards/pgtrail.json"))
        .output()
        .expect("run python3 scripts/dashboard_queries.py");
    assert!(
        out.status.success(),
        "dashboard_queries.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut queries = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let q: Value = serde_json::from_str(line).unwrap();
        if q["kind"] != "clickhouse" {
            continue;
        }
        let label = q["label"].as_str().unwrap().to_string();
        if let Some(e) = q["error"].as_str() {
            panic!("{label}: cannot be expanded: {e}");
        }
        queries.push((label, q["sql"].as_str().unwrap().to_string()));
    }
    assert!(
        !queries.is_empty(),
        "no ClickHouse queries in the dashboard"
    );
    queries
}

/// `event_time` for `secs` (Unix seconds) in the server's column type.
fn at(version: ServerVersion, secs: i64) -> String {
    let micros = format!("toInt64({})", secs * 1_000_000);
    if version.is_modern() {
        format!("fromUnixTimestamp64Micro({micros}, 'UTC')")
    } else {
        micros
    }
}

/// One `INSERT ... SELECT` of `values` (SQL expressions for `cols`).
fn insert(db: &str, table: &str, cols: &[&str], values: &[&str]) -> String {
    assert_eq!(cols.len(), values.len());
    format!(
        "INSERT INTO `{db}`.{table} ({}) SELECT {}",
        quoted(cols),
        values.join(", ")
    )
}

/// Statements by alice and bob (read, write, DDL, GRANT, a failure) on two
/// instances, session events (connects, a failed login, a disconnect) and
/// a gap record, all in the range; one statement 30 days before it.
fn sample_rows(db: &str, v: ServerVersion) -> Vec<String> {
    let st = [
        "instance_id",
        "seq",
        "event_time",
        "duration_us",
        "session_id",
        "user",
        "db_role",
        "database",
        "client_addr",
        "statement",
        "fingerprint",
        "normalized",
        "kind",
        "class",
        "audit_class",
        "objects_read",
        "objects_written",
        "rows",
        "success",
        "sqlstate",
        "error_message",
    ];
    // instance | seq | seconds after T | duration_us | user | statement |
    // kind | class | audit_class | objects_read | objects_written
    let statements = [
        "i1|1|0|120|alice|SELECT * FROM cards|select|read|READ|['cards']|[]",
        "i1|2|60|900|alice|INSERT INTO orders SELECT * FROM cards|insert|write|WRITE|['cards']|['orders']",
        "i1|3|120|5000|bob|CREATE TABLE x (a int)|create_table|ddl|DDL|[]|['x']",
        "i1|4|180|300|bob|GRANT SELECT ON cards TO carol|grant|dcl|ROLE|[]|['cards']",
        "i2|1|30|50|alice|SELEC 1|unknown|unknown|MISC|[]|[]",
    ];
    let outside = format!(
        "i1|100|{}|70|{OUTSIDE}|SELECT 1|select|read|READ|[]|[]",
        -30 * 86400
    );
    let mut out = Vec::new();
    for (i, line) in statements
        .iter()
        .copied()
        .chain([outside.as_str()])
        .enumerate()
    {
        let f: Vec<&str> = line.split('|').collect();
        let [inst, seq, after, dur, user, text, kind, class, audit, read, written] = f[..] else {
            panic!("bad sample statement {line}");
        };
        let time = T + after.parse::<i64>().unwrap();
        let failed = text == "SELEC 1";
        let values = [
            format!("'{inst}'"),
            format!("toUInt64({seq})"),
            at(v, time),
            format!("toUInt64({dur})"),
            format!("'s{}'", i % 2 + 1),
            format!("'{user}'"),
            "'app'".into(),
            "'app'".into(),
            "'10.0.0.1'".into(),
            format!("'{text}'"),
            format!("toUInt64({})", 1000 + i),
            format!("'{}'", text.to_lowercase()),
            format!("'{kind}'"),
            format!("'{class}'"),
            format!("'{audit}'"),
            format!("CAST({read} AS Array(String))"),
            format!("CAST({written} AS Array(String))"),
            "toUInt64(1)".into(),
            format!("toUInt8({})", u8::from(!failed)),
            format!("'{}'", if failed { "42601" } else { "" }),
            format!("'{}'", if failed { "syntax error" } else { "" }),
        ];
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        out.push(insert(db, "statements", &st, &values));
    }
    let se = [
        "instance_id",
        "seq",
        "event_time",
        "event_type",
        "session_id",
        "user",
        "database",
        "client_addr",
        "auth_method",
        "reason",
    ];
    let sessions = [
        ("i1", 5, T, "connect", "s1", "alice", ""),
        (
            "i1",
            6,
            T + 10,
            "auth_failed",
            "s9",
            "mallory",
            "password authentication failed",
        ),
        ("i1", 8, T + 300, "disconnect", "s1", "alice", ""),
        ("i2", 2, T, "connect", "s2", "alice", ""),
    ];
    for (inst, seq, time, event, session, user, reason) in sessions {
        let values = [
            format!("'{inst}'"),
            format!("toUInt64({seq})"),
            at(v, time),
            format!("'{event}'"),
            format!("'{session}'"),
            format!("'{user}'"),
            "'app'".into(),
            "'10.0.0.9'".into(),
            "'scram-sha-256'".into(),
            format!("'{reason}'"),
        ];
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        out.push(insert(db, "sessions", &se, &values));
    }
    let gap = [
        "'i1'".to_string(),
        "toUInt64(7)".into(),
        at(v, T + 240),
        "toUInt64(7)".into(),
        "'audit queue full (fail_open)'".into(),
    ];
    let gap: Vec<&str> = gap.iter().map(String::as_str).collect();
    out.push(insert(
        db,
        "gaps",
        &[
            "instance_id",
            "seq",
            "event_time",
            "missing_events",
            "reason",
        ],
        &gap,
    ));
    out
}

/// The query reading `db` instead of `pgtrail`.
fn in_db(sql: &str, db: &str) -> String {
    sql.replace("pgtrail.", &format!("`{db}`."))
}

#[test]
fn dashboard_queries_return_rows_on_the_local_server() {
    let ch = ChServer::shared();
    let (db, version) = ch.fresh_schema("dashboards");
    for row in sample_rows(&db, version) {
        ch.query(&row);
    }
    let mut failures = Vec::new();
    for all in [false, true] {
        let mode = if all { "All" } else { "sample values" };
        for (label, sql) in expanded(all) {
            match ch.try_query(&format!("{}\nFORMAT TSV", in_db(&sql, &db))) {
                Err(e) => failures.push(format!("{label} [{mode}]: {e}\n{sql}")),
                Ok(out) if out.trim().is_empty() => failures.push(format!(
                    "{label} [{mode}]: no rows on the sample data\n{sql}"
                )),
                Ok(out) if out.contains(OUTSIDE) => failures.push(format!(
                    "{label} [{mode}]: a record outside the range\n{out}"
                )),
                Ok(_) => {}
            }
        }
    }
    ch.query(&format!("DROP DATABASE `{db}`"));
    assert!(
        failures.is_empty(),
        "{} dashboard queries failed on ClickHouse {version}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn dashboard_queries_return_rows_on_a_modern_engine() {
    let version = ServerVersion::DEFAULT;
    let mut sql = schema::script(version, &SchemaOptions::default());
    for row in sample_rows("pgtrail", version) {
        sql.push_str(&format!("{row};\n"));
    }
    for all in [false, true] {
        for (label, q) in expanded(all) {
            let label = label.replace("*/", "");
            // throwIf: a query that returns nothing fails like an error.
            sql.push_str(&format!(
                "/* {label}, all={all} */ SELECT throwIf(count() = 0) FROM (\n{q}\n);\n"
            ));
        }
    }
    crate::harness::modern::check(&sql, "the dashboard's queries");
}

/// The script expands as grafana-clickhouse-datasource does (frontend
/// `applyConditionalAll`, Grafana's `singlequote` format, backend
/// `pkg/macros/macros.go`); no servers.
#[test]
fn dashboard_queries_expand_like_the_clickhouse_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.json");
    let sql = "SELECT $__timeInterval(ts) AS t, intDiv(toUInt32(ts), $__interval_s) AS b \
               FROM x WHERE $__timeFilter(ts) AND $__dateFilter(day) \
               AND $__conditionalAll(v IN (${v:singlequote}), $v) AND s = ${w:sqlstring}";
    let dash = serde_json::json!({
        "templating": {"list": [
            {"name": "v", "type": "custom"}, {"name": "w", "type": "custom"}
        ]},
        "panels": [{"id": 1, "title": "p", "datasource": {"type": "grafana-clickhouse-datasource"},
                    "targets": [{"refId": "A", "rawSql": sql}]}]
    });
    std::fs::write(&file, dash.to_string()).unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new("python3")
            .arg(root().join("scripts/dashboard_queries.py"))
            .args([
                "--from",
                "1415792726",
                "--to",
                "1447328726",
                "--interval",
                "20",
            ])
            .args(["--var", "v=a,b", "--var", "w=it's"])
            .args(extra)
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let q: Value = serde_json::from_slice(&out.stdout).unwrap();
        q["sql"].as_str().unwrap().to_string()
    };
    let tail = "FROM x WHERE ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726) \
                AND day >= toDate('2014-11-12') AND day <= toDate('2015-11-12') AND ";
    let head = "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 20 second) AS t, \
                intDiv(toUInt32(ts), 20) AS b ";
    assert_eq!(
        run(&[]),
        format!("{head}{tail}v IN ('a','b') AND s = 'it''s'")
    );
    assert_eq!(run(&["--all"]), format!("{head}{tail}1=1 AND s = 'it''s'"));
}
