//! Every cookbook query over 400,000 records of one instance, on the local
//! ClickHouse 18.16 and on a modern engine (`ch-modern-check`): a query that
//! is quadratic in the records of the range (an array index lookup per
//! element on 18.16) fails here with a memory error or takes minutes.

use std::time::{Duration, Instant};

use crate::cookbook::{cookbook, fill, november_params, quoted};
use crate::harness::clickhouse::ChServer;
use pgtrail::audit::sink::clickhouse::schema::{self, SchemaOptions, ServerVersion};

const STATEMENTS: u64 = 400_000;
const FAILED_LOGINS: u64 = 2_000;
/// seq 1001 and 1002 are missing: the records after them move up by two.
const HOLE: (u64, u64) = (1001, 1002);
/// Generous: the linear queries take well under a second here; a quadratic
/// one fails or takes minutes.
const PER_QUERY: Duration = Duration::from_secs(30);

/// 2026-11-25 03:00:00 UTC in microseconds, plus `number` tenths of a
/// second (400,000 records span about 11 hours of one day).
fn event_time(version: ServerVersion) -> String {
    let micros = "toInt64(1795575600000000 + number * 100000)";
    if version.is_modern() {
        format!("fromUnixTimestamp64Micro({micros}, 'UTC')")
    } else {
        micros.to_string()
    }
}

/// An event id unique per `number`.
const EVENT_ID: &str =
    "toUUID(concat('01890000-0000-7000-8000-', substring(toString(1000000000000 + number), 2, 12)))";

/// The INSERTs of the data set into `db`: statements by three people (one
/// in three reads `cards`, some for an application's end user), then
/// failed logins, all of instance `i1`.
fn data(db: &str, version: ServerVersion) -> Vec<String> {
    let at = event_time(version);
    let seq = format!("toUInt64(number + 1 + if(number + 1 >= {}, 2, 0))", HOLE.0);
    let user = "arrayElement(['alice', 'bob', 'carol'], number % 3 + 1)";
    // One in 1000 for end user mallory (verified every other time), one in
    // 7 for another, the rest for nobody.
    let end_user = "multiIf(number % 1000 = 0, 'mallory', number % 7 = 0, 'dave', ''), \
         if(number % 7 = 0 OR number % 1000 = 0, 'comment', 'none'), toUInt8(number % 2000 = 0), \
         if(number % 7 = 0 AND number % 2 = 1, 'not signed', ''), '', ''";
    let statements = format!(
        "INSERT INTO `{db}`.statements ({}) SELECT {EVENT_ID}, 'i1', {seq}, {at}, 5, \
         concat('s', toString(number % 100)), toUInt32(1000 + number % 100), {user}, 'app', 'app', 'db', '127.0.0.1', 5432, 'psql', \
         'simple', 'SELECT * FROM cards WHERE id = 1', 0, 0, 42, 'select * from cards where id = $1', \
         'select', 'read', 'R', 'READ', if(number % 3 = 0, ['cards'], ['orders']), [], [], \
         'sqlparser', 'SELECT 1', 1, 1, '', '', 'I', toUUID('00000000-0000-0000-0000-000000000000'), [], '', \
         [], [], [], [], [], 0, {end_user} FROM numbers({STATEMENTS})",
        quoted(&schema::column_names("statements"))
    );
    let first = STATEMENTS + 3;
    let sessions = format!(
        "INSERT INTO `{db}`.sessions ({}) SELECT {EVENT_ID}, 'i1', toUInt64({first} + number), {at}, \
         'auth_failed', concat('f', toString(number)), 0, 'mallory', '', '', 'db', '127.0.0.1', 5433, '', 0, \
         'scram-sha-256', 'wrong password', 0, 0, 0, 0, '' FROM numbers({FAILED_LOGINS})",
        quoted(&schema::column_names("sessions"))
    );
    vec![statements, sessions]
}

#[test]
fn cookbook_scales_to_400k_records_on_the_local_server() {
    let ch = ChServer::shared();
    let (db, version) = ch.fresh_schema("cookbook_scale");
    for insert in data(&db, version) {
        ch.query(&insert);
    }
    let params = november_params("mallory", "s7");
    for (id, query) in cookbook() {
        let sql = fill(&query, &db, &params);
        let started = Instant::now();
        let out = ch
            .try_query(&format!("{sql} FORMAT TSV"))
            .unwrap_or_else(|e| panic!("{id} failed over {STATEMENTS} records: {e}"));
        let took = started.elapsed();
        assert!(
            took < PER_QUERY,
            "{id} took {took:?} over {STATEMENTS} records"
        );
        if id == "pci-10.2.6" {
            // instance_id, first_record, last_record, records, first_seq,
            // last_seq, missing, holes
            let row: Vec<&str> = out.trim_end().split('\t').collect();
            let records = (STATEMENTS + FAILED_LOGINS).to_string();
            let holes = format!("[({},{})]", HOLE.0, HOLE.1);
            assert_eq!(
                (row[3], row[6], row[7]),
                (records.as_str(), "2", holes.as_str()),
                "{id}: {out}"
            );
        }
    }
    ch.query(&format!("DROP DATABASE `{db}`"));
}

#[test]
fn cookbook_scales_to_400k_records_on_a_modern_engine() {
    let version = ServerVersion::DEFAULT;
    let mut sql = schema::script(version, &SchemaOptions::default());
    for insert in data("pgtrail", version) {
        sql.push_str(&insert);
        sql.push_str(";\n");
    }
    let params = november_params("mallory", "s7");
    for (id, query) in cookbook() {
        let q = fill(&query, "pgtrail", &params);
        sql.push_str(&format!("{q};\n"));
        if id == "pci-10.2.6" {
            sql.push_str(&format!(
                "SELECT throwIf(missing != 2 OR holes != [({}, {})], '{id}') FROM ({q});\n",
                HOLE.0, HOLE.1
            ));
        }
    }
    crate::harness::modern::check(&sql, "the cookbook over 400,000 records");
}
