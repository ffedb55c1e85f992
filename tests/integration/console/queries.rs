//! Every console query, with every filter set, runs on the local 18.16
//! (against pgtrail's schema) and on a modern engine (`ch-modern-check`);
//! and the console's privilege predicate is the `privilege_changes` view's.

use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};
use pgtrail::console::access::{Access, Action};
use pgtrail::console::filters::{Filters, Params};
use pgtrail::console::store::compliance::View;
use pgtrail::console::store::latest::KeyRow;
use pgtrail::console::store::statements::PRIVILEGE_PREDICATE;
use pgtrail::console::store::{Range, Sql, Store};
use pgtrail::console::users::Role;

use crate::harness::clickhouse::ChServer;
use crate::harness::modern;

const NOW: i64 = 1_765_000_000_000_000;

fn every_filter() -> Filters {
    let p = Params {
        user: Some("ines".into()),
        role: Some("app".into()),
        database: Some("shop".into()),
        client: Some("10.0.0.1".into()),
        app: Some("billing".into()),
        q: Some("orders widget".into()),
        fingerprint: Some("00000000000000ff".into()),
        kind: Some("select".into()),
        class: Some("read".into()),
        table: Some("orders".into()),
        sqlstate: Some("42P01".into()),
        session: Some("0192aaaa-0000-7000-8000-000000000001".into()),
        outcome: Some("failed".into()),
        ..Params::default()
    };
    p.check(NOW, Some(1)).expect("filters")
}

/// Every query the pages send, for `store`'s dialect.
fn all_queries(store: &Store) -> Vec<Sql> {
    let f = every_filter();
    let none = Params::default().check(NOW, Some(1)).expect("filters");
    let r = Range {
        from: NOW - 86_400_000_000,
        to: NOW,
    };
    let keys = [
        KeyRow {
            instance_id: "i".into(),
            seq: 7,
            event_time: NOW - 5,
        },
        KeyRow {
            instance_id: "i".into(),
            seq: 9,
            event_time: NOW,
        },
    ];
    let mut out = vec![
        store.search_sql(&f, 10),
        store.search_sql(&none, 10),
        store.rows_sql(Role::Auditor, &keys),
        store.rows_sql(Role::Dba, &keys),
        store.fingerprints_sql(&f),
        store.fingerprints_sql(&none),
        store.normalized_sql(f.range, &[1, 2, 3]),
        store.statement_sql("i", 7, Some("ines"), Some(NOW), Role::Dba),
        store.statement_sql("i", 7, None, None, Role::Auditor),
        store.session_statements_sql("s", "ines", r, Role::Auditor, 10),
        store.sessions_sql(&f, 10),
        store.session_events_sql("s"),
        store.session_transactions_sql("s", "ines", r),
        store.session_changes_sql("s", r, 10),
        store.statement_changes_sql("s", 7, r),
        store.table_users_sql("public.orders", r),
        store.row_history_sql("orders", Some("id=1"), r, 10),
        store.row_history_sql("orders", None, r, 10),
        store.person_days_sql("ines", r),
        store.person_tables_sql("ines", r),
        store.privileges_received_sql("ines", r, 10),
        store.marks_sql("checkpoints"),
        store.marks_sql("lifecycle"),
        store.access_log_sql(r, Some("ann"), Some("view"), 10),
        store.record_sql(&Access {
            time: NOW,
            console_user: "ann",
            role: "auditor",
            client_addr: "127.0.0.1",
            action: Action::View,
            page: "session",
            subject: "s",
            filters: "user=ines",
            status: 200,
            rows: 3,
        }),
    ];
    out.extend(store.overview_sql(r));
    for v in View::ALL {
        out.push(store.view_sql(v, &f, 10));
        out.push(store.view_sql(v, &none, 10));
    }
    out
}

#[test]
fn every_query_runs_on_the_local_server() {
    let ch = ChServer::shared();
    let (db, version) = ch.fresh_schema("console_q");
    let store = Store::offline(&db, version.is_modern());
    ch.query(&store.access_ddl());
    ch.query(&store.access_ddl());
    let queries = all_queries(&store);
    assert!(queries.len() >= 30);
    for q in &queries {
        if let Err(e) = ch.try_query(&q.rendered()) {
            panic!("{e}\n--- query ---\n{}", q.rendered());
        }
    }
}

#[test]
fn every_query_passes_ch_modern_check() {
    let opts = SchemaOptions::default();
    let store = Store::offline(&opts.database, true);
    let mut sql = schema::script(ServerVersion::DEFAULT, &opts);
    sql.push_str(&format!("{};\n", store.access_ddl()));
    for q in all_queries(&store) {
        sql.push_str(&q.rendered());
        sql.push_str(";\n");
    }
    modern::check(&sql, "the console's queries");
}

#[test]
fn privilege_predicate_is_the_views() {
    let opts = SchemaOptions::default();
    for v in [
        ServerVersion::DEFAULT,
        ServerVersion::parse("18.16").expect("version"),
    ] {
        let ddl = schema::statements(v, &opts).join("\n");
        let inner = PRIVILEGE_PREDICATE
            .trim_start_matches('(')
            .trim_end_matches(')');
        assert!(
            ddl.contains(&format!("WHERE {inner}")),
            "the privilege_changes view changed: update store::statements::PRIVILEGE_PREDICATE"
        );
    }
}
