//! The compliance cookbook (`docs/compliance.md`) against real servers: a
//! known workload of two people through pgtrail (proxy mode) into the local
//! ClickHouse, then every query of the cookbook, taken from the document by
//! its `<!-- cookbook: id -->` marker, with its expected rows. The views the
//! queries read are checked on the way (they deduplicate a record written
//! twice), and the same queries run on a modern engine through
//! `ch-modern-check`.

use serde_json::Value;
use std::collections::BTreeMap;

use crate::harness::clickhouse::ChServer;
use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{connect, fresh_db, sessions, statements, Proxy};
use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};
use pgtrail::auth::users::{self, Method, UserEntry};
use pgtrail::config::{AuthMode, Secret};

const DOC: &str = include_str!("../../docs/compliance.md");
/// The columns of the PCI 10.2.6 sequence query (checked twice).
const PCI_10_2_6_COLUMNS: &[&str] = &[
    "instance_id",
    "records",
    "first_seq",
    "last_seq",
    "missing",
    "holes",
];

/// `(id, sql)` of every query in the cookbook, in document order: a line
/// `<!-- cookbook: id -->`, then a ```` ```sql ```` block.
pub(crate) fn cookbook() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        let Some(id) = line
            .strip_prefix("<!-- cookbook: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next().map(str::trim_end),
            Some("```sql"),
            "marker {id} is not followed by a ```sql block"
        );
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| l.trim_end() != "```")
            .collect();
        out.push((id.trim().to_string(), body.join("\n").trim().to_string()));
    }
    out
}

/// The query with its placeholders filled and `pgtrail.` pointing at `db`.
pub(crate) fn fill(sql: &str, db: &str, params: &[(&str, String)]) -> String {
    let mut s = sql.replace("pgtrail.", &format!("`{db}`."));
    for (k, v) in params {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!s.contains("{{"), "unfilled placeholder in\n{s}");
    s
}

pub(crate) use crate::harness::clickhouse::unique_ch_db;

/// The cookbook's parameters for synthetic data in November 2026, with
/// `person` and `session_id` for the investigation queries.
pub(crate) fn november_params(person: &str, session_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("from", "2026-11-01".to_string()),
        ("to", "2026-11-30".to_string()),
        ("table", "cards".to_string()),
        ("admins", "'alice'".to_string()),
        ("admin_roles", "'postgres'".to_string()),
        ("work_start", "7".to_string()),
        ("work_end", "19".to_string()),
        ("person", person.to_string()),
        ("session_id", session_id.to_string()),
        ("statement_seq", "1".to_string()),
        ("key_column", "id".to_string()),
        ("key_value", "1".to_string()),
        ("label", "pci".to_string()),
        ("service_roles", "'adm', 'app'".to_string()),
    ]
}

/// ClickHouse JSON values as text (64-bit integers come quoted, booleans
/// as 0/1, floats as numbers).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => u8::from(*b).to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn rows(ch: &ChServer, sql: &str) -> Vec<Value> {
    let body = ch.query(&format!("{sql}\nFORMAT JSONEachRow"));
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The named columns of each row, as text.
/// The columns of `service-roles-without-verified-end-user` the tests
/// compare.
const SERVICE_ROLE_COLUMNS: &[&str] = &[
    "db_role",
    "end_user_source",
    "end_user_reason",
    "statements",
    "end_users",
    "sessions",
];

fn pick(rows: &[Value], cols: &[&str]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            cols.iter()
                .map(|c| {
                    let v = r.get(*c).unwrap_or_else(|| panic!("no column {c} in {r}"));
                    text(v)
                })
                .collect()
        })
        .collect()
}

fn strs(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// `a, b` as `` `a`, `b` ``.
pub(crate) fn quoted(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn try_connect(conn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn person(name: &str, password: &str, role: &str) -> UserEntry {
    UserEntry {
        name: name.into(),
        secret: postgres_protocol::password::scram_sha_256(password.as_bytes()),
        method: Method::ScramSha256,
        db_role: Some(role.into()),
        databases: vec![],
    }
}

/// Waits until `sql` returns `want` (the proxy flushes at stop; this only
/// covers a slow server).
fn wait_ch(ch: &ChServer, sql: &str, want: &str) {
    for _ in 0..200 {
        if ch.try_query(sql).as_deref() == Ok(want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{sql} never returned {want}: {:?}", ch.try_query(sql));
}

#[tokio::test]
async fn cookbook_answers_on_the_local_server() {
    let ch = ChServer::shared();
    let version = ServerVersion::parse(&ch.version()).expect("ClickHouse version");
    let ch_db = unique_ch_db("cookbook");
    let (pg, db) = fresh_db("cookbook");
    // Roles are cluster-wide: unique names.
    let tag = PgCluster::unique_db_name("ck");
    let (adm, app, auditor) = (
        format!("{tag}_adm"),
        format!("{tag}_app"),
        format!("{tag}_auditor"),
    );
    pg.create_role(&adm, "adm-pw", true);
    pg.create_role(&app, "app-pw", false);

    // Not across midnight UTC: every record on one day.
    loop {
        let secs: u32 = ch.query("SELECT toUInt32(now()) % 86400").parse().unwrap();
        if secs < 86_390 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let hour: u32 = ch.query("SELECT toHour(now())").parse().unwrap();
    // Working hours that the whole workload falls outside of.
    let (work_start, work_end) = if hour >= 12 { (1, 4) } else { (18, 21) };

    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users.toml");
    users::upsert(&users_file, person("alice", "alice-pw", &adm)).unwrap();
    users::upsert(&users_file, person("bob", "bob-pw", &app)).unwrap();
    let proxy = Proxy::start_with(pg, |c| {
        c.auth.mode = AuthMode::Proxy;
        c.auth.users_file = Some(users_file.clone());
        c.auth
            .role_passwords
            .insert(adm.clone(), Secret("adm-pw".into()));
        c.auth
            .role_passwords
            .insert(app.clone(), Secret("app-pw".into()));
        c.audit.clickhouse_url = Some(ch.http_url());
        c.audit.clickhouse.database = ch_db.clone();
        c.audit.clickhouse.batch_ms = 50;
        c.labels.insert("pci".into(), vec!["cards.pan".into()]);
    })
    .await;
    let conn = |user: &str, pw: &str| {
        format!(
            "host=127.0.0.1 port={} user={user} password={pw} dbname={db}",
            proxy.port()
        )
    };

    // alice, the administrator.
    let alice = connect(&conn("alice", "alice-pw")).await;
    for sql in [
        "CREATE TABLE cards (id int PRIMARY KEY, pan text, holder text)".to_string(),
        "INSERT INTO cards VALUES (1, '4111111111111111', 'Ann'), (2, '5500000000000004', 'Ben')"
            .to_string(),
        format!("CREATE ROLE {auditor} LOGIN PASSWORD 'Sup3rSecret'"),
        format!("GRANT SELECT ON cards TO {app}"),
        "CREATE POLICY holder_rows ON cards FOR SELECT USING (true)".to_string(),
        "CREATE TABLE tmp_export (id int)".to_string(),
        "DROP TABLE tmp_export".to_string(),
        "SELECT count(*) FROM cards".to_string(),
    ] {
        alice
            .simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    drop(alice);

    // bob, the analyst: reads, a denied write, a typo.
    let bob = connect(&conn("bob", "bob-pw")).await;
    bob.simple_query("SELECT pan FROM cards WHERE id = 1")
        .await
        .unwrap();
    bob.simple_query("SELECT id, holder FROM public.cards ORDER BY id")
        .await
        .unwrap();
    let err = bob
        .simple_query("UPDATE cards SET holder = 'Eve' WHERE id = 2")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501");
    let err = bob
        .simple_query("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    bob.simple_query("SET statement_timeout = 100")
        .await
        .unwrap();
    let err = bob.simple_query("SELECT pg_sleep(5)").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    drop(bob);

    // bob again, with a wrong password.
    let err = try_connect(&conn("bob", "guess"))
        .await
        .expect_err("wrong password refused");
    assert_eq!(err.as_db_error().unwrap().code().code(), "28P01");

    let records = proxy.stop().await;
    let n_stmts = statements(&records).len();
    let n_sess = sessions(&records).len();
    assert_eq!(n_stmts, 14, "{records:#?}");
    let bob_session = sessions(&records)
        .iter()
        .find(|r| r["user"] == "bob" && r["event_type"] == "auth_ok")
        .unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let instance = records[0]["instance_id"].as_str().unwrap().to_string();
    let max_seq = records
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(max_seq as usize, records.len(), "seq runs 1..n");
    wait_ch(
        ch,
        &format!("SELECT count() FROM `{ch_db}`.statements"),
        &n_stmts.to_string(),
    );
    wait_ch(
        ch,
        &format!("SELECT count() FROM `{ch_db}`.sessions"),
        &n_sess.to_string(),
    );

    // The views exist and were recorded with the migration.
    let views = ch.query(&format!(
        "SELECT name FROM system.tables WHERE database = '{ch_db}' AND engine = 'View' ORDER BY name FORMAT TSV"
    ));
    let mut want_views: Vec<&str> = schema::VIEW_NAMES.to_vec();
    want_views.sort_unstable();
    assert_eq!(views.lines().collect::<Vec<_>>(), want_views);
    assert_eq!(
        ch.query(&format!(
            "SELECT max(version), count() FROM `{ch_db}`.schema_migrations"
        )),
        format!("{}\t{}", schema::SCHEMA_VERSION, schema::MIGRATIONS.len())
    );

    // A record written twice (a retried batch): the tables hold both copies
    // until a merge, the views show one.
    ch.query(&format!(
        "INSERT INTO `{ch_db}`.statements SELECT * FROM `{ch_db}`.statements WHERE kind = 'grant' OR `user` = 'bob' AND kind = 'select' AND success = 1"
    ));
    assert_eq!(
        ch.query(&format!(
            "SELECT count() FROM `{ch_db}`.statements WHERE kind = 'grant'"
        )),
        "2"
    );
    assert_eq!(
        ch.query(&format!(
            "SELECT count() FROM `{ch_db}`.statement_log WHERE kind = 'grant'"
        )),
        "1"
    );
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.statements")),
        (n_stmts + 3).to_string()
    );
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{ch_db}`.statement_log")),
        n_stmts.to_string()
    );

    let day = ch.query(&format!(
        "SELECT toString(min(day)) FROM `{ch_db}`.statement_log"
    ));
    let from = ch.query(&format!("SELECT toString(toDate('{day}') - 7)"));
    let to = ch.query(&format!("SELECT toString(toDate('{day}') + 1)"));
    let params = [
        ("from", from),
        ("to", to),
        ("table", "cards".to_string()),
        ("admins", "'alice'".to_string()),
        ("admin_roles", "'postgres'".to_string()),
        ("work_start", work_start.to_string()),
        ("work_end", work_end.to_string()),
        ("person", "bob".to_string()),
        ("session_id", bob_session.clone()),
        // Row changes: run on a real workload in attribution.rs.
        ("statement_seq", "1".to_string()),
        ("key_column", "id".to_string()),
        ("key_value", "1".to_string()),
        ("label", "pci".to_string()),
        // bob's role; the end users have a data set of their own below.
        ("service_roles", format!("'{app}'")),
    ];

    let queries = cookbook();
    let ids: Vec<&str> = queries.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "pci-10.2.1",
            "pci-10.2.1-columns",
            "pci-10.2.2",
            "pci-10.2.4",
            "pci-10.2.4-denied",
            "pci-10.2.5",
            "pci-10.2.6",
            "pci-10.2.6-gaps",
            "pci-10.2.7",
            "soc2-cc7.2-failed",
            "soc2-cc7.2-volume",
            "soc2-cc7.2-after-hours",
            "hipaa-164.312b",
            "hipaa-164.312b-daily",
            "person-sessions",
            "session-timeline",
            "top-fingerprints",
            "cancelled-statements",
            "undone-work",
            "end-user-activity",
            "service-roles-without-verified-end-user",
            "changes-old-values",
            "changes-by-statement",
            "changes-outside-pgtrail",
            "changes-row-history",
        ]
    );
    let by_id: BTreeMap<&str, String> = queries
        .iter()
        .map(|(id, sql)| (id.as_str(), fill(sql, &ch_db, &params)))
        .collect();
    let run = |id: &str| -> Vec<Value> {
        let got = rows(ch, &by_id[id]);
        eprintln!("--- {id}\n{got:#?}");
        got
    };

    // PCI 10.2.1: every access to cards, in order.
    let got = run("pci-10.2.1");
    assert_eq!(
        pick(
            &got,
            &["user", "access", "object", "kind", "success", "sqlstate"]
        ),
        strs(&[
            &["alice", "write", "cards", "create_table", "1", ""],
            &["alice", "write", "cards", "insert", "1", ""],
            &["alice", "write", "cards", "grant", "1", ""],
            &["alice", "write", "cards", "create_policy", "1", ""],
            &["alice", "read", "cards", "select", "1", ""],
            &["bob", "read", "cards", "select", "1", ""],
            &["bob", "read", "public.cards", "select", "1", ""],
            &["bob", "write", "cards", "update", "0", "42501"],
        ])
    );
    assert!(got.iter().all(|r| r["client_addr"] == "127.0.0.1"));
    assert_eq!(text(&got[1]["rows"]), "2");
    assert_eq!(got[5]["db_role"], app.as_str());
    assert_eq!(got[5]["statement"], "SELECT pan FROM cards WHERE id = 1");
    assert_eq!(text(&got[6]["rows"]), "2");

    // The same by column: the card numbers (`[labels] pci = ["cards.pan"]`,
    // no catalog): alice's INSERT fills every column, bob reads `pan`;
    // bob's `SELECT id, holder` and `UPDATE ... SET holder` are not listed.
    let got = run("pci-10.2.1-columns");
    assert_eq!(
        pick(&got, &["user", "kind", "columns_read", "columns_written", "statement"]),
        strs(&[
            &[
                "alice",
                "insert",
                "[]",
                "[cards.*]",
                "INSERT INTO cards VALUES (1, '4111111111111111', 'Ann'), (2, '5500000000000004', 'Ben')"
            ],
            &["bob", "select", "[cards.pan,cards.id]", "[]", "SELECT pan FROM cards WHERE id = 1"],
        ])
    );

    // PCI 10.2.2: everything alice did, found by her name and, apart, by
    // the administrative role she used.
    let alice_did = [
        "create_table",
        "insert",
        "create_role",
        "grant",
        "create_policy",
        "create_table",
        "drop_table",
        "select",
    ]
    .iter()
    .map(|k| vec!["alice".to_string(), adm.clone(), k.to_string(), "1".into()])
    .collect::<Vec<_>>();
    let got = run("pci-10.2.2");
    assert_eq!(
        pick(&got, &["user", "db_role", "kind", "success"]),
        alice_did
    );
    let by_role: Vec<(&str, String)> = params
        .iter()
        .map(|(k, v)| match *k {
            "admins" => (*k, "'nobody'".to_string()),
            "admin_roles" => (*k, format!("'{adm}'")),
            _ => (*k, v.clone()),
        })
        .collect();
    let sql = &queries.iter().find(|(id, _)| id == "pci-10.2.2").unwrap().1;
    let got = rows(ch, &fill(sql, &ch_db, &by_role));
    assert_eq!(
        pick(&got, &["user", "db_role", "kind", "success"]),
        alice_did
    );

    // PCI 10.2.4: exactly the wrong-password login.
    let got = run("pci-10.2.4");
    assert_eq!(
        pick(&got, &["user", "client_addr", "database", "reason"]),
        strs(&[&["bob", "127.0.0.1", &db, "wrong password (scram-sha-256)"]])
    );
    let got = run("pci-10.2.4-denied");
    assert_eq!(
        pick(
            &got,
            &["user", "db_role", "kind", "objects_written", "sqlstate"]
        ),
        strs(&[&["bob", &app, "update", "[cards]", "42501"]])
    );
    assert!(got[0]["error_message"]
        .as_str()
        .unwrap()
        .contains("permission denied"));

    // PCI 10.2.5: the role and the grant, the password not in clear.
    let got = run("pci-10.2.5");
    assert_eq!(
        pick(&got, &["user", "db_role", "kind", "success", "statement"]),
        strs(&[
            &[
                "alice",
                &adm,
                "create_role",
                "1",
                &format!("CREATE ROLE {auditor} LOGIN PASSWORD '<redacted>'"),
            ],
            &[
                "alice",
                &adm,
                "grant",
                "1",
                &format!("GRANT SELECT ON cards TO {app}"),
            ],
            &[
                "alice",
                &adm,
                "create_policy",
                "1",
                "CREATE POLICY holder_rows ON cards FOR SELECT USING (true)",
            ],
        ])
    );

    // PCI 10.2.6: one instance, no hole; then a lost record and a gap row.
    let got = run("pci-10.2.6");
    let all = records.len().to_string();
    assert_eq!(
        pick(&got, PCI_10_2_6_COLUMNS),
        strs(&[&[&instance, &all, "1", &all, "0", "[]"]])
    );
    assert!(run("pci-10.2.6-gaps").is_empty());

    // PCI 10.2.7: the two CREATE TABLEs and the DROP TABLE.
    let got = run("pci-10.2.7");
    assert_eq!(
        pick(&got, &["user", "kind", "objects_written", "success"]),
        strs(&[
            &["alice", "create_table", "[cards]", "1"],
            &["alice", "create_policy", "[cards]", "1"],
            &["alice", "create_table", "[tmp_export]", "1"],
            &["alice", "drop_table", "[tmp_export]", "1"],
        ])
    );

    // SOC 2 CC7.2: failures per person and SQLSTATE.
    let got = run("soc2-cc7.2-failed");
    assert_eq!(
        pick(&got, &["user", "sqlstate", "failures", "kinds"]),
        strs(&[
            &["bob", "42501", "1", "[update]"],
            &["bob", "42P01", "1", "[select]"],
            &["bob", "57014", "1", "[select]"],
        ])
    );
    assert!(got[1]["example_message"]
        .as_str()
        .unwrap()
        .contains("no_such_table"));

    // Outside working hours: everything (the hours were chosen so).
    let got = run("soc2-cc7.2-after-hours");
    assert_eq!(
        pick(&got, &["user", "statements", "sessions", "kinds"]),
        strs(&[
            &[
                "alice",
                "8",
                "1",
                "[create_policy,create_role,create_table,drop_table,grant,insert,select]"
            ],
            &["bob", "6", "1", "[select,set,update]"],
        ])
    );

    // HIPAA: successful accesses to cards per person per day.
    let got = run("hipaa-164.312b");
    assert_eq!(
        pick(
            &got,
            &[
                "day",
                "user",
                "reads",
                "writes",
                "rows_read",
                "rows_written",
                "sessions"
            ]
        ),
        strs(&[
            &[&day, "alice", "1", "4", "1", "2", "1"],
            &[&day, "bob", "2", "0", "3", "0", "1"],
        ])
    );
    let got = run("hipaa-164.312b-daily");
    assert_eq!(
        pick(
            &got,
            &[
                "day",
                "user",
                "statements",
                "reads",
                "writes",
                "ddl",
                "dcl",
                "failed",
                "sessions",
                "roles"
            ]
        ),
        strs(&[
            &[
                &day,
                "alice",
                "8",
                "1",
                "1",
                "4",
                "2",
                "0",
                "1",
                &format!("[{adm}]")
            ],
            &[
                &day,
                "bob",
                "6",
                "4",
                "1",
                "0",
                "0",
                "3",
                "1",
                &format!("[{app}]")
            ],
        ])
    );

    // Investigations: bob's sessions, his first session in order, shapes,
    // the statement_timeout cancellation.
    let got = run("person-sessions");
    assert_eq!(
        pick(&got, &["session_id", "events", "statements"]),
        vec![
            vec![
                bob_session.clone(),
                "[connect,auth_ok,disconnect]".into(),
                "6".into()
            ],
            vec![
                sessions(&records)
                    .iter()
                    .rev()
                    .find(|r| r["user"] == "bob")
                    .unwrap()["session_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                "[connect,auth_failed,disconnect]".into(),
                "0".into(),
            ],
        ]
    );
    let got = run("session-timeline");
    assert_eq!(
        pick(
            &got,
            &["kind", "command_tag", "success", "sqlstate", "txn_status"]
        ),
        strs(&[
            &["select", "SELECT 1", "1", "", "I"],
            &["select", "SELECT 2", "1", "", "I"],
            &["update", "", "0", "42501", "I"],
            &["select", "", "0", "42P01", "I"],
            &["set", "SET", "1", "", "I"],
            &["select", "", "0", "57014", "I"],
        ])
    );
    let seqs: Vec<u64> = got
        .iter()
        .map(|r| text(&r["seq"]).parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let got = run("top-fingerprints");
    let mut shapes = pick(&got, &["example", "statements", "failed", "people"]);
    shapes.sort();
    assert_eq!(got.len(), 14, "one shape per distinct statement here");
    assert!(shapes.contains(&vec![
        "select pg_sleep($1)".to_string(),
        "1".into(),
        "1".into(),
        "1".into()
    ]));
    let total: u64 = got
        .iter()
        .map(|r| text(&r["total_us"]).parse::<u64>().unwrap())
        .sum();
    let slowest: u64 = text(&got[0]["total_us"]).parse().unwrap();
    assert!(slowest * 14 >= total, "sorted by total time: {got:#?}");
    let got = run("cancelled-statements");
    assert_eq!(
        pick(&got, &["user", "db_role", "session_id", "statement"]),
        vec![vec![
            "bob".to_string(),
            app.clone(),
            bob_session.clone(),
            "SELECT pg_sleep(5)".into()
        ]]
    );
    assert!(text(&got[0]["error_message"]).contains("statement timeout"));
    // Nothing in this workload was undone (transactions.rs covers the view).
    assert!(run("undone-work").is_empty());
    // Nobody in this workload named an end user: bob's role (as if it
    // were an application's) acted without one.
    assert!(run("end-user-activity").is_empty());
    let got = run("service-roles-without-verified-end-user");
    assert_eq!(
        pick(&got, SERVICE_ROLE_COLUMNS),
        vec![vec![
            app.clone(),
            "none".into(),
            "".into(),
            "6".into(),
            "1".into(),
            "1".into()
        ]]
    );
    end_user_answers(ch, &ch_db, &queries, &params);

    // Volume: a copy of the data with two earlier days of history, bob as
    // busy as today, alice with one statement a day: alice stands out.
    let (hist, _) = ch.fresh_schema("cookbook_hist");
    ch.query(&format!(
        "INSERT INTO `{hist}`.statements SELECT * FROM `{ch_db}`.statements"
    ));
    let cols = schema::column_names("statements");
    for days_back in [2u64, 3] {
        let shifted = if version.is_modern() {
            format!("event_time - toIntervalDay({days_back})")
        } else {
            format!("event_time - {}", days_back * 86_400_000_000)
        };
        let select = cols
            .iter()
            .map(|c| match *c {
                "event_time" => shifted.clone(),
                "seq" => format!("seq + {}", days_back * 1_000_000),
                c => format!("`{c}`"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        ch.query(&format!(
            "INSERT INTO `{hist}`.statements ({}) SELECT {select} FROM `{ch_db}`.statement_log WHERE `user` = 'bob' OR `user` = 'alice' AND kind = 'insert'",
            quoted(&cols)
        ));
    }
    let volume = fill(
        &queries
            .iter()
            .find(|(id, _)| id == "soc2-cc7.2-volume")
            .unwrap()
            .1,
        &hist,
        &params,
    );
    let got = rows(ch, &volume);
    eprintln!("--- soc2-cc7.2-volume\n{got:#?}");
    assert_eq!(
        pick(&got, &["user", "day", "statements", "baseline"]),
        strs(&[&["alice", &day, "8", "1"]])
    );
    // And on the real data alone (one day each): no baseline, no rows.
    assert!(run("soc2-cc7.2-volume").is_empty());

    // A record lost (seq max+1 and max+2 never arrive), then a gap row.
    let last = statements(&records).last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    let select = cols
        .iter()
        .map(|c| match *c {
            "seq" => format!("toUInt64({})", max_seq + 3),
            c => format!("`{c}`"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    ch.query(&format!(
        "INSERT INTO `{ch_db}`.statements ({}) SELECT {select} FROM `{ch_db}`.statements WHERE seq = {last} LIMIT 1",
        quoted(&cols)
    ));
    ch.query(&format!(
        "INSERT INTO `{ch_db}`.gaps (event_id, instance_id, seq, event_time, missing_events, reason) SELECT event_id, instance_id, toUInt64({}), event_time, toUInt64(2), 'test: records lost' FROM `{ch_db}`.statements WHERE seq = {last} LIMIT 1",
        max_seq + 4
    ));
    let got = run("pci-10.2.6");
    let (n, first_hole, last_hole) = (records.len() + 2, max_seq + 1, max_seq + 2);
    assert_eq!(
        pick(&got, PCI_10_2_6_COLUMNS),
        strs(&[&[
            &instance,
            &n.to_string(),
            "1",
            &(max_seq + 4).to_string(),
            "2",
            &format!("[[{first_hole},{last_hole}]]"),
        ]])
    );
    let got = run("pci-10.2.6-gaps");
    assert_eq!(
        pick(&got, &["instance_id", "seq", "missing_events", "reason"]),
        strs(&[&[
            &instance,
            &(max_seq + 4).to_string(),
            "2",
            "test: records lost"
        ]])
    );
}

/// One statement of `END_USER_ROWS`.
struct EndUserRow {
    seq: u64,
    /// `user` and `db_role`: who logged in.
    login: (&'static str, &'static str),
    /// `end_user`, `end_user_source`, `end_user_verified`, `end_user_reason`.
    claim: (&'static str, &'static str, u8, &'static str),
    request_id: &'static str,
    kind: &'static str,
    statement: &'static str,
}

const SERVICE: (&str, &str) = ("orders", "svc_orders");

/// The statements of an application that logs in as `svc_orders`, with
/// the end users it names (schema version 9): alice verified through a
/// sqlcommenter comment, bob through `SET pgtrail.end_user` without a
/// signature, one statement naming nobody, and a DBA's statement (not a
/// service role). Written straight into ClickHouse: which claims the
/// proxy takes is tested where claims are made.
const END_USER_ROWS: &[EndUserRow] = &[
    EndUserRow {
        seq: 1,
        login: SERVICE,
        claim: ("alice", "comment", 1, ""),
        request_id: "req-1",
        kind: "select",
        statement: "SELECT * FROM orders WHERE id = 7 /*end_user='alice',request_id='req-1'*/",
    },
    EndUserRow {
        seq: 2,
        login: SERVICE,
        claim: ("bob", "set", 0, "not signed"),
        request_id: "",
        kind: "select",
        statement: "SELECT * FROM orders WHERE owner = 'bob'",
    },
    EndUserRow {
        seq: 3,
        login: SERVICE,
        claim: ("alice", "comment", 1, ""),
        request_id: "req-2",
        kind: "update",
        statement:
            "UPDATE orders SET state = 'paid' WHERE id = 7 /*end_user='alice',request_id='req-2'*/",
    },
    EndUserRow {
        seq: 4,
        login: SERVICE,
        claim: ("", "none", 0, ""),
        request_id: "",
        kind: "select",
        statement: "SELECT count(*) FROM orders",
    },
    EndUserRow {
        seq: 5,
        login: SERVICE,
        claim: ("bob", "set", 0, "not signed"),
        request_id: "",
        kind: "delete",
        statement: "DELETE FROM orders WHERE id = 9",
    },
    EndUserRow {
        seq: 6,
        login: ("carol", "adm"),
        claim: ("", "none", 0, ""),
        request_id: "",
        kind: "vacuum",
        statement: "VACUUM orders",
    },
];

/// The end-user entries of the cookbook on `END_USER_ROWS` (alice's first
/// statement written twice, as a retried batch would), in a database of
/// their own at the time of the workload in `ch_db`: row by row, filled
/// with alice, bob and carol (no end user).
fn end_user_answers(
    ch: &ChServer,
    ch_db: &str,
    queries: &[(String, String)],
    params: &[(&str, String)],
) {
    let (db, _) = ch.fresh_schema("cookbook_end_user");
    let cols = [
        "event_id",
        "instance_id",
        "seq",
        "event_time",
        "session_id",
        "user",
        "db_role",
        "end_user",
        "end_user_source",
        "end_user_verified",
        "end_user_reason",
        "request_id",
        "trace_id",
        "kind",
        "success",
        "statement",
    ];
    for r in END_USER_ROWS.iter().chain(&END_USER_ROWS[..1]) {
        let (seq, (user, role), (end_user, source, verified, reason)) = (r.seq, r.login, r.claim);
        let trace = if source == "comment" {
            "4bf92f3577b34da6a3ce929d0e0e4736"
        } else {
            ""
        };
        // One time for all: the workload's last, within the day range.
        ch.query(&format!(
            "INSERT INTO `{db}`.statements ({}) SELECT toUUID('01890000-0000-7000-8000-00000000000{seq}'), 'i1', toUInt64({seq}), max(event_time), 's-{user}', '{user}', '{role}', '{end_user}', '{source}', {verified}, '{reason}', '{}', '{trace}', '{}', 1, '{}' FROM `{ch_db}`.statements",
            quoted(&cols),
            r.request_id,
            r.kind,
            r.statement.replace('\'', "\\'"),
        ));
    }
    let sql = |id: &str, person: &str| -> Vec<Value> {
        let query = &queries.iter().find(|(i, _)| i == id).expect(id).1;
        let filled: Vec<(&str, String)> = params
            .iter()
            .map(|(k, v)| match *k {
                "person" => (*k, person.to_string()),
                "service_roles" => (*k, "'svc_orders', 'svc_billing'".to_string()),
                _ => (*k, v.clone()),
            })
            .collect();
        let got = rows(ch, &fill(query, &db, &filled));
        eprintln!("--- {id} ({person})\n{got:#?}");
        got
    };
    let activity = [
        "seq",
        "end_user",
        "end_user_verified",
        "end_user_source",
        "end_user_reason",
        "request_id",
        "user",
        "db_role",
        "kind",
        "statement",
    ];
    // Newest first: the seqs fall (one event time for all).
    let expected = |person: &str| -> Vec<Vec<String>> {
        END_USER_ROWS
            .iter()
            .rev()
            .filter(|r| r.claim.0 == person)
            .map(|r| {
                let (end_user, source, verified, reason) = r.claim;
                [
                    &r.seq.to_string(),
                    end_user,
                    &verified.to_string(),
                    source,
                    reason,
                    r.request_id,
                    r.login.0,
                    r.login.1,
                    r.kind,
                    r.statement,
                ]
                .map(String::from)
                .to_vec()
            })
            .collect()
    };
    let alice = sql("end-user-activity", "alice");
    assert_eq!(pick(&alice, &activity), expected("alice"));
    assert!(alice
        .iter()
        .all(|r| r["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"));
    let bob = sql("end-user-activity", "bob");
    assert_eq!(pick(&bob, &activity), expected("bob"));
    assert!(sql("end-user-activity", "carol").is_empty());
    // The view has every statement naming an end user, once.
    assert_eq!(
        ch.query(&format!(
            "SELECT count(), uniqExact(seq) FROM `{db}`.end_user_activity"
        )),
        "4\t4"
    );

    let got = sql("service-roles-without-verified-end-user", "bob");
    assert_eq!(
        pick(&got, SERVICE_ROLE_COLUMNS),
        strs(&[
            &["svc_orders", "set", "not signed", "2", "1", "1"],
            &["svc_orders", "none", "", "1", "1", "1"],
        ])
    );
    ch.query(&format!("DROP DATABASE `{db}`"));
}

/// The modern DDL (views included) and every cookbook query on a modern
/// engine, with the row count each returns on a small known data set:
/// alice inserts into `cards` at 03:00 UTC on a Wednesday (outside working
/// hours) through role `adm`, for end user bob (not verified), bob fails
/// to log in, and the insert arrives twice.
#[test]
fn cookbook_runs_on_a_modern_engine() {
    let version = ServerVersion::DEFAULT;
    let opts = SchemaOptions::default();
    let mut sql = schema::script(version, &opts);
    let list = |table: &str| quoted(&schema::column_names(table));
    // 2026-11-25 03:00:00 UTC, a Wednesday.
    let at = "fromUnixTimestamp64Micro(toInt64(1795575600000000), 'UTC')";
    let stmt = format!("toUUID('01890000-0000-7000-8000-000000000001'), 'i1', 1, {at}, 5, 's1', 4242, 'alice', 'adm', 'adm', 'db', '127.0.0.1', 5432, 'psql', 'simple', 'INSERT INTO cards VALUES (1)', 0, 0, 42, 'INSERT INTO cards VALUES ($1)', 'insert', 'write', 'C', 'WRITE', [], ['cards'], [], 'sqlparser', 'INSERT 0 1', 1, 1, '', '', 'I', toUUID('00000000-0000-0000-0000-000000000000'), [], '', [], ['cards.pan'], ['pci'], [], [], 1, 'bob', 'set', 0, 'not signed', 'r1', ''");
    for _ in 0..2 {
        sql.push_str(&format!(
            "INSERT INTO pgtrail.statements ({}) SELECT {stmt};\n",
            list("statements")
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO pgtrail.sessions ({}) SELECT toUUID('01890000-0000-7000-8000-000000000002'), 'i1', 2, {at}, 'auth_failed', 's2', 0, 'bob', '', '', 'db', '127.0.0.1', 5433, '', 0, 'scram-sha-256', 'wrong password', 0, 0, 0, 0, '';\n",
        list("sessions")
    ));
    let params = november_params("bob", "s1");
    let expected: BTreeMap<&str, usize> = [
        ("pci-10.2.1", 1),
        ("pci-10.2.1-columns", 1),
        ("pci-10.2.2", 1),
        ("pci-10.2.4", 1),
        ("pci-10.2.4-denied", 0),
        ("pci-10.2.5", 0),
        ("pci-10.2.6", 1),
        ("pci-10.2.6-gaps", 0),
        ("pci-10.2.7", 0),
        ("soc2-cc7.2-failed", 0),
        ("soc2-cc7.2-volume", 0),
        ("soc2-cc7.2-after-hours", 1),
        ("hipaa-164.312b", 1),
        ("hipaa-164.312b-daily", 1),
        ("person-sessions", 1),
        ("session-timeline", 1),
        ("top-fingerprints", 1),
        ("cancelled-statements", 0),
        ("undone-work", 0),
        ("end-user-activity", 1),
        ("service-roles-without-verified-end-user", 1),
        ("changes-old-values", 0),
        ("changes-by-statement", 0),
        ("changes-outside-pgtrail", 0),
        ("changes-row-history", 0),
    ]
    .into_iter()
    .collect();
    let queries = cookbook();
    assert_eq!(queries.len(), expected.len());
    for (id, query) in &queries {
        let want = expected
            .get(id.as_str())
            .unwrap_or_else(|| panic!("no expected count for {id}"));
        let q = fill(query, "pgtrail", &params);
        // As written, then its row count.
        sql.push_str(&format!("{q};\n"));
        sql.push_str(&format!(
            "SELECT throwIf(count() != {want}, '{id}') FROM ({q});\n"
        ));
    }
    crate::harness::modern::check(&sql, "the cookbook");
}
