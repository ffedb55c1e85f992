//! Transactions followed through the tracker, from the frames a server
//! sends.

use super::*;
use crate::audit::event::{TransactionEvent, TransactionOutcome};
use crate::audit::AuditEvent;

/// Runs one simple Query whose results are `results` (a tag, or `Err` with
/// a SQLSTATE), ended by ReadyForQuery `status`; returns every event.
fn query(
    t: &mut Tracker,
    sql: &str,
    results: &[Result<&str, &str>],
    status: u8,
) -> Vec<AuditEvent> {
    let now = Instant::now();
    t.client_frame(b'Q', &cstr(sql), now).unwrap();
    for r in results {
        match r {
            Ok(tag) => t.server_frame(b'C', &cstr(tag), now).unwrap(),
            Err(code) => t.server_frame(b'E', &error(code, None), now).unwrap(),
        };
    }
    t.server_frame(b'Z', &[status], now).unwrap();
    t.take_finished()
}

/// (statement transaction ids, ended transactions) of `events`.
fn split(events: &[AuditEvent]) -> (Vec<uuid::Uuid>, Vec<&TransactionEvent>) {
    let mut ids = Vec::new();
    let mut ended = Vec::new();
    for e in events {
        match e {
            AuditEvent::Statement(s) => ids.push(s.transaction.id),
            AuditEvent::Transaction(t) => ended.push(&**t),
            _ => {}
        }
    }
    (ids, ended)
}

#[test]
fn each_autocommit_statement_is_its_own_committed_transaction() {
    let mut t = tracker();
    let a = query(
        &mut t,
        "INSERT INTO t VALUES (1)",
        &[Ok("INSERT 0 1")],
        b'I',
    );
    let b = query(&mut t, "INSERT INTO t VALUES (1)", &[Err("23505")], b'I');
    let (ids_a, ended_a) = split(&a);
    let (ids_b, ended_b) = split(&b);
    assert_ne!(ids_a[0], ids_b[0]);
    assert_eq!(ended_a[0].outcome, TransactionOutcome::Committed);
    assert_eq!(ended_a[0].transaction_id, ids_a[0]);
    assert_eq!(ended_b[0].outcome, TransactionOutcome::RolledBack);
    // The transaction's event follows its statement's.
    assert!(matches!(a.last(), Some(AuditEvent::Transaction(_))));
}

#[test]
fn an_explicit_block_spans_queries_and_ends_with_its_tag() {
    let mut t = tracker();
    let begin = query(&mut t, "BEGIN", &[Ok("BEGIN")], b'T');
    let insert = query(
        &mut t,
        "INSERT INTO t VALUES (1)",
        &[Ok("INSERT 0 1")],
        b'T',
    );
    let commit = query(&mut t, "COMMIT", &[Ok("COMMIT")], b'I');
    let (b, e1) = split(&begin);
    let (i, e2) = split(&insert);
    let (c, e3) = split(&commit);
    assert!(e1.is_empty() && e2.is_empty());
    assert!(b[0] == i[0] && i[0] == c[0]);
    assert_eq!(e3.len(), 1);
    assert_eq!(e3[0].statements, 3);
    assert_eq!(e3[0].outcome, TransactionOutcome::Committed);
}

#[test]
fn a_commit_of_an_aborted_block_is_a_rollback_and_a_failed_commit_is_failed() {
    let mut t = tracker();
    query(
        &mut t,
        "BEGIN; SELECT 1/0",
        &[Ok("BEGIN"), Err("22012")],
        b'E',
    );
    let events = query(&mut t, "COMMIT", &[Ok("ROLLBACK")], b'I');
    assert_eq!(split(&events).1[0].outcome, TransactionOutcome::RolledBack);
    query(&mut t, "BEGIN", &[Ok("BEGIN")], b'T');
    // A deferred constraint fails at COMMIT: an error, then state I.
    let events = query(&mut t, "COMMIT", &[Err("23503")], b'I');
    let (_, ended) = split(&events);
    assert_eq!(ended[0].outcome, TransactionOutcome::Failed);
}

#[test]
fn a_query_string_with_commit_inside_holds_two_transactions() {
    let mut t = tracker();
    let events = query(
        &mut t,
        "BEGIN; INSERT INTO t VALUES (1); COMMIT; INSERT INTO t VALUES (2)",
        &[
            Ok("BEGIN"),
            Ok("INSERT 0 1"),
            Ok("COMMIT"),
            Ok("INSERT 0 1"),
        ],
        b'I',
    );
    let (ids, ended) = split(&events);
    assert_eq!(ids[0], ids[2]);
    assert_ne!(ids[2], ids[3]);
    let outcomes: Vec<_> = ended.iter().map(|e| (e.statements, e.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (3, TransactionOutcome::Committed),
            (1, TransactionOutcome::Committed)
        ]
    );
}

#[test]
fn rollback_to_savepoint_undoes_what_followed_the_savepoint() {
    let mut t = tracker();
    query(&mut t, "BEGIN", &[Ok("BEGIN")], b'T');
    query(&mut t, "SAVEPOINT \"A b\"", &[Ok("SAVEPOINT")], b'T');
    query(
        &mut t,
        "INSERT INTO t VALUES (1)",
        &[Ok("INSERT 0 1")],
        b'T',
    );
    query(&mut t, "UPDATE t SET a = 2", &[Err("22012")], b'E');
    let back = query(
        &mut t,
        "rollback to savepoint \"A b\"",
        &[Ok("ROLLBACK")],
        b'T',
    );
    assert!(
        split(&back).1.is_empty(),
        "ROLLBACK TO keeps the block open"
    );
    query(
        &mut t,
        "INSERT INTO t VALUES (3)",
        &[Ok("INSERT 0 1")],
        b'T',
    );
    let events = query(&mut t, "COMMIT", &[Ok("COMMIT")], b'I');
    let (_, ended) = split(&events);
    assert_eq!(ended[0].outcome, TransactionOutcome::Committed);
    // Statements 2 and 3 (the INSERT and the failed UPDATE) were undone.
    assert_eq!(ended[0].undone, [(2, 3)]);
}

#[test]
fn prepare_transaction_and_a_lost_connection_have_their_outcomes() {
    let mut t = tracker();
    query(&mut t, "BEGIN", &[Ok("BEGIN")], b'T');
    let events = query(
        &mut t,
        "PREPARE TRANSACTION 'x'",
        &[Ok("PREPARE TRANSACTION")],
        b'I',
    );
    assert_eq!(split(&events).1[0].outcome, TransactionOutcome::Prepared);
    query(&mut t, "BEGIN", &[Ok("BEGIN")], b'T');
    t.end_session(Instant::now());
    let events = t.take_finished();
    assert_eq!(split(&events).1[0].outcome, TransactionOutcome::Unknown);
}

#[test]
fn an_extended_batch_is_one_implicit_transaction_up_to_sync() {
    let mut t = tracker();
    let now = Instant::now();
    for sql in ["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"] {
        t.client_frame(b'P', &parse("", sql), now).unwrap();
        t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
        t.client_frame(b'E', &execute("", 0), now).unwrap();
    }
    t.client_frame(b'S', b"", now).unwrap();
    for tag in [b'1', b'2'] {
        t.server_frame(tag, b"", now).unwrap();
    }
    t.server_frame(b'C', &cstr("INSERT 0 1"), now).unwrap();
    t.server_frame(b'1', b"", now).unwrap();
    t.server_frame(b'2', b"", now).unwrap();
    t.server_frame(b'C', &cstr("INSERT 0 1"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    let events = t.take_finished();
    let (ids, ended) = split(&events);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].statements, 2);
}
