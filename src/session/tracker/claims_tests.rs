//! End-user claims followed by the tracker: each statement's claim, with
//! the settings scoped as PostgreSQL scopes them.

use super::tests::{bind, cstr, error, execute, parse, statements, tracker};
use super::*;
use crate::config::IdentityConfig;
use crate::identity::{Identity, SessionClaims, Source};

fn claiming() -> Tracker {
    let id = Identity::from_config(&IdentityConfig::default())
        .unwrap()
        .unwrap();
    let t = tracker();
    let claims = SessionClaims::new(Arc::new(id), t.session());
    t.with_claims(Some(claims))
}

/// Runs a Query string whose statements all succeed with these tags.
fn query(t: &mut Tracker, sql: &str, tags: &[&str], status: &[u8]) -> Vec<(String, Source)> {
    let now = Instant::now();
    t.client_frame(b'Q', &cstr(sql), now).unwrap();
    for tag in tags {
        if tag.starts_with('!') {
            t.server_frame(b'E', &error(&tag[1..], None), now).unwrap();
        } else {
            t.server_frame(b'C', &cstr(tag), now).unwrap();
        }
    }
    t.server_frame(b'Z', status, now).unwrap();
    statements(t)
        .into_iter()
        .map(|e| (e.end_user.end_user.clone(), e.end_user.end_user_source))
        .collect()
}

fn who(t: &mut Tracker) -> String {
    query(t, "SELECT 1", &["SELECT 1"], b"I")[0].0.clone()
}

#[test]
fn set_scoped_by_transactions() {
    let mut t = claiming();
    assert_eq!(
        query(&mut t, "SELECT 1", &["SELECT 1"], b"I"),
        [(String::new(), Source::None)]
    );
    let set = query(&mut t, "SET pgtrail.end_user = 'alice'", &["SET"], b"I");
    assert_eq!(set, [("alice".into(), Source::Set)]);
    assert_eq!(who(&mut t), "alice");
    // A rolled-back block takes its SET back.
    query(&mut t, "BEGIN", &["BEGIN"], b"T");
    query(&mut t, "SET pgtrail.end_user = 'bob'", &["SET"], b"T");
    query(&mut t, "ROLLBACK", &["ROLLBACK"], b"I");
    assert_eq!(who(&mut t), "alice");
    // SET LOCAL lasts to COMMIT.
    query(&mut t, "BEGIN", &["BEGIN"], b"T");
    query(
        &mut t,
        "SET LOCAL pgtrail.end_user = 'carol'",
        &["SET"],
        b"T",
    );
    assert_eq!(query(&mut t, "SELECT 1", &["SELECT 1"], b"T")[0].0, "carol");
    query(&mut t, "COMMIT", &["COMMIT"], b"I");
    assert_eq!(who(&mut t), "alice");
    // ROLLBACK TO a savepoint takes back what followed it.
    query(&mut t, "BEGIN; SAVEPOINT a", &["BEGIN", "SAVEPOINT"], b"T");
    query(&mut t, "SET pgtrail.end_user = 'dave'", &["SET"], b"T");
    query(&mut t, "ROLLBACK TO SAVEPOINT a", &["ROLLBACK"], b"T");
    assert_eq!(query(&mut t, "SELECT 1", &["SELECT 1"], b"T")[0].0, "alice");
    query(&mut t, "COMMIT", &["COMMIT"], b"I");
    // An implicit transaction that fails takes its SET back.
    query(
        &mut t,
        "SET pgtrail.end_user = 'erin'; SELECT 1/0",
        &["SET", "!22012"],
        b"I",
    );
    assert_eq!(who(&mut t), "alice");
    // DISCARD ALL and RESET forget it.
    query(&mut t, "DISCARD ALL", &["DISCARD ALL"], b"I");
    assert_eq!(who(&mut t), "");
    query(
        &mut t,
        "SELECT set_config('pgtrail.end_user', 'frank', false)",
        &["SELECT 1"],
        b"I",
    );
    assert_eq!(who(&mut t), "frank");
    query(&mut t, "RESET pgtrail.end_user", &["RESET"], b"I");
    assert_eq!(who(&mut t), "");
}

#[test]
fn comment_wins_for_its_statement_only() {
    let mut t = claiming();
    query(&mut t, "SET pgtrail.end_user = 'alice'", &["SET"], b"I");
    let sql = "SELECT 1 /*end_user='bob',request_id='r-7',traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/; SELECT 2";
    let now = Instant::now();
    t.client_frame(b'Q', &cstr(sql), now).unwrap();
    t.server_frame(b'C', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'C', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    let ev = statements(&mut t);
    let first = &ev[0].end_user;
    assert_eq!(
        (first.end_user.as_str(), first.end_user_source),
        ("bob", Source::Comment)
    );
    assert_eq!(first.request_id, "r-7");
    assert_eq!(first.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(first.end_user_reason, "not signed");
    assert!(!first.end_user_verified);
    assert_eq!(ev[1].end_user.end_user, "alice");
}

#[test]
fn set_config_with_a_parameter() {
    let mut t = claiming();
    let now = Instant::now();
    let sql = "SELECT set_config('pgtrail.end_user', $1, false)";
    t.client_frame(b'P', &parse("", sql), now).unwrap();
    t.client_frame(b'B', &bind("", "", &["grace"]), now)
        .unwrap();
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    t.server_frame(b'1', b"", now).unwrap();
    t.server_frame(b'2', b"", now).unwrap();
    t.server_frame(b'D', b"", now).unwrap();
    t.server_frame(b'C', &cstr("SELECT 1"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    let ev = statements(&mut t);
    assert_eq!(ev[0].end_user.end_user, "grace");
    assert_eq!(who(&mut t), "grace");
}
