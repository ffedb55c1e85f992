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
        if let Some(code) = tag.strip_prefix('!') {
            t.server_frame(b'E', &error(code, None), now).unwrap();
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

const SECRET: &str = "a shared secret of at least thirty-two bytes";

fn requiring() -> Tracker {
    let mut config = IdentityConfig::default();
    config.keys.push(crate::config::IdentityKey {
        hmac_secret: Some(crate::config::Secret(SECRET.into())),
        ..Default::default()
    });
    config.roles.insert(
        "app".into(),
        crate::config::RoleIdentity {
            require_verified_end_user: true,
        },
    );
    let id = Identity::from_config(&config).unwrap().unwrap();
    let t = tracker();
    let claims = SessionClaims::new(Arc::new(id), t.session());
    t.with_claims(Some(claims))
}

fn token(sub: &str, exp: u64) -> String {
    let claims = format!(r#"{{"sub":"{sub}","exp":{exp}}}"#);
    crate::identity::verify::sign_hs256_token(SECRET.as_bytes(), &claims)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn refused(t: &mut Tracker, sql: &str) -> Option<String> {
    t.end_user_refusal(b'Q', &cstr(sql)).map(|r| r.message)
}

#[test]
fn refusal_until_a_verified_claim() {
    let mut t = requiring();
    let why = refused(&mut t, "SELECT card FROM cards").unwrap();
    assert!(
        why.contains("role \"app\"") && why.contains("no end user is claimed"),
        "{why}"
    );
    // Settings and transaction control pass.
    for sql in [
        "BEGIN",
        "COMMIT",
        "SET pgtrail.end_user = 'x'",
        "SHOW search_path",
        "DISCARD ALL",
    ] {
        assert_eq!(refused(&mut t, sql), None, "{sql}");
    }
    assert_eq!(
        refused(
            &mut t,
            "SELECT set_config('pgtrail.end_user_token', 'x', false)"
        ),
        None
    );
    assert!(refused(
        &mut t,
        "SELECT set_config('pgtrail.end_user', 'x', false), card FROM cards"
    )
    .is_some());
    // An unsigned claim is not enough.
    query(&mut t, "SET pgtrail.end_user = 'alice'", &["SET"], b"I");
    let why = refused(&mut t, "SELECT 1").unwrap();
    assert!(why.contains("\"alice\" is not signed"), "{why}");
    // A verified token in the session is.
    let good = token("alice", unix_now() + 600);
    query(
        &mut t,
        &format!("SET pgtrail.end_user_token = '{good}'"),
        &["SET"],
        b"I",
    );
    assert_eq!(refused(&mut t, "SELECT card FROM cards"), None);
    // Set in the same Query string counts; an expired one does not.
    query(&mut t, "RESET ALL", &["RESET"], b"I");
    assert!(refused(&mut t, "SELECT 1").is_some());
    let sql = format!("SET LOCAL pgtrail.end_user_token = '{good}'; SELECT card FROM cards");
    assert_eq!(refused(&mut t, &sql), None);
    let old = token("alice", unix_now() - 3600);
    let why = refused(
        &mut t,
        &format!("SET pgtrail.end_user_token = '{old}'; SELECT 1"),
    )
    .unwrap();
    assert!(why.contains("expired"), "{why}");
    // A signed comment on the statement itself.
    let ts = unix_now().to_string();
    let sig = crate::identity::verify::sign_comment(SECRET.as_bytes(), "bob", &ts);
    let sql =
        format!("SELECT card FROM cards /*end_user='bob',pgtrail_ts='{ts}',pgtrail_sig='{sig}'*/");
    assert_eq!(refused(&mut t, &sql), None);
    let forged = format!(
        "SELECT card FROM cards /*end_user='mallory',pgtrail_ts='{ts}',pgtrail_sig='{sig}'*/"
    );
    assert!(refused(&mut t, &forged).unwrap().contains("signature"));
}

#[test]
fn a_claim_set_in_a_batch_in_flight_does_not_count_yet() {
    let mut t = requiring();
    let good = token("alice", unix_now() + 600);
    let now = Instant::now();
    let set = format!("SET pgtrail.end_user_token = '{good}'");
    t.client_frame(b'Q', &cstr(&set), now).unwrap();
    // Still in flight: it may yet fail.
    assert!(refused(&mut t, "SELECT 1").is_some());
    t.server_frame(b'C', &cstr("SET"), now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    assert_eq!(refused(&mut t, "SELECT 1"), None);
    // A COMMIT in flight may end a SET LOCAL's claim.
    query(&mut t, "BEGIN", &["BEGIN"], b"T");
    query(&mut t, "RESET ALL", &["RESET"], b"T");
    query(
        &mut t,
        &format!("SET LOCAL pgtrail.end_user_token = '{good}'"),
        &["SET"],
        b"T",
    );
    assert_eq!(refused(&mut t, "SELECT 1"), None);
    t.client_frame(b'Q', &cstr("COMMIT"), now).unwrap();
    assert!(refused(&mut t, "SELECT 1").is_some());
}

#[test]
fn refused_execute_expects_the_failing_statement_s_answers() {
    let mut t = requiring();
    let now = Instant::now();
    t.client_frame(b'P', &parse("", "SELECT card FROM cards"), now)
        .unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    assert!(t.end_user_refusal(b'E', &execute("", 0)).is_some());
    t.refusal_sent(b'E');
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'S', b"", now).unwrap();
    // The client's Parse and Bind are answered; then pgtrail's Close,
    // Parse and Bind (swallowed), then the error of its Execute.
    assert_eq!(t.server_frame(b'1', b"", now).unwrap(), Route::Client);
    assert_eq!(t.server_frame(b'2', b"", now).unwrap(), Route::Client);
    assert_eq!(t.server_frame(b'3', b"", now).unwrap(), Route::Swallow);
    assert_eq!(t.server_frame(b'1', b"", now).unwrap(), Route::Swallow);
    assert_eq!(t.server_frame(b'2', b"", now).unwrap(), Route::Swallow);
    assert_eq!(
        t.server_frame(b'E', &error("28000", None), now).unwrap(),
        Route::Client
    );
    assert_eq!(t.server_frame(b'Z', b"I", now).unwrap(), Route::Client);
    let ev = statements(&mut t);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].text.as_ref(), b"SELECT card FROM cards");
    assert_eq!(
        ev[0].failure.as_ref().map(|f| f.sqlstate.as_str()),
        Some("28000")
    );
}

#[test]
fn a_token_set_with_a_parameter_counts_for_the_next_execute_of_its_batch() {
    let mut t = requiring();
    let now = Instant::now();
    let good = token("alice", unix_now() + 600);
    let set = "SELECT set_config('pgtrail.end_user_token', $1, true)";
    t.client_frame(b'P', &parse("", set), now).unwrap();
    t.client_frame(b'B', &bind("", "", &[&good]), now).unwrap();
    assert_eq!(
        t.end_user_refusal(b'E', &execute("", 0)),
        None,
        "it makes the claim"
    );
    t.client_frame(b'E', &execute("", 0), now).unwrap();
    t.client_frame(b'P', &parse("", "SELECT card FROM cards"), now)
        .unwrap();
    t.client_frame(b'B', &bind("", "", &[]), now).unwrap();
    assert_eq!(
        t.end_user_refusal(b'E', &execute("", 0)),
        None,
        "set earlier in the batch"
    );
    // A SELECT that calls anything besides set_config may read data.
    let sneaky = "SELECT set_config('pgtrail.end_user', 'x', false), read_cards()";
    assert!(refused(&mut t, sneaky).is_some());
}

#[test]
fn application_name_convention_follows_parameter_status() {
    let config = IdentityConfig {
        application_name_separator: "/".into(),
        ..IdentityConfig::default()
    };
    let id = Identity::from_config(&config).unwrap().unwrap();
    let t = tracker();
    let claims = SessionClaims::new(Arc::new(id), t.session());
    let mut t = t.with_claims(Some(claims));
    assert_eq!(
        query(&mut t, "SELECT 1", &["SELECT 1"], b"I"),
        [(String::new(), Source::None)]
    );
    let now = Instant::now();
    t.server_frame(b'S', b"application_name\0shop/alice\0", now)
        .unwrap();
    assert_eq!(
        query(&mut t, "SELECT 1", &["SELECT 1"], b"I"),
        [("alice".into(), Source::ApplicationName)]
    );
    // A setting wins over the convention.
    query(&mut t, "SET pgtrail.end_user = 'bob'", &["SET"], b"I");
    assert_eq!(who(&mut t), "bob");
}

#[test]
fn a_reused_rejected_claim_counts_as_rejected_each_time() {
    let mut t = requiring();
    let old = token("alice", unix_now() - 3600);
    query(
        &mut t,
        &format!("SET pgtrail.end_user_token = '{old}'"),
        &["SET"],
        b"I",
    );
    who(&mut t);
    who(&mut t);
    let stats = &t.transactions.claims().unwrap().identity().stats;
    let expired = crate::identity::verify::Rejection::KINDS
        .iter()
        .position(|k| *k == "expired")
        .unwrap();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&stats.rejected[expired]), 3);
    assert_eq!(load(&stats.unsigned), 0);
}
