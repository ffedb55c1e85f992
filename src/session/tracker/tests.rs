use super::*;
use crate::audit::{Protocol, StatementEvent};
use std::net::{IpAddr, Ipv4Addr};

fn session() -> Arc<SessionInfo> {
    Arc::new(SessionInfo {
        session_id: "s".into(),
        backend_pid: 0,
        user: "alice".into(),
        db_role: "app".into(),
        database: "db".into(),
        client_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_port: 1,
        application_name: "test".into(),
        tls: false,
        auth_method: "scram-sha-256".into(),
        startup_identity: Default::default(),
    })
}

/// The statement events finished so far (transaction events dropped).
pub(super) fn statements(t: &mut Tracker) -> Vec<StatementEvent> {
    t.take_finished()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Statement(s) => Some(*s),
            _ => None,
        })
        .collect()
}

pub(super) fn tracker() -> Tracker {
    Tracker::new(session(), SessionClock::now(), true)
}

pub(super) fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

pub(super) fn error(code: &str, position: Option<u32>) -> Vec<u8> {
    let mut b = b"SERROR\0VERROR\0".to_vec();
    b.extend(b"C");
    b.extend(cstr(code));
    b.extend(cstr("Mboom"));
    if let Some(p) = position {
        b.extend(b"P");
        b.extend(cstr(&p.to_string()));
    }
    b.push(0);
    b
}

pub(super) fn parse(name: &str, q: &str) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(q));
    b.extend(0i16.to_be_bytes());
    b
}

pub(super) fn bind(portal: &str, stmt: &str, params: &[&str]) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend(0i16.to_be_bytes());
    b.extend((params.len() as i16).to_be_bytes());
    for p in params {
        b.extend((p.len() as i32).to_be_bytes());
        b.extend(p.as_bytes());
    }
    b.extend(0i16.to_be_bytes());
    b
}

pub(super) fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(max_rows.to_be_bytes());
    b
}

#[test]
fn multi_statement_query_gives_one_event_per_statement() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(
        b'Q',
        &cstr("SELECT 1; INSERT INTO t VALUES (1); SELEC"),
        now,
    )
    .unwrap();
    t.server_frame(b'D', b"", now).unwrap();
    t.server_frame(b'C', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'C', &cstr("INSERT 0 1"), now).unwrap();
    t.server_frame(b'E', &error("42601", None), now).unwrap();
    t.server_frame(b'Z', b"T", now).unwrap();
    let ev = statements(&mut t);
    assert_eq!(ev.len(), 3);
    assert_eq!((ev[0].statement_index, ev[0].rows), (0, Some(1)));
    assert_eq!(
        (ev[1].statement_index, ev[1].command_tag.as_deref()),
        (1, Some("INSERT 0 1"))
    );
    assert_eq!(ev[2].statement_index, 2);
    assert_eq!(
        ev[2].failure.as_ref().map(|f| f.sqlstate.as_str()),
        Some("42601")
    );
    assert!(ev
        .iter()
        .all(|e| e.txn_status == TxnStatus::InBlock && e.protocol == Protocol::Simple));
    assert_eq!(t.statements(), 3);
}

#[test]
fn pipeline_error_skips_to_sync() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'P', &parse("", "SELECT $1"), now).unwrap();
    t.client_frame(b'B', &bind("", "", &["7"]), now).unwrap();
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.client_frame(b'P', &parse("", "SELECT 1/0"), now).unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'P', &parse("", "SELECT 2"), now).unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    for (tag, body) in [
        (b'1', vec![]),
        (b'2', vec![]),
        (b'D', vec![]),
        (b'C', cstr("SELECT 1")),
        (b'Z', b"I".to_vec()),
    ] {
        t.server_frame(tag, &body, now).unwrap();
    }
    for (tag, body) in [
        (b'1', vec![]),
        (b'2', vec![]),
        (b'E', error("22012", None)),
        (b'Z', b"I".to_vec()),
    ] {
        t.server_frame(tag, &body, now).unwrap();
    }
    let ev = statements(&mut t);
    assert_eq!(ev.len(), 2, "the skipped Execute is not an event");
    assert_eq!(&ev[0].text[..], b"SELECT $1");
    let params = ev[0].params.as_ref().unwrap();
    assert_eq!(params[0].value.as_deref(), Some(&b"7"[..]));
    assert_eq!(&ev[1].text[..], b"SELECT 1/0");
    assert_eq!(ev[1].failure.as_ref().unwrap().sqlstate, "22012");
    assert!(t.expected.is_empty());
}

#[test]
fn failed_parse_keeps_the_existing_statement() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'P', &parse("s1", "SELECT 1"), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.server_frame(b'1', b"", now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    t.client_frame(b'P', &parse("s1", "SELECT 2"), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.server_frame(b'E', &error("42P05", None), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    assert_eq!(
        t.prepared.get(&b"s1"[..]).map(|b| &b[..]),
        Some(&b"SELECT 1"[..])
    );
    let ev = statements(&mut t);
    assert_eq!(ev.len(), 1);
    assert_eq!(&ev[0].text[..], b"SELECT 2");
}

#[test]
fn portal_suspended_counts_rows() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'P', &parse("q", "SELECT * FROM t"), now)
        .unwrap();
    t.client_frame(b'B', &bind("p", "q", &[]), now).unwrap();
    t.client_frame(b'E', &execute("p", 2), now).unwrap();
    t.client_frame(b'E', &execute("p", 2), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    for (tag, body) in [
        (b'1', vec![]),
        (b'2', vec![]),
        (b'D', vec![]),
        (b'D', vec![]),
        (b's', vec![]),
        (b'D', vec![]),
        (b'C', cstr("SELECT 1")),
        (b'Z', b"T".to_vec()),
    ] {
        t.server_frame(tag, &body, now).unwrap();
    }
    let ev = statements(&mut t);
    assert_eq!(ev.len(), 2);
    assert_eq!((ev[0].rows, ev[0].command_tag.as_deref()), (Some(2), None));
    assert_eq!(ev[1].rows, Some(1));
}

#[test]
fn function_call_and_fatal() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'F', &1234i32.to_be_bytes(), now).unwrap();
    t.server_frame(b'V', b"", now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    let ev = statements(&mut t);
    assert_eq!(ev[0].protocol, Protocol::FunctionCall);
    assert_eq!(t.server_fatal(), None);
    let mut fatal = b"SFATAL\0VFATAL\0C57P01\0Mbye\0".to_vec();
    fatal.push(0);
    t.server_frame(b'E', &fatal, now).unwrap();
    assert_eq!(t.server_fatal(), Some("FATAL 57P01: bye"));
    assert_eq!(
        t.client_frame(b'X', b"", now).unwrap(),
        ClientFrame::Terminate
    );
}

#[test]
fn application_name_follows_parameter_status() {
    let mut t = tracker();
    let now = Instant::now();
    let mut body = cstr("application_name");
    body.extend(cstr("batch"));
    t.server_frame(b'S', &body, now).unwrap();
    t.client_frame(b'Q', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'C', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    assert_eq!(&*statements(&mut t)[0].application_name, "batch");
}

#[test]
fn malformed_client_frames_are_errors() {
    let mut t = tracker();
    let now = Instant::now();
    assert!(t.client_frame(b'Q', b"no terminator", now).is_err());
    assert!(t.client_frame(b'E', b"p\0\x01", now).is_err());
    assert!(t.client_frame(b'B', b"p\0", now).is_err());
}

#[test]
fn sync_sent_into_copy_in_is_ignored_like_the_server_does() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'B', &bind("", "s0", &[]), now).unwrap();
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.server_frame(b'2', b"", now).unwrap();
    t.server_frame(b'G', b"", now).unwrap();
    t.client_frame(b'd', b"1\n", now).unwrap();
    t.client_frame(b'c', b"", now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.client_frame(b'C', b"Ss0\0", now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.server_frame(b'C', &cstr("COPY 1"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    t.server_frame(b'3', b"", now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    assert_eq!(statements(&mut t).len(), 1);
    assert!(t.expected.is_empty(), "{:?}", t.expected);
}

#[test]
fn results_are_released_per_statement_not_per_ready_for_query() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(
        b'Q',
        &cstr("BEGIN; INSERT INTO t VALUES (1); COMMIT; SELECT pg_sleep(30)"),
        now,
    )
    .unwrap();
    t.server_frame(b'C', &cstr("BEGIN"), now).unwrap();
    t.server_frame(b'C', &cstr("INSERT 0 1"), now).unwrap();
    t.server_frame(b'C', &cstr("COMMIT"), now).unwrap();
    // The COMMIT's result is about to reach the client: its event must be
    // out now, although ReadyForQuery is 30 s away.
    let ev = statements(&mut t);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[2].command_tag.as_deref(), Some("COMMIT"));
    assert!(ev.iter().all(|e| e.txn_status == TxnStatus::Unknown));
    t.server_frame(b'D', b"", now).unwrap();
    t.server_frame(b'C', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    let ev = statements(&mut t);
    assert_eq!(
        (ev.len(), ev[0].statement_index, ev[0].txn_status),
        (1, 3, TxnStatus::Idle)
    );
}

#[test]
fn execute_and_flush_without_sync_release_each_result() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(b'P', &parse("", "INSERT INTO t VALUES (1)"), now)
        .unwrap();
    for _ in 0..1000 {
        t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
        t.client_frame(b'E', &execute("", 0), now).unwrap();
        t.client_frame(b'H', b"", now).unwrap();
    }
    t.server_frame(b'1', b"", now).unwrap();
    for _ in 0..1000 {
        t.server_frame(b'2', b"", now).unwrap();
        t.server_frame(b'C', &cstr("INSERT 0 1"), now).unwrap();
        assert_eq!(
            statements(&mut t).len(),
            1,
            "one event per result, no Sync needed"
        );
    }
    assert_eq!(t.statements(), 1000);
    assert!(statements(&mut t).is_empty());
}

#[test]
fn a_fatal_error_during_a_statement_is_remembered() {
    let mut t = tracker();
    let now = Instant::now();
    t.client_frame(
        b'Q',
        &cstr("SELECT pg_terminate_backend(pg_backend_pid())"),
        now,
    )
    .unwrap();
    let mut fatal =
        b"SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0".to_vec();
    fatal.push(0);
    t.server_frame(b'E', &fatal, now).unwrap();
    let ev = statements(&mut t);
    assert_eq!(
        ev[0].failure.as_ref().map(|f| f.sqlstate.as_str()),
        Some("57P01")
    );
    assert_eq!(
        t.server_fatal(),
        Some("FATAL 57P01: terminating connection due to administrator command")
    );
}

#[test]
fn ready_follows_an_error_unless_the_client_must_act_first() {
    let mut t = tracker();
    let now = Instant::now();
    assert!(!t.ready_follows_an_error());
    t.client_frame(b'Q', &cstr("SELECT 1/0"), now).unwrap();
    assert!(
        t.ready_follows_an_error(),
        "a Query string ends in ReadyForQuery"
    );
    t.server_frame(b'E', &error("22012", None), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    // Extended protocol: only once a Sync is queued.
    t.client_frame(b'P', &parse("", "SELECT 1/0"), now).unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    assert!(
        !t.ready_follows_an_error(),
        "Execute + Flush: the client decides"
    );
    t.client_frame(b'S', b"", now).unwrap();
    assert!(t.ready_follows_an_error());
    t.server_frame(b'E', &error("22012", None), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    // COPY IN: after an error the server waits for CopyDone or CopyFail.
    t.client_frame(b'Q', &cstr("COPY t FROM STDIN"), now)
        .unwrap();
    t.server_frame(b'G', b"\0\0\0", now).unwrap();
    assert!(!t.ready_follows_an_error());
}

#[path = "txn_tests.rs"]
mod txn;
