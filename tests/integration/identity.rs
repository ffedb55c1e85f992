//! Who a record names: repeated startup parameters, roles set at startup
//! and during the session (issue 11, item 5).

use crate::clickhouse::unique_ch_db;
use crate::harness::clickhouse::ChServer;
use crate::harness::proxy::{fresh_db, sessions, statements, Proxy};
use crate::harness::raw;
use clickhouse::Row;
use pgtrail::audit::sink::clickhouse::rows::StatementRowV1;
use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};

#[tokio::test]
async fn repeated_startup_parameter_is_refused_before_upstream() {
    let (pg, db) = fresh_db("identity_repeat");
    let proxy = Proxy::start(pg).await;
    let params = [
        ("user", "victim"),
        ("database", db.as_str()),
        ("user", pg.superuser()),
    ];
    let mut s = raw::open(proxy.addr, &params).await;
    let msgs = raw::read_until(&mut s, b'E').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("08P01"), "{msgs:?}");
    assert!(
        !msgs.iter().any(|(t, _)| *t == b'R'),
        "no authentication exchange: {msgs:?}"
    );
    let records = proxy.stop().await;
    assert!(
        sessions(&records).is_empty(),
        "refused before any session or upstream connection: {records:?}"
    );
}

/// A role of the shared cluster, named after `db` (roles are cluster-wide).
async fn make_role(proxy: &Proxy, pg: &crate::harness::postgres::PgCluster, db: &str) -> String {
    let role = format!("{db}_r");
    let admin = proxy.connect(pg, db).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role}; GRANT ALL ON SCHEMA public TO {role}"
        ))
        .await
        .unwrap();
    role
}

fn by_text<'a>(records: &'a [serde_json::Value], text: &str) -> &'a serde_json::Value {
    statements(records)
        .into_iter()
        .find(|r| r["statement"] == text)
        .unwrap_or_else(|| panic!("no record of {text:?} in {records:#?}"))
}

#[tokio::test]
async fn set_role_changes_effective_role_on_later_records() {
    let (pg, db) = fresh_db("identity_setrole");
    let proxy = Proxy::start(pg).await;
    let role = make_role(&proxy, pg, &db).await;
    let client = proxy.connect(pg, &db).await;
    // Each probe asks PostgreSQL for current_user; its record must agree.
    let mut seen = Vec::new();
    let steps = [
        String::from("probe"),
        format!("SET ROLE {role}"),
        "probe".into(),
        "SET ROLE no_such_role_anywhere".into(),
        "probe".into(),
        "RESET ROLE".into(),
        "probe".into(),
        format!("SET ROLE {role}"),
        "RESET ALL".into(),
        "probe".into(),
        "DISCARD ALL".into(),
        "probe".into(),
        "BEGIN".into(),
        format!("SET LOCAL ROLE {role}"),
        "probe".into(),
        "COMMIT".into(),
        "probe".into(),
        "BEGIN".into(),
        format!("SET ROLE {role}"),
        "probe".into(),
        "ROLLBACK".into(),
        "probe".into(),
        format!("SET SESSION AUTHORIZATION {role}"),
        "probe".into(),
        "RESET SESSION AUTHORIZATION".into(),
        "probe".into(),
        format!("SET ROLE E'{role}'"),
        "probe".into(),
        "SET ROLE NONE".into(),
        "probe".into(),
        format!("/* hidden? */ SET role = $q${role}$q$"),
        "probe".into(),
    ];
    for (i, step) in steps.iter().enumerate() {
        if step == "probe" {
            let sql = format!("SELECT current_user::text AS probe_{i}");
            let rows = client.simple_query(&sql).await.unwrap();
            let user = rows.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(String::from),
                _ => None,
            });
            seen.push((
                sql.clone(),
                user.unwrap_or_else(|| panic!("no row for {sql}")),
            ));
        } else {
            let _ = client.simple_query(step).await;
        }
    }
    drop(client);
    let records = proxy.stop().await;
    let su = pg.superuser();
    assert!(seen.iter().any(|(_, u)| *u == role), "{seen:?}");
    for (sql, current_user) in &seen {
        let r = by_text(&records, sql);
        assert_eq!(r["effective_role"], current_user.as_str(), "{sql}: {r}");
        assert_eq!(r["db_role"], su, "{sql}: db_role stays as logged in");
    }
}

#[tokio::test]
async fn role_set_in_startup_options_is_in_the_session_record() {
    let (pg, db) = fresh_db("identity_options");
    let proxy = Proxy::start(pg).await;
    let role = make_role(&proxy, pg, &db).await;
    let conn = format!("{} options='-c role={role}'", proxy.conn_string(pg, &db));
    let client = crate::harness::proxy::connect(&conn).await;
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), role);
    drop(client);
    let records = proxy.stop().await;
    let connects: Vec<_> = sessions(&records)
        .into_iter()
        .filter(|r| r["event_type"] == "auth_ok" && r["effective_role"] == role.as_str())
        .collect();
    assert_eq!(connects.len(), 1, "{records:#?}");
    assert_eq!(connects[0]["db_role"], pg.superuser());
    let r = by_text(&records, "SELECT current_user::text");
    assert_eq!(r["effective_role"], role.as_str());
}

/// The DDL of schema version 3 (before `effective_role`): today's without
/// that column and without the statements that add it.
fn ddl_before_effective_role(v: ServerVersion, opts: &SchemaOptions) -> Vec<String> {
    schema::statements(v, opts)
        .into_iter()
        .filter(|s| !s.contains("ADD COLUMN"))
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("`effective_role`"))
                .map(|l| l.replace("`effective_role`, ", ""))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn effective_role_is_added_to_tables_of_earlier_versions() {
    let ch = ChServer::shared();
    let version = ServerVersion::parse(&ch.version()).expect("version");
    let opts = SchemaOptions {
        database: unique_ch_db("role_migration"),
        ..SchemaOptions::default()
    };
    for ddl in ddl_before_effective_role(version, &opts) {
        ch.query(&ddl);
    }
    let columns = |table: &str| {
        ch.query(&format!(
            "SELECT name FROM system.columns WHERE database = '{}' AND table = '{table}' FORMAT TSV",
            opts.database
        ))
    };
    assert!(!columns("statements").contains("effective_role"));
    for _ in 0..2 {
        // What the sender does first (no IF NOT EXISTS on 18.16).
        for a in schema::column_additions(version, &opts) {
            if ch.query(&a.needed_query) == "1" {
                ch.query(&a.ddl);
            }
        }
        for ddl in schema::statements(version, &opts) {
            ch.query(&ddl);
        }
    }
    for table in ["statements", "sessions"] {
        let got = columns(table);
        let got: Vec<&str> = got.lines().filter(|c| *c != "event_date").collect();
        assert_eq!(got, schema::column_names(table), "{table}");
    }
    for ddl in schema::view_upgrade(version, &opts) {
        ch.query(&ddl);
    }
    // The build before listed only the version it wrote (3); the others
    // are listed now, each once.
    ch.query(&format!(
        "INSERT INTO `{}`.schema_migrations (version, description) VALUES (3, 'deduplication window for insert tokens')",
        opts.database
    ));
    for _ in 0..2 {
        let applied: Vec<u32> = ch
            .query(&schema::applied_migrations_query(&opts))
            .lines()
            .map(|v| v.parse().unwrap())
            .collect();
        if let Some(insert) = schema::record_migrations(&opts, &applied) {
            ch.query(&insert);
        }
    }
    assert_eq!(
        ch.query(&format!(
            "SELECT version FROM `{}`.schema_migrations ORDER BY version",
            opts.database
        )),
        "1\n2\n3\n4\n5\n6\n7\n8\n9"
    );
    ch.query(&format!(
        "SELECT effective_role, backend_pid FROM `{}`.statement_log",
        opts.database
    ));
    // A row of the earlier layout, inserted under its own column list.
    let cols = StatementRowV1::COLUMN_NAMES.join("`, `");
    ch.query(&format!(
        "INSERT INTO `{}`.statements (`{cols}`) SELECT generateUUIDv4(), 'i', 1, 0, 0, 's', 'u', 'r', 'd', '', 0, '', 'simple', 'SELECT 1', 0, 0, 0, '', '', '', '', '', [], [], [], '', '', 0, 1, '', '', 'I', []",
        opts.database
    ));
    assert_eq!(
        ch.query(&format!(
            "SELECT concat('[', effective_role, ']') FROM `{}`.statements",
            opts.database
        )),
        "[]"
    );
}

#[test]
fn effective_role_migration_passes_ch_modern_check() {
    let opts = SchemaOptions::default();
    let v = ServerVersion::DEFAULT;
    let mut sql = String::new();
    for ddl in ddl_before_effective_role(v, &opts) {
        sql.push_str(&format!("{ddl};\n"));
    }
    sql.push_str(&schema::script(v, &opts));
    for ddl in schema::view_upgrade(v, &opts) {
        sql.push_str(&format!("{ddl};\n"));
    }
    sql.push_str("SELECT effective_role FROM pgtrail.statement_log;\n");
    sql.push_str("SELECT user FROM pgtrail.table_access;\n");
    sql.push_str("SELECT throwIf(count() != 2) FROM system.columns WHERE database = 'pgtrail' AND table IN ('statements', 'sessions') AND name = 'effective_role';\n");
    crate::harness::modern::check(&sql, "the effective_role migration");
}
