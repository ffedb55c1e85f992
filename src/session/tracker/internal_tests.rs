//! pgtrail's markers in the tracker's FIFO: when one is sent, and that its
//! answers are swallowed by position, also when the server skips them.

use super::tests::{bind, cstr, error, execute, parse, statements, tracker};
use super::*;
use crate::cdc::marker::Boundary;
use crate::protocol::build;

const Z_IDLE: &[u8] = b"I";

/// An Execute of the unnamed portal as the relay passes it: the marker
/// decision first (which also follows the batch's writes), then the tracker.
fn send_execute(t: &mut Tracker, now: Instant) {
    let e = execute("", 0);
    t.marker_for(b'E', &e);
    t.client_frame(b'E', &e, now).unwrap();
}

fn form(t: &mut Tracker, tag: u8, body: &[u8]) -> Option<MarkerForm> {
    t.marker_for(tag, body).map(|p| p.form)
}
const Z_BLOCK: &[u8] = b"T";

fn run(t: &mut Tracker, frames: &[(u8, &[u8])]) -> Vec<Route> {
    let now = Instant::now();
    frames
        .iter()
        .map(|(tag, body)| t.server_frame(*tag, body, now).unwrap())
        .collect()
}

#[test]
fn simple_commit_of_a_block_gets_a_marker_and_its_answers_are_swallowed() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    assert_eq!(form(&mut t, b'Q', &cstr("SELECT 1")), None);
    let commit = cstr("COMMIT");
    assert_eq!(form(&mut t, b'Q', &commit), Some(MarkerForm::Simple));
    // The session's first marker prepares the marker statement.
    assert!(t.marker_parse_needed());
    t.marker_sent(MarkerForm::Simple, true);
    t.client_frame(b'Q', &commit, now).unwrap();
    assert!(
        t.holds_client(),
        "nothing more of the client's until answered"
    );
    let routes = run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'D', b"\0\0"),
            (b'A', b"\0\0\0\x01x\0\0"),
        ],
    );
    use Route::{Client, Swallow};
    assert_eq!(routes, [Swallow, Swallow, Swallow, Client]);
    assert!(t.holds_client() && !t.take_client_release());
    let routes = run(
        &mut t,
        &[
            (b'C', &cstr("SELECT 1")),
            (b'C', &cstr("COMMIT")),
            (b'Z', Z_IDLE),
        ],
    );
    assert_eq!(routes, [Swallow, Client, Client]);
    assert!(!t.holds_client() && t.take_client_release());
    assert!(!t.take_client_release(), "told once");
    assert_eq!(t.take_upstream(), None);
    assert!(!t.marker_parse_needed(), "prepared once per session");
    let texts: Vec<_> = statements(&mut t).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["BEGIN", "COMMIT"]);
}

#[test]
fn implicit_write_gets_a_marker_before_sync_and_an_error_skips_it() {
    let mut t = tracker();
    let now = Instant::now();
    for round in 0..2 {
        t.client_frame(b'P', &parse("", "INSERT INTO t VALUES (1)"), now)
            .unwrap();
        t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
        send_execute(&mut t, now);
        assert_eq!(form(&mut t, b'S', b""), Some(MarkerForm::Extended));
        let parse = t.marker_parse_needed();
        assert_eq!(parse, round == 0);
        t.marker_sent(MarkerForm::Extended, parse);
        t.client_frame(b'S', b"", now).unwrap();
        let routes = if round == 0 {
            run(
                &mut t,
                &[
                    (b'1', b""),
                    (b'2', b""),
                    (b'C', &cstr("INSERT 0 1")),
                    (b'1', b""),
                    (b'2', b""),
                    (b'D', b"\0\x01\xff\xff\xff\xff"),
                    (b'C', &cstr("SELECT 1")),
                    (b'3', b""),
                    (b'Z', Z_IDLE),
                ],
            )
        } else {
            // The INSERT fails: the server skips the marker up to the Sync.
            run(
                &mut t,
                &[
                    (b'1', b""),
                    (b'2', b""),
                    (b'E', &error("23505", None)),
                    (b'Z', Z_IDLE),
                ],
            )
        };
        let swallowed = routes.iter().filter(|r| **r == Route::Swallow).count();
        assert_eq!(swallowed, if round == 0 { 5 } else { 0 });
        let events = statements(&mut t);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].failure.is_some(), round == 1);
        assert!(t.is_idle());
    }
}

#[test]
fn no_marker_for_reads_copies_or_aborted_blocks_and_a_pipeline_predicted() {
    let mut t = tracker();
    let now = Instant::now();
    // A read before Sync.
    t.client_frame(b'P', &parse("", "SELECT 1"), now).unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    send_execute(&mut t, now);
    assert_eq!(form(&mut t, b'S', b""), None);
    t.client_frame(b'S', b"", now).unwrap();
    // A write queued behind that Sync (a pipeline): its transaction is the
    // one after the read's, named without a statement.
    t.client_frame(b'P', &parse("", "DELETE FROM t"), now)
        .unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    send_execute(&mut t, now);
    let plan = t.marker_for(b'S', b"").unwrap();
    assert_eq!(plan.boundary, Boundary::End(None));
    let second = plan.transaction_id;
    assert_eq!(second.as_u128() & 0xffff_ffff, 2, "the read's is 1");
    t.client_frame(b'S', b"", now).unwrap();
    run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'C', &cstr("SELECT 1")),
            (b'Z', Z_IDLE),
        ],
    );
    run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'C', &cstr("DELETE 0")),
            (b'Z', Z_IDLE),
        ],
    );
    // COPY FROM STDIN: the server would be in COPY mode.
    t.client_frame(b'P', &parse("", "COPY t FROM STDIN"), now)
        .unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    send_execute(&mut t, now);
    assert_eq!(form(&mut t, b'S', b""), None);
    t.client_frame(b'S', b"", now).unwrap();
    run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'G', b"\0\0\0"),
            (b'E', &error("57014", None)),
            (b'Z', Z_IDLE),
        ],
    );
    // An aborted block: its COMMIT answers ROLLBACK; a marker would fail.
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', b"E")]);
    assert_eq!(form(&mut t, b'Q', &cstr("COMMIT")), None);
}

#[test]
fn a_wrapped_write_shows_its_own_answers_once_the_commit_is_done() {
    use Route::{Client, Swallow};
    let now = Instant::now();
    let insert = cstr("INSERT INTO t VALUES (1)");
    for commit_fails in [false, true] {
        let mut t = tracker();
        assert_eq!(form(&mut t, b'Q', &insert), Some(MarkerForm::Wrapped));
        t.marker_sent(MarkerForm::Wrapped, false);
        t.client_frame(b'Q', &insert, now).unwrap();
        let done: (u8, Vec<u8>) = match commit_fails {
            false => (b'C', cstr("COMMIT")),
            true => (b'E', error("23503", None)),
        };
        let routes = run(
            &mut t,
            &[
                (b'C', &cstr("BEGIN")),
                (b'Z', Z_BLOCK),
                (b'N', b"SNOTICE\0Mfrom a trigger\0\0"),
                (b'C', &cstr("INSERT 0 1")),
                (b'Z', Z_BLOCK),
                (b'T', b"\0\0"),
                (b'D', b"\0\0"),
                (b'C', &cstr("SELECT 1")),
                (b'Z', Z_BLOCK),
                (done.0, &done.1),
                (b'Z', Z_IDLE),
            ],
        );
        let held = frame_of(b'C', &cstr("INSERT 0 1"));
        let last = match commit_fails {
            false => Route::Replace(held),
            true => Client,
        };
        let want = [
            Swallow, Swallow, Client, Swallow, Swallow, Swallow, Swallow, Swallow, Swallow, last,
            Client,
        ];
        assert_eq!(routes, want);
        let events = statements(&mut t);
        assert_eq!(events.len(), 1);
        let s = &events[0];
        assert_eq!(s.failure.is_some(), commit_fails);
        assert_eq!(s.txn_status, TxnStatus::Idle);
        assert!(t.is_idle());
    }
    // Not wrapped: a VACUUM beside a write, a read, a COPY TO, a VACUUM.
    for text in [
        "INSERT INTO t VALUES (1); VACUUM t",
        "COPY t TO STDOUT",
        "BEGIN; INSERT INTO t VALUES (1)",
        "SELECT 1",
        "VACUUM t",
    ] {
        assert_eq!(form(&mut tracker(), b'Q', &cstr(text)), None, "{text}");
    }
}

fn frame_of(tag: u8, body: &[u8]) -> bytes::Bytes {
    let mut out = vec![tag];
    out.extend((body.len() as u32 + 4).to_be_bytes());
    out.extend(body);
    out.into()
}

#[test]
fn a_select_of_a_function_writes_and_the_second_writer_gets_a_marker_before_it() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    let p = parse("s0", "SELECT bump($1, $2)");
    assert_eq!(form(&mut t, b'P', &p), None);
    t.client_frame(b'P', &p, now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    run(&mut t, &[(b'1', b""), (b'Z', Z_BLOCK)]);
    let b = bind("", "s0", &["1", "x"]);
    assert_eq!(form(&mut t, b'B', &b), None);
    t.client_frame(b'B', &b, now).unwrap();
    assert_eq!(form(&mut t, b'E', &execute("", 0)), None, "the first");
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'B', &b, now).unwrap();
    let plan = t.marker_for(b'E', &execute("", 0)).expect("a marker");
    assert_eq!(plan.form, MarkerForm::Extended);
    assert_eq!(
        plan.boundary,
        Boundary::Before {
            done: Some(1),
            next: Some(2)
        }
    );
}

#[test]
fn a_marker_refused_before_the_clients_execute_is_the_clients_error() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    let send = |t: &mut Tracker, q: &str| {
        t.client_frame(b'P', &parse("", q), now).unwrap();
        t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
        let e = execute("", 0);
        let plan = t.marker_for(b'E', &e);
        if let Some(plan) = plan {
            let parse = t.marker_parse_needed();
            t.marker_sent(plan.form, parse);
        }
        t.client_frame(b'E', &e, now).unwrap();
        t.client_frame(b'S', b"", now).unwrap();
        plan.is_some()
    };
    use Route::{Client, Swallow};
    assert!(!send(&mut t, "UPDATE a SET x = 1"));
    run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'C', &cstr("UPDATE 1")),
            (b'Z', Z_BLOCK),
        ],
    );
    assert!(send(&mut t, "UPDATE b SET x = 1"));
    let routes = run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            // pgtrail's Parse is answered; its Bind fails: the server
            // skips the rest, the client's Execute included, to the Sync.
            (b'1', b""),
            (b'E', &error("57014", None)),
            (b'Z', b"E"),
        ],
    );
    assert_eq!(routes, [Client, Client, Swallow, Client, Client]);
    let events = statements(&mut t);
    let failed: Vec<_> = events.iter().map(|s| s.failure.is_some()).collect();
    assert_eq!(failed, [false, false, true], "BEGIN, the first, the second");
    assert!(t.expected.is_empty(), "{:?}", t.expected);
}

#[test]
fn a_marker_refused_before_a_query_is_its_error_and_pgtrails_sync_its_end() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    assert_eq!(
        query_in_block(&mut t, "UPDATE a SET x = 1", "UPDATE 1"),
        None
    );
    let update = cstr("UPDATE b SET x = 1");
    let plan = t
        .marker_for(b'Q', &update)
        .expect("a marker before the second");
    let parse = t.marker_parse_needed();
    t.marker_sent(plan.form, parse);
    t.client_frame(b'Q', &update, now).unwrap();
    // The marker's Bind is refused (a cancel landed on it): the server
    // skips the client's Query, waiting for a Sync that only pgtrail can
    // send; its ReadyForQuery ends the client's Query.
    assert!(!t.ready_follows_an_error(), "pgtrail's Sync brings it");
    let routes = run(&mut t, &[(b'1', b""), (b'E', &error("57014", None))]);
    use Route::{Client, Swallow};
    assert_eq!(routes, [Swallow, Client]);
    assert_eq!(t.take_upstream().as_deref(), Some(&build::sync()[..]));
    assert!(!t.holds_client() && t.take_client_release());
    assert_eq!(run(&mut t, &[(b'Z', b"E")]), [Client]);
    let events = statements(&mut t);
    let failed: Vec<_> = events.iter().map(|s| s.failure.is_some()).collect();
    assert_eq!(failed, [false, false, true], "BEGIN, the first, the second");
    assert!(t.expected.is_empty(), "{:?}", t.expected);
}

#[test]
fn a_wrapped_query_string_releases_each_result_but_the_last_at_once() {
    use Route::{Client, Swallow};
    let now = Instant::now();
    let text = cstr("INSERT INTO t VALUES (1); SELECT 2; UPDATE t SET a = 3");
    let mut t = tracker();
    let plan = t.marker_for(b'Q', &text).unwrap();
    assert_eq!(plan.form, MarkerForm::Wrapped);
    // Two statements may write: the end marker names neither.
    assert_eq!(plan.boundary, Boundary::End(None));
    t.marker_sent(MarkerForm::Wrapped, false);
    t.client_frame(b'Q', &text, now).unwrap();
    let routes = run(
        &mut t,
        &[
            (b'C', &cstr("BEGIN")),
            (b'Z', Z_BLOCK),
            (b'C', &cstr("INSERT 0 1")),
            (b'T', b"\0\0"),
            (b'D', b"\0\0"),
            (b'C', &cstr("SELECT 1")),
            (b'C', &cstr("UPDATE 1")),
            (b'Z', Z_BLOCK),
            (b'Z', Z_BLOCK),
            (b'C', &cstr("COMMIT")),
            (b'Z', Z_IDLE),
        ],
    );
    let insert_then_columns =
        [frame_of(b'C', &cstr("INSERT 0 1")), frame_of(b'T', b"\0\0")].concat();
    let want = [
        Swallow,
        Swallow,
        Swallow,
        // The next statement's rows go after the result held before them.
        Route::Replace(insert_then_columns.into()),
        Client,
        Swallow,
        Route::Replace(frame_of(b'C', &cstr("SELECT 1"))),
        Swallow,
        Swallow,
        Route::Replace(frame_of(b'C', &cstr("UPDATE 1"))),
        Client,
    ];
    assert_eq!(routes, want);
    let texts: Vec<_> = statements(&mut t)
        .into_iter()
        .map(|s| s.statement_index)
        .collect();
    assert_eq!(texts, [0, 1, 2]);
}

#[test]
fn transaction_attribution_marks_only_the_end() {
    let mut t = tracker().transaction_markers_only();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    let insert = cstr("INSERT INTO t VALUES (1)");
    assert_eq!(form(&mut t, b'Q', &insert), None);
    t.client_frame(b'Q', &insert, now).unwrap();
    run(&mut t, &[(b'C', &cstr("INSERT 0 1")), (b'Z', Z_BLOCK)]);
    // The one statement that may write is named: index 1, after BEGIN.
    let plan = t.marker_for(b'Q', &cstr("COMMIT")).unwrap();
    assert_eq!(plan.form, MarkerForm::Simple);
    assert_eq!(plan.boundary, Boundary::End(Some(1)));
}

#[test]
fn a_wrapped_copy_ends_its_block_after_copy_done_or_from_the_server_side() {
    use Route::{Client, Swallow};
    let now = Instant::now();
    for started in [true, false] {
        let mut t = tracker();
        let copy = cstr("COPY t FROM STDIN");
        assert_eq!(form(&mut t, b'Q', &copy), Some(MarkerForm::WrappedCopy));
        t.client_frame(b'Q', &copy, now).unwrap();
        t.marker_sent(MarkerForm::WrappedCopy, false);
        t.set_copy_end(bytes::Bytes::from_static(b"end"));
        run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
        if started {
            assert_eq!(run(&mut t, &[(b'G', b"\0\0\0")]), [Client]);
            assert_eq!(t.copy_end_after(b'd'), None, "not after CopyData");
            assert_eq!(t.copy_end_after(b'c').as_deref(), Some(&b"end"[..]));
            let routes = run(&mut t, &[(b'C', &cstr("COPY 1")), (b'Z', Z_BLOCK)]);
            assert_eq!(routes, [Swallow, Swallow]);
            assert_eq!(t.take_upstream(), None, "already sent after CopyDone");
        } else {
            let routes = run(&mut t, &[(b'E', &error("42P01", None)), (b'Z', b"E")]);
            assert_eq!(routes, [Swallow, Swallow]);
            assert_eq!(t.take_upstream().as_deref(), Some(&b"end"[..]));
        }
        run(&mut t, &[(b'E', &error("25P02", None)), (b'Z', b"E")]);
        let done: (u8, Vec<u8>) = match started {
            true => (b'C', cstr("COMMIT")),
            false => (b'C', cstr("ROLLBACK")),
        };
        let routes = run(&mut t, &[(done.0, &done.1), (b'Z', Z_IDLE)]);
        assert!(matches!(routes[0], Route::Replace(_)), "{routes:?}");
        assert_eq!(routes[1], Client);
        let events = statements(&mut t);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].failure.is_some(), !started);
        assert!(t.is_idle());
    }
}

#[test]
fn the_marker_statement_is_prepared_again_after_discard_all_or_a_skipped_parse() {
    let now = Instant::now();
    let mut t = tracker();
    assert!(t.marker_parse_needed());
    assert!(!t.marker_parse_needed());
    t.client_frame(b'Q', &cstr("DISCARD ALL"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("DISCARD ALL")), (b'Z', Z_IDLE)]);
    assert!(t.marker_parse_needed(), "DISCARD ALL dropped it");
    // An error before pgtrail's Parse in a pipeline: the server skips it.
    let mut t = tracker();
    t.client_frame(b'P', &parse("", "INSERT INTO t VALUES (1)"), now)
        .unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    send_execute(&mut t, now);
    assert_eq!(form(&mut t, b'S', b""), Some(MarkerForm::Extended));
    assert!(t.marker_parse_needed());
    t.marker_sent(MarkerForm::Extended, true);
    t.client_frame(b'S', b"", now).unwrap();
    run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'E', &error("23505", None)),
            (b'Z', Z_IDLE),
        ],
    );
    assert!(t.marker_parse_needed(), "the skipped Parse made nothing");
}

/// COPY FROM through the extended protocol in autocommit, as tokio-postgres
/// sends it: Bind, Execute, Sync (ignored in COPY mode), the data,
/// CopyDone, Sync. The marker goes after the CopyDone, its answers between
/// the COPY's CommandComplete and the ReadyForQuery of the last Sync.
#[test]
fn extended_copy_from_in_autocommit_gets_a_marker_after_copy_done() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'P', &parse("", "COPY t FROM STDIN"), now)
        .unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    send_execute(&mut t, now);
    // The Sync sent into COPY mode: no marker (the server would not leave it).
    assert_eq!(form(&mut t, b'S', b""), None);
    t.client_frame(b'S', b"", now).unwrap();
    let routes = run(&mut t, &[(b'1', b""), (b'2', b""), (b'G', b"\0\0\0")]);
    use Route::{Client, Swallow};
    assert_eq!(routes, [Client, Client, Client]);
    assert_eq!(form(&mut t, b'd', b"row\n"), None);
    t.client_frame(b'd', b"row\n", now).unwrap();
    let plan = t.marker_for(b'c', b"").expect("a marker after CopyDone");
    assert_eq!(plan.form, MarkerForm::ExtendedAfter);
    assert_eq!(plan.boundary, Boundary::End(Some(0)));
    t.client_frame(b'c', b"", now).unwrap();
    let parse = t.marker_parse_needed();
    t.marker_sent(plan.form, parse);
    assert_eq!(form(&mut t, b'S', b""), None, "one marker per COPY");
    t.client_frame(b'S', b"", now).unwrap();
    let routes = run(
        &mut t,
        &[
            (b'C', &cstr("COPY 1")),
            (b'1', b""),
            (b'2', b""),
            (b'D', b"\0\x01\xff\xff\xff\xff"),
            (b'C', &cstr("SELECT 1")),
            (b'3', b""),
            (b'Z', Z_IDLE),
        ],
    );
    assert_eq!(
        routes,
        [Client, Swallow, Swallow, Swallow, Swallow, Swallow, Client]
    );
    let texts: Vec<_> = statements(&mut t).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["COPY t FROM STDIN"]);
}

/// Sends `q` as a Query with its marker, if any, as the relay does; the
/// server answers the marker (if sent) and then `q` with `tag`.
fn query_in_block(t: &mut Tracker, q: &str, tag: &str) -> Option<Boundary> {
    let now = Instant::now();
    let plan = t.marker_for(b'Q', &cstr(q));
    let mut answers: Vec<(u8, Vec<u8>)> = Vec::new();
    if let Some(p) = plan {
        assert_eq!(p.form, MarkerForm::Simple, "{q}: right before it");
        let parse = t.marker_parse_needed();
        t.marker_sent(p.form, parse);
        if parse {
            answers.push((b'1', vec![]));
        }
        answers.extend([
            (b'2', vec![]),
            (b'D', b"\0\x01\xff\xff\xff\xff".to_vec()),
            (b'C', cstr("SELECT 1")),
        ]);
    }
    t.client_frame(b'Q', &cstr(q), now).unwrap();
    answers.push((b'C', cstr(tag)));
    let end = tag == "COMMIT";
    answers.push((b'Z', if end { Z_IDLE } else { Z_BLOCK }.to_vec()));
    let frames: Vec<(u8, &[u8])> = answers.iter().map(|(t, b)| (*t, b.as_slice())).collect();
    let routes = run(t, &frames);
    let swallowed = routes.iter().filter(|r| **r == Route::Swallow).count();
    assert_eq!(
        swallowed,
        frames.len() - 2,
        "{q}: only its own answers pass"
    );
    plan.map(|p| p.boundary)
}

fn tail_of_ended(t: &mut Tracker) -> Option<u32> {
    let ended: Vec<_> = t
        .take_finished()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Transaction(txn) => Some(txn.tail_statement),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    ended[0]
}

#[test]
fn a_pgbench_write_block_costs_one_marker_before_its_second_writer() {
    let mut t = tracker();
    assert_eq!(query_in_block(&mut t, "BEGIN", "BEGIN"), None);
    let update = "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 7";
    assert_eq!(query_in_block(&mut t, update, "UPDATE 1"), None);
    let select = "SELECT abalance FROM pgbench_accounts WHERE aid = 7";
    assert_eq!(query_in_block(&mut t, select, "SELECT 1"), None);
    let insert = "INSERT INTO pgbench_history VALUES (1)";
    assert_eq!(
        query_in_block(&mut t, insert, "INSERT 0 1"),
        Some(Boundary::Before {
            done: Some(1),
            next: Some(3)
        })
    );
    assert_eq!(query_in_block(&mut t, "END", "COMMIT"), None);
    assert_eq!(
        tail_of_ended(&mut t),
        Some(3),
        "nothing else may have written"
    );
}

#[test]
fn a_claim_breaks_when_another_write_goes_without_a_marker() {
    let mut t = tracker();
    query_in_block(&mut t, "BEGIN", "BEGIN");
    query_in_block(&mut t, "UPDATE a SET x = 1", "UPDATE 1");
    let marked = query_in_block(&mut t, "UPDATE b SET x = 1", "UPDATE 1");
    assert!(matches!(
        marked,
        Some(Boundary::Before { next: Some(2), .. })
    ));
    // A fast-path function call may write: no index, no marker.
    t.marker_for(b'F', b"");
    assert_eq!(query_in_block(&mut t, "END", "COMMIT"), None);
    assert_eq!(tail_of_ended(&mut t), None);
    // A block whose only statements read still gets its end marker (a
    // read may write through a function); no claim.
    query_in_block(&mut t, "BEGIN", "BEGIN");
    query_in_block(&mut t, "SELECT 1", "SELECT 1");
    assert_eq!(
        query_in_block(&mut t, "COMMIT", "COMMIT"),
        Some(Boundary::End(None))
    );
    assert_eq!(tail_of_ended(&mut t), None);
}

#[test]
fn a_commit_behind_a_drivers_close_and_sync_still_gets_its_marker() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    let p = parse("s0", "SELECT bump($1, $2)");
    t.client_frame(b'P', &p, now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    run(&mut t, &[(b'1', b""), (b'Z', Z_BLOCK)]);
    t.client_frame(b'B', &bind("", "s0", &["1", "x"]), now)
        .unwrap();
    assert_eq!(
        form(&mut t, b'E', &execute("", 0)),
        None,
        "the first writer"
    );
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    run(
        &mut t,
        &[
            (b'2', b""),
            (b'D', b"\0\0"),
            (b'C', &cstr("SELECT 1")),
            (b'Z', Z_BLOCK),
        ],
    );
    // tokio-postgres closes the dropped statement in the background.
    let mut close = vec![b'S'];
    close.extend(b"s0\0");
    t.client_frame(b'C', &close, now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    let plan = t
        .marker_for(b'Q', &cstr("COMMIT"))
        .map(|p| (p.form, p.boundary));
    assert_eq!(
        plan,
        Some((MarkerForm::Simple, Boundary::End(Some(1)))),
        "names the one writer"
    );
}

#[test]
fn an_executed_savepoint_after_a_write_gets_a_marker_before_it() {
    // pgjdbc's autosave: SAVEPOINT before each statement, in the batch.
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'Q', &cstr("BEGIN"), now).unwrap();
    run(&mut t, &[(b'C', &cstr("BEGIN")), (b'Z', Z_BLOCK)]);
    let execute_text = |t: &mut Tracker, q: &str| {
        t.client_frame(b'P', &parse("", q), now).unwrap();
        t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
        let plan = t.marker_for(b'E', &execute("", 0));
        if let Some(p) = plan {
            let parse = t.marker_parse_needed();
            t.marker_sent(p.form, parse);
        }
        t.client_frame(b'E', &execute("", 0), now).unwrap();
        plan.map(|p| (p.form, p.boundary))
    };
    assert_eq!(execute_text(&mut t, "SAVEPOINT a"), None, "nothing pending");
    assert_eq!(execute_text(&mut t, "INSERT INTO t VALUES (1)"), None);
    assert_eq!(
        execute_text(&mut t, "SAVEPOINT a"),
        Some((
            MarkerForm::Extended,
            Boundary::Before {
                done: Some(2),
                next: None
            }
        ))
    );
    assert_eq!(
        execute_text(&mut t, "INSERT INTO t VALUES (2)"),
        None,
        "the first write since the marker"
    );
    assert_eq!(t.writes.end(), Some(Boundary::End(Some(4))));
}
