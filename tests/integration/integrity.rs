//! Tamper evidence end to end: pgtrail writes a trail (JSON Lines and
//! ClickHouse, a spool, a signing key, a clean restart in the middle),
//! `pgtrail verify` passes it, and then each kind of tampering, done the
//! way someone with write access would, is found and named, in ClickHouse
//! and in the file. The independent Python check (scripts/verify_trail.py)
//! must agree with `pgtrail verify` on every case.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::clickhouse::{unique_ch_db, ChServer};
use crate::harness::proxy::{fresh_db, read_records, Proxy};
use pgtrail::audit::chain::signing::{keygen, SigningKey};
use pgtrail::audit::sink::clickhouse::schema;

struct Trail {
    dir: tempfile::TempDir,
    ch_db: String,
    /// The last seq of the trail (the final checkpoint).
    last_seq: u64,
}

impl Trail {
    fn file(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }
    fn public(&self) -> PathBuf {
        self.dir.path().join("signing.pub")
    }
    fn checkpoints(&self) -> PathBuf {
        self.dir.path().join("spool").join("checkpoints.jsonl")
    }
}

/// Two runs of pgtrail with a clean stop between them, a workload in each.
async fn write_trail(ch: &ChServer) -> Trail {
    let dir = tempfile::tempdir().unwrap();
    keygen(
        &dir.path().join("signing.key"),
        &dir.path().join("signing.pub"),
    )
    .unwrap();
    let (ch_db, _) = ch.fresh_schema("integrity");
    let (pg, db) = fresh_db("integrity");
    let tweak = |c: &mut pgtrail::config::Config| {
        c.audit.file = Some(dir.path().join("audit.jsonl"));
        c.audit.spool_dir = Some(dir.path().join("spool"));
        c.audit.clickhouse_url = Some(ch.http_url());
        c.audit.clickhouse.database = ch_db.clone();
        c.audit.clickhouse.batch_ms = 20;
        c.audit.signing_key_file = Some(dir.path().join("signing.key"));
        c.audit.checkpoint_records = 40;
    };
    for run in 0..2 {
        let proxy = Proxy::start_with(pg, tweak).await;
        let client = proxy.connect(pg, &db).await;
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS cards (id int, number text)")
            .await
            .unwrap();
        for i in 0..60 {
            let id = run * 100 + i;
            client
                .batch_execute(&format!(
                    "BEGIN; INSERT INTO cards VALUES ({id}, '4111'); SELECT count(*) FROM cards; COMMIT"
                ))
                .await
                .unwrap();
        }
        drop(client);
        // The writer may still be behind the client: wait for its 300
        // records (60 transactions of four statements and a transaction
        // record), then one checkpoint per 40 records.
        let value = |metrics: &str, name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let metrics = loop {
            let metrics = pgtrail::admin::metrics_text(&proxy.ctx).unwrap();
            if value(&metrics, "pgtrail_audit_records_written_total") >= 300.0 {
                break metrics;
            }
            assert!(Instant::now() < deadline, "{metrics}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let written = value(&metrics, "pgtrail_audit_records_written_total");
        let checkpoints = value(&metrics, "pgtrail_audit_checkpoints_total");
        assert!(checkpoints >= (written / 41.0).floor(), "{metrics}");
        assert!(
            value(&metrics, "pgtrail_audit_last_checkpoint_seq") > 100.0,
            "{metrics}"
        );
        assert_eq!(
            value(&metrics, "pgtrail_audit_checkpoint_file_failing"),
            0.0
        );
        proxy.stop().await;
    }
    let last_seq = read_records(&dir.path().join("audit.jsonl"))
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .max()
        .unwrap();
    // The spool sends what the last stop left within its grace period; a
    // batch lands table by table, so wait for every record, not the last
    // seq.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ch_rows(ch, &ch_db) < last_seq {
        assert!(
            Instant::now() < deadline,
            "ClickHouse did not get seq {last_seq}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Trail {
        dir,
        ch_db,
        last_seq,
    }
}

fn ch_rows(ch: &ChServer, db: &str) -> u64 {
    schema::table_names()
        .filter_map(|t| {
            ch.try_query(&format!("SELECT count() FROM `{db}`.`{t}`"))
                .ok()
        })
        .filter_map(|s| s.parse::<u64>().ok())
        .sum()
}

/// `pgtrail verify` with `args`: exit code and JSON report.
fn verify(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .arg("verify")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The same check by the Python script, when it is there.
fn verify_py(args: &[&str]) -> Option<(i32, Value)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/verify_trail.py");
    if !script.exists() {
        return None;
    }
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "verify_trail.py printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Some((out.status.code().unwrap_or(-1), report))
}

/// (kind, seq) of every error and warning.
fn findings(report: &Value) -> BTreeSet<(String, u64)> {
    report["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["findings"].as_array().into_iter().flatten())
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or("").to_string(),
                f["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Verifies with both tools; they must agree; returns the findings.
fn check(what: &str, args: &[&str], want_ok: bool) -> BTreeSet<(String, u64)> {
    let (code, report) = verify(args);
    let found = findings(&report);
    assert_eq!(code == 0, want_ok, "{what}: exit {code}, {report:#}");
    if let Some((py_code, py)) = verify_py(args) {
        assert_eq!(
            findings(&py),
            found,
            "{what}: the Python check disagrees: {py:#}"
        );
        assert_eq!(py_code, code, "{what}: exit codes differ");
    }
    found
}

fn has(found: &BTreeSet<(String, u64)>, kind: &str, seq: u64) -> bool {
    found.contains(&(kind.to_string(), seq))
}

/// Seqs of consecutive statement records (two in a row), and the seq of
/// every checkpoint, from the file.
fn landmarks(records: &[Value]) -> (u64, Vec<u64>) {
    let pair = records
        .windows(2)
        .find(|w| {
            w[0]["record"] == "statements"
                && w[1]["record"] == "statements"
                && w[1]["seq"].as_u64() == w[0]["seq"].as_u64().map(|s| s + 1)
                && w[0]["seq"].as_u64() > Some(10)
        })
        .and_then(|w| w[0]["seq"].as_u64())
        .unwrap();
    let cps = records
        .iter()
        .filter(|r| r["record"] == "checkpoints")
        .filter_map(|r| r["seq"].as_u64())
        .collect();
    (pair, cps)
}

#[tokio::test]
async fn tampering_is_found_in_clickhouse_and_in_json_lines() {
    let ch = ChServer::shared();
    let t = write_trail(ch).await;
    let records = read_records(&t.file());
    let (pair, cps) = landmarks(&records);
    assert!(cps.len() >= 6, "checkpoints at {cps:?}");
    let starts: Vec<&Value> = records
        .iter()
        .filter(|r| r["record"] == "lifecycle" && r["event_type"] == "start")
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["clean"], true, "{}", starts[1]);
    let public = t.public().display().to_string();
    let outside = t.checkpoints().display().to_string();

    // The file as written passes, with the outside copy of the checkpoints.
    let file = t.file().display().to_string();
    let jsonl = |f: &str| {
        vec![
            "--jsonl".to_string(),
            f.to_string(),
            "--public-key".into(),
            public.clone(),
            "--checkpoints".into(),
            outside.clone(),
        ]
    };
    let args = |v: &Vec<String>| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{1}")
    };
    let run = |what: &str, v: Vec<String>, ok: bool| {
        let joined = args(&v);
        let a: Vec<&str> = joined.split('\u{1}').collect();
        check(what, &a, ok)
    };
    assert_eq!(run("the file", jsonl(&file), true), BTreeSet::new());

    // And so does ClickHouse.
    let chv = |db: &str| {
        vec![
            "--clickhouse-url".to_string(),
            ch.http_url(),
            "--database".into(),
            db.to_string(),
            "--public-key".into(),
            public.clone(),
            "--checkpoints".into(),
            outside.clone(),
        ]
    };
    assert_eq!(run("ClickHouse", chv(&t.ch_db), true), BTreeSet::new());

    // ClickHouse, tampered with: each case on its own copy of the tables
    // (`filter` picks source rows: in a subquery, as ClickHouse would read
    // `seq` in an outer WHERE as the SELECT's alias).
    let copy = |name: &str, tamper: &dyn Fn(&str, &str) -> Option<String>, filter: &str| {
        let db = unique_ch_db(name);
        ch.query(&format!("CREATE DATABASE `{db}`"));
        for table in schema::table_names() {
            ch.query(&format!(
                "CREATE TABLE `{db}`.`{table}` AS `{}`.`{table}`",
                t.ch_db
            ));
            let cols = schema::column_names(table);
            let exprs: Vec<String> = cols
                .iter()
                .map(|c| tamper(table, c).map_or(format!("`{c}`"), |e| format!("{e} AS `{c}`")))
                .collect();
            ch.query(&format!(
                "INSERT INTO `{db}`.`{table}` ({}) SELECT {} FROM (SELECT * FROM `{}`.`{table}` WHERE {filter})",
                cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                exprs.join(", "),
                t.ch_db
            ));
        }
        db
    };
    let none = |_: &str, _: &str| None;

    let db = copy(
        "alter",
        &|t, c| {
            (t == "statements" && c == "statement")
                .then(|| format!("if(seq = {pair}, 'SELECT 1', `statement`)"))
        },
        "1",
    );
    let found = run("ClickHouse: one field", chv(&db), false);
    assert!(has(&found, "altered", pair), "{found:?}");

    // An end user claimed after the fact (schema version 9's columns, at
    // their defaults in this trail, enter the bytes once one is set).
    let db = copy(
        "enduser",
        &|t, c| {
            (t == "statements" && c == "end_user")
                .then(|| format!("if(seq = {pair}, 'mallory', `end_user`)"))
        },
        "1",
    );
    let found = run("ClickHouse: an end user added", chv(&db), false);
    assert!(has(&found, "altered", pair), "{found:?}");

    let db = copy("delete1", &none, &format!("seq != {pair}"));
    assert!(has(
        &run("ClickHouse: one record deleted", chv(&db), false),
        "deleted",
        pair
    ));

    let db = copy(
        "range",
        &none,
        &format!("NOT (seq BETWEEN {} AND {})", pair, pair + 9),
    );
    assert!(has(
        &run("ClickHouse: a range deleted", chv(&db), false),
        "deleted",
        pair
    ));

    let tail = cps[cps.len() - 2] - 3;
    let db = copy("tail", &none, &format!("seq < {tail}"));
    let found = run("ClickHouse: the tail deleted", chv(&db), false);
    assert!(has(&found, "truncated", tail), "{found:?}");

    let db = copy(
        "swap",
        &|t, c| {
            (t == "statements" && c == "seq").then(|| {
                format!(
                    "multiIf(seq = {pair}, {}, seq = {}, {pair}, seq)",
                    pair + 1,
                    pair + 1
                )
            })
        },
        "1",
    );
    let found = run("ClickHouse: two records swapped", chv(&db), false);
    assert!(has(&found, "reordered", pair), "{found:?}");

    // A plausible record: a copy of a statement with the seq of another
    // record and other text.
    let db = copy("insert", &none, "1");
    let cols = schema::column_names("statements");
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| match *c {
            "seq" => format!("toUInt64({}) AS seq", pair + 1),
            "statement" => "'SELECT number FROM cards' AS `statement`".into(),
            c => format!("`{c}`"),
        })
        .collect();
    ch.query(&format!(
        "INSERT INTO `{db}`.statements ({}) SELECT {} FROM (SELECT * FROM `{}`.statements WHERE seq = {pair})",
        cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
        exprs.join(", "),
        t.ch_db
    ));
    assert!(has(
        &run("ClickHouse: a record inserted", chv(&db), false),
        "inserted",
        pair + 1
    ));

    // Records deleted and a gap record written in their place, with the
    // chain value the deleted records ended at: the chain goes on, but the
    // outside copy has no such gap.
    let db = copy(
        "forgedgap",
        &none,
        &format!("NOT (seq BETWEEN {pair} AND {})", pair + 4),
    );
    let after = records.iter().find(|r| r["seq"] == pair + 4).unwrap();
    let instance = after["instance_id"].as_str().unwrap();
    ch.query(&format!(
        "INSERT INTO `{db}`.gaps (event_id, instance_id, seq, event_time, missing_events, reason, skipped_seqs, chain) \
         SELECT generateUUIDv4(), '{instance}', {pair}, 1796000000000000, 5, 'spool full (fail_open)', 5, '{}'",
        after["chain"].as_str().unwrap()
    ));
    let found = run(
        "ClickHouse: a gap record standing in for deleted records",
        chv(&db),
        false,
    );
    assert!(has(&found, "inserted", pair), "{found:?}");

    // A checkpoint replaced with one signed by another key.
    let other = t.dir.path().join("other.key");
    keygen(&other, &t.dir.path().join("other.pub")).unwrap();
    let victim = cps[2];
    let forged = resigned(&records, victim, &SigningKey::load(&other).unwrap());
    let db = copy("forgedcp", &none, &format!("seq != {victim}"));
    insert_checkpoint(ch, &db, &forged);
    let found = run(
        "ClickHouse: a checkpoint signed by another key",
        chv(&db),
        false,
    );
    assert!(has(&found, "bad_signature", victim), "{found:?}");

    // An old checkpoint replayed in the place of a later one.
    let replay_at = cps[3];
    let db = copy(
        "replay",
        &|t, c| {
            (t == "checkpoints" && c == "seq")
                .then(|| format!("if(seq = {}, toUInt64({replay_at}), seq)", cps[1]))
        },
        &format!("seq != {replay_at}"),
    );
    ch.query(&format!(
        "INSERT INTO `{db}`.checkpoints SELECT * FROM `{}`.checkpoints WHERE seq = {}",
        t.ch_db, cps[1]
    ));
    let found = run("ClickHouse: a checkpoint replayed", chv(&db), false);
    assert!(has(&found, "replayed_checkpoint", replay_at), "{found:?}");

    // The JSON Lines file edited by hand.
    let lines: Vec<String> = std::fs::read_to_string(t.file())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let at = |seq: u64| {
        lines
            .iter()
            .position(|l| serde_json::from_str::<Value>(l).unwrap()["seq"] == seq)
            .unwrap()
    };
    let write = |name: &str, lines: &[String]| {
        let path = t.dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path.display().to_string()
    };
    let mut edited = lines.clone();
    let mut line: Value = serde_json::from_str(&edited[at(pair)]).unwrap();
    line["statement"] = "SELECT 1".into();
    edited[at(pair)] = line.to_string();
    assert!(has(
        &run("file: one field", jsonl(&write("edited", &edited)), false),
        "altered",
        pair
    ));
    let mut cut = lines.clone();
    cut.remove(at(pair));
    assert!(has(
        &run("file: one line deleted", jsonl(&write("cut", &cut)), false),
        "deleted",
        pair
    ));
    let mut swapped = lines.clone();
    swapped.swap(at(pair), at(pair + 1));
    assert!(has(
        &run(
            "file: two lines swapped",
            jsonl(&write("swapped", &swapped)),
            false
        ),
        "reordered",
        pair
    ));
    let short = lines[..at(tail)].to_vec();
    assert!(has(
        &run(
            "file: the tail deleted",
            jsonl(&write("short", &short)),
            false
        ),
        "truncated",
        tail
    ));
    assert_eq!(t.last_seq, lines.len() as u64);
}

/// The checkpoint record of `seq` from the file, signed again by `key`.
fn resigned(records: &[Value], seq: u64, key: &SigningKey) -> Value {
    let mut cp = records.iter().find(|r| r["seq"] == seq).unwrap().clone();
    cp["key_id"] = key.key_id().into();
    cp["signature"] = "".into();
    let record: pgtrail::audit::record::Record = serde_json::from_value(cp.clone()).unwrap();
    let pgtrail::audit::record::Record::Checkpoint(c) = record else {
        panic!("seq {seq} is no checkpoint")
    };
    let message = pgtrail::audit::chain::canonical::checkpoint_message(&c);
    cp["signature"] = key.sign_hex(&message).into();
    cp
}

fn insert_checkpoint(ch: &ChServer, db: &str, cp: &Value) {
    let time =
        pgtrail::audit::record::parse_time_micros(cp["event_time"].as_str().unwrap()).unwrap();
    ch.query(&format!(
        "INSERT INTO `{db}`.checkpoints (event_id, instance_id, seq, event_time, previous_chain, records, key_id, signature, chain) SELECT toUUID('{}'), '{}', {}, {time}, '{}', {}, '{}', '{}', '{}'",
        cp["event_id"].as_str().unwrap(),
        cp["instance_id"].as_str().unwrap(),
        cp["seq"],
        cp["previous_chain"].as_str().unwrap(),
        cp["records"],
        cp["key_id"].as_str().unwrap(),
        cp["signature"].as_str().unwrap(),
        cp["chain"].as_str().unwrap(),
    ));
}

/// The library's check of a ClickHouse trail (no key, no outside copy);
/// when it finds errors, the report's text says what every table holds
/// around each finding.
pub async fn verify_ch(ch: &ChServer, db: &str) -> pgtrail::audit::chain::verify::Report {
    verify_ch_with(ch, db, &Default::default()).await
}

/// `verify_ch` with options (an outside copy of the checkpoints, ...).
pub async fn verify_ch_with(
    ch: &ChServer,
    db: &str,
    options: &pgtrail::audit::chain::verify::VerifyOptions,
) -> pgtrail::audit::chain::verify::Report {
    let source =
        pgtrail::audit::chain::verify::clickhouse::Source::new(&ch.http_url(), db, None, None)
            .unwrap();
    let report = source.verify(options).await.unwrap();
    if !report.ok {
        let mut around = String::new();
        for f in report.instances.iter().flat_map(|i| &i.findings) {
            for t in schema::table_names() {
                around.push_str(&ch.try_query(&format!(
                    "SELECT '{t}', seq, event_time FROM `{db}`.`{t}` WHERE seq BETWEEN {} AND {} ORDER BY seq",
                    f.seq.saturating_sub(2),
                    f.to_seq + 2
                )).unwrap_or_default());
                around.push('\n');
            }
        }
        eprintln!("{}\naround the findings:\n{around}", report.human());
    }
    report
}

/// The ClickHouse trail checks with nothing worse than retried copies,
/// a stop still on its way, and unsigned checkpoints.
pub async fn assert_intact(ch: &ChServer, db: &str) {
    let report = verify_ch(ch, db).await;
    assert!(report.ok, "{}", report.human());
    assert!(
        kinds_of(&report).is_subset(&["duplicate", "no_clean_stop", "unsigned"].into()),
        "{}",
        report.human()
    );
}

/// The kinds of the findings of a report, once each.
pub fn kinds_of(report: &pgtrail::audit::chain::verify::Report) -> BTreeSet<&'static str> {
    report
        .instances
        .iter()
        .flat_map(|i| i.findings.iter().map(|f| f.kind.name()))
        .collect()
}
