//! Row changes tied to people through pgtrail (issue 14): 16 sessions of 4
//! people write at once, in explicit blocks, autocommit Query strings,
//! autocommit extended-protocol statements, pipelines in a block, savepoints
//! rolled back to, deferred constraints failing at COMMIT, a function and a
//! trigger writing other tables; a session connected directly to
//! PostgreSQL writes too, and one through pgtrail emits a fake marker.
//! Every change then names the person who made it, the statement where the
//! markers say exactly (its seq is that statement's record), undone work
//! has no change, and the direct session's changes are `none`.

use serde_json::Value;
use std::collections::HashMap;

use pgtrail::config::Config;

use crate::cdc_stream::SlotGuard;
use crate::changes::{cdc_setup_full, changes, to_clickhouse, wait_changes};
use crate::cookbook::{cookbook, fill};
use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::proxy::{connect, fresh_db, Proxy};

const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dave"];
const SESSIONS_EACH: u32 = 4;

type Params<'a> = [&'a (dyn tokio_postgres::types::ToSql + Sync); 2];

/// One session's work; `n` makes its row ids its own (n * 100 + k).
async fn session_work(c: &tokio_postgres::Client, who: &str, n: u32) {
    let id = |k: u32| (n * 100 + k) as i32;
    // Explicit block, simple protocol; the trigger writes `log`.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO acct VALUES ({}, '{who}', 10)", id(1)))
        .await
        .unwrap();
    c.batch_execute(&format!(
        "UPDATE acct SET balance = 11 WHERE id = {}",
        id(1)
    ))
    .await
    .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // Autocommit Query string (wrapped), and extended protocol.
    c.batch_execute(&format!("INSERT INTO acct VALUES ({}, '{who}', 20)", id(2)))
        .await
        .unwrap();
    c.execute(
        "INSERT INTO acct VALUES ($1, $2, 30)",
        &[&id(3), &who.to_string()],
    )
    .await
    .unwrap();
    // Savepoint: the row in between is undone.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO acct VALUES ({}, '{who}', 40)", id(4)))
        .await
        .unwrap();
    c.batch_execute("SAVEPOINT s").await.unwrap();
    c.batch_execute(&format!("INSERT INTO acct VALUES ({}, '{who}', 50)", id(5)))
        .await
        .unwrap();
    c.batch_execute("ROLLBACK TO SAVEPOINT s").await.unwrap();
    c.batch_execute(&format!("INSERT INTO acct VALUES ({}, '{who}', 60)", id(6)))
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // A deferred constraint fails at COMMIT; a block rolled back.
    c.batch_execute(&format!("BEGIN; INSERT INTO child VALUES ({})", id(7)))
        .await
        .unwrap();
    let err = c.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("23503"));
    c.batch_execute(&format!(
        "BEGIN; INSERT INTO acct VALUES ({}, '{who}', 80)",
        id(8)
    ))
    .await
    .unwrap();
    c.batch_execute("ROLLBACK").await.unwrap();
    // A function that writes another table, in a block, extended protocol.
    c.batch_execute("BEGIN").await.unwrap();
    c.execute("SELECT bump($1, $2)", &[&id(9), &who.to_string()])
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // A Query string of two writes outside a block (wrapped as one).
    c.batch_execute(&format!(
        "INSERT INTO acct VALUES ({i}, '{who}', 130); UPDATE acct SET balance = 131 WHERE id = {i}",
        i = id(13)
    ))
    .await
    .unwrap();
    // A DELETE in autocommit (its row's old values are the auditor's).
    c.batch_execute(&format!("DELETE FROM acct WHERE id = {}", id(3)))
        .await
        .unwrap();
    // A pipeline in a block: three Executes in flight at once.
    c.batch_execute("BEGIN").await.unwrap();
    let insert = c
        .prepare("INSERT INTO acct VALUES ($1, $2, 100)")
        .await
        .unwrap();
    let (who_s, a, b, d) = (who.to_string(), id(10), id(11), id(12));
    let (pa, pb, pd): (Params, Params, Params) = ([&a, &who_s], [&b, &who_s], [&d, &who_s]);
    let (r1, r2, r3) = tokio::join!(
        c.execute(&insert, &pa),
        c.execute(&insert, &pb),
        c.execute(&insert, &pd),
    );
    r1.unwrap();
    r2.unwrap();
    r3.unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // COPY FROM through the extended protocol, in autocommit.
    use futures_util::SinkExt;
    let sink = c.copy_in("COPY acct FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    let row = format!("{}\t{who}\t140\n", id(14));
    sink.send(bytes::Bytes::from(row)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1);
}

#[tokio::test]
async fn sixteen_sessions_of_four_people_each_change_names_its_person() {
    let (pg, db) = fresh_db("attribution");
    let direct = connect(&pg.conn_string(&db)).await;
    direct
        .batch_execute(
            "CREATE TABLE acct (id int PRIMARY KEY, owner text, balance int);
             CREATE TABLE log (id serial PRIMARY KEY, acct int, owner text);
             CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (p int PRIMARY KEY REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
             CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO log (acct, owner) VALUES (NEW.id, NEW.owner); RETURN NEW; END $$;
             CREATE TRIGGER log_it AFTER INSERT ON acct FOR EACH ROW EXECUTE FUNCTION log_it();
             CREATE FUNCTION bump(i int, who text) RETURNS void LANGUAGE sql AS
               $$ INSERT INTO log (acct, owner) VALUES (i, who) $$;",
        )
        .await
        .unwrap();
    for p in PEOPLE {
        direct
            .batch_execute(&format!(
                "CREATE ROLE {p} LOGIN PASSWORD 'pw-{p}';
                 GRANT ALL ON acct, log, parent, child TO {p};
                 GRANT ALL ON SEQUENCE log_id_seq TO {p}"
            ))
            .await
            .unwrap();
    }
    let slot = format!("attr_{}", std::process::id());
    let _guard = SlotGuard(pg, slot.clone());
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("marker.key");
    let mut base = Config::default();
    base.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
    cdc_setup_full(pg, &db, &slot, &key, &mut base, "public.acct").await;
    let ch = ChServer::shared();
    let ch_db = unique_ch_db("attribution");
    let proxy = Proxy::start_with(pg, |cfg| to_clickhouse(cfg, &base, ch, &ch_db)).await;

    let mut work = Vec::new();
    for (i, who) in PEOPLE.iter().enumerate() {
        for s in 0..SESSIONS_EACH {
            let n = i as u32 * SESSIONS_EACH + s + 1;
            let conn = format!(
                "host=127.0.0.1 port={} user={who} password=pw-{who} dbname={db}",
                proxy.port()
            );
            work.push(tokio::spawn(async move {
                let c = connect(&conn).await;
                session_work(&c, who, n).await;
            }));
        }
    }
    for w in work {
        w.await.unwrap();
    }
    // Outside pgtrail; and a fake marker through it.
    direct
        .batch_execute("INSERT INTO acct VALUES (1, 'direct', 1)")
        .await
        .unwrap();
    let alice = connect(&format!(
        "host=127.0.0.1 port={} user=alice password=pw-alice dbname={db}",
        proxy.port()
    ))
    .await;
    alice.batch_execute("BEGIN").await.unwrap();
    alice
        .batch_execute("SELECT pg_logical_emit_message(true, 'pgtrail', 'bob did it')")
        .await
        .unwrap();
    alice
        .batch_execute("INSERT INTO acct VALUES (2, 'alice', 2)")
        .await
        .unwrap();
    alice.batch_execute("COMMIT").await.unwrap();
    // WAL is flushed by the walwriter: a synchronous commit pushes it out.
    direct
        .batch_execute("SET synchronous_commit = on; CREATE TABLE flush_wal ()")
        .await
        .unwrap();

    // Per session: acct rows 1, 2, 3, 4, 6, 10, 11, 12, 13, 14, the
    // trigger's log row for each, two UPDATEs (1, 13), the function's log
    // row (9) and the DELETE of row 3.
    let sessions = PEOPLE.len() as u32 * SESSIONS_EACH;
    let want = sessions as usize * (10 + 10 + 2 + 1 + 1) + 2 + 2;
    let records = wait_changes(&proxy.audit_path, want).await;
    let by_seq: HashMap<u64, &Value> = records
        .iter()
        .filter(|r| r["record"] == "statements")
        .map(|r| (r["seq"].as_u64().unwrap(), r))
        .collect();
    let all = changes(&records);
    assert_eq!(all.len(), want, "{all:#?}");
    let mut kinds: HashMap<String, usize> = HashMap::new();
    if std::env::var_os("ATTR_DEBUG").is_some() {
        for ch in &all {
            let row = &ch["new"];
            let id_column = if ch["table"] == "log" { "acct" } else { "id" };
            eprintln!(
                "{} {} {} {}",
                ch["table"], row[id_column], ch["attribution"], ch["user"]
            );
        }
    }
    for ch in &all {
        let row = if ch["op"] == "delete" {
            &ch["old"]
        } else {
            &ch["new"]
        };
        let id_column = if ch["table"] == "log" { "acct" } else { "id" };
        let id = row[id_column].as_str().unwrap().parse::<u32>().unwrap();
        let owner = row["owner"].as_str().unwrap();
        let attribution = ch["attribution"].as_str().unwrap();
        *kinds.entry(attribution.into()).or_default() += 1;
        match owner {
            "direct" => {
                assert_eq!(attribution, "none", "{ch}");
                continue;
            }
            "alice" if id == 2 => {
                // The fake marker is flagged; attribution stays the session's.
                assert_eq!(ch["forged_marker"], true, "{ch}");
                assert_eq!(ch["user"], "alice", "{ch}");
                continue;
            }
            _ => {}
        }
        assert_eq!(ch["user"], owner, "a change names its person: {ch}");
        assert_ne!(attribution, "none", "{ch}");
        assert_eq!(ch["forged_marker"], false, "{ch}");
        let k = id % 100;
        assert!(![5, 7, 8].contains(&k), "undone work has no change: {ch}");
        if ch["op"] == "delete" {
            assert_eq!(attribution, "statement", "{ch}");
            continue;
        }
        // Exact where one statement can be the only source.
        let exact = matches!(k, 1..=4 | 6 | 9 | 10 | 14);
        if exact {
            assert_eq!(attribution, "statement", "{ch}");
        }
        if attribution == "statement" {
            let seq = ch["statement_seq"].as_u64().expect("statement_seq");
            let st = by_seq[&seq];
            assert_eq!(st["user"], owner);
            assert_eq!(st["transaction_id"], ch["transaction_id"], "{ch} {st}");
            let text = st["statement"].as_str().unwrap();
            let wrote = text.contains(&id.to_string())
                || text.contains("$1")
                || text.starts_with("COPY acct")
                || (ch["table"] == "log" && text.starts_with("INSERT INTO acct"));
            assert!(wrote, "{text} for {ch}");
        }
    }
    drop(direct);
    drop(alice);
    let _ = proxy.stop().await;
    cookbook_answers(ch, &ch_db, &records, want);
    assert!(
        kinds.get("statement").copied().unwrap_or(0) > all.len() / 2,
        "{kinds:?}"
    );
}

/// The row-change entries of docs/compliance.md, on this workload in
/// ClickHouse: alice's updates with their old values, the row her first
/// session's DELETE removed, the direct writes, and row 101's history.
fn cookbook_answers(ch: &ChServer, db: &str, records: &[Value], want: usize) {
    let count = format!("SELECT count() FROM `{db}`.`changes` FINAL");
    for _ in 0..200 {
        if ch.query(&count).trim() == want.to_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ch.query(&count).trim(), want.to_string());
    let delete_seq = records
        .iter()
        .find(|r| {
            r["record"] == "statements" && r["statement"] == "DELETE FROM acct WHERE id = 103"
        })
        .and_then(|r| r["seq"].as_u64())
        .expect("the DELETE's record");
    let today = ch.query("SELECT toString(today())").trim().to_string();
    let params = [
        ("from", today.clone()),
        ("to", today),
        ("table", "acct".to_string()),
        ("person", "alice".to_string()),
        ("statement_seq", delete_seq.to_string()),
        ("key_column", "id".to_string()),
        ("key_value", "101".to_string()),
    ];
    let queries = cookbook();
    let run = |id: &str| -> Vec<Value> {
        let sql = &queries.iter().find(|(i, _)| i == id).expect(id).1;
        let out = ch.query(&format!("{} FORMAT JSONEachRow", fill(sql, db, &params)));
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // alice's updates: rows 1 and 13 of each of her sessions, old values.
    let updates = run("changes-old-values");
    assert_eq!(updates.len(), 2 * SESSIONS_EACH as usize, "{updates:#?}");
    for u in &updates {
        let old: Vec<String> = serde_json::from_value(u["old.value"].clone()).unwrap();
        assert!(
            old.contains(&"10".into()) || old.contains(&"130".into()),
            "{u}"
        );
        assert_eq!(u["old_complete"], 1);
    }
    let removed = run("changes-by-statement");
    assert_eq!(removed.len(), 1, "{removed:#?}");
    let old: Vec<String> = serde_json::from_value(removed[0]["old.value"].clone()).unwrap();
    assert_eq!(old, ["103", "alice", "30"]);
    let outside = run("changes-outside-pgtrail");
    assert_eq!(outside.len(), 2, "{outside:#?}");
    let history = run("changes-row-history");
    let seen: Vec<(String, String, String)> = history
        .iter()
        .map(|h| {
            let text = h["statement"].as_str().unwrap_or_default();
            (h["op"].to_string(), h["user"].to_string(), text.to_string())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "\"insert\"".to_string(),
                "\"alice\"".to_string(),
                "INSERT INTO acct VALUES (101, 'alice', 10)".to_string()
            ),
            (
                "\"update\"".to_string(),
                "\"alice\"".to_string(),
                "UPDATE acct SET balance = 11 WHERE id = 101".to_string()
            ),
        ]
    );
}
