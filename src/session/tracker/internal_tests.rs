//! pgtrail's markers in the tracker's FIFO: when one is sent, and that its
//! answers are swallowed by position, also when the server skips them.

use super::tests::{bind, cstr, error, execute, parse, statements, tracker};
use super::*;
use crate::cdc::marker::Boundary;

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
    let routes = run(
        &mut t,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'D', b"\0\0"),
            (b'A', b"\0\0\0\x01x\0\0"),
            (b'C', &cstr("SELECT 1")),
            (b'3', b""),
            (b'Z', Z_BLOCK),
            (b'C', &cstr("COMMIT")),
            (b'Z', Z_IDLE),
        ],
    );
    use Route::{Client, Swallow};
    assert_eq!(
        routes,
        [Swallow, Swallow, Swallow, Client, Swallow, Swallow, Swallow, Client, Client]
    );
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
fn a_function_call_in_a_block_gets_a_marker_after_it() {
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
    assert_eq!(
        form(&mut t, b'E', &execute("", 0)),
        Some(MarkerForm::ExtendedAfter)
    );
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
