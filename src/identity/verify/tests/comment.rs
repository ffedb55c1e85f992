//! The HMAC in a SQL comment.

use super::*;

#[test]
fn comment_roundtrip_and_failures() {
    assert_eq!(
        comment_message("alice", "17"),
        b"pgtrail-claim-v1\nalice\n17".to_vec()
    );
    let keys = Keys::load(&[hmac_spec(Some("shop"), SECRET)]).unwrap();
    let rules = Rules::default();
    let ts = NOW.to_string();
    let sig = sign_comment(SECRET.as_bytes(), "alice", &ts);
    let exp = ok(
        keys.verify_comment("alice", &ts, &sig, None, NOW, &rules),
        "alice",
        "shop",
    );
    assert_eq!(exp, Some(NOW + 300));
    ok(
        keys.verify_comment("alice", &ts, &sig, Some("shop"), NOW, &rules),
        "alice",
        "shop",
    );
    rejected(
        keys.verify_comment("alice", &ts, &sig, Some("other"), NOW, &rules),
        Rejection::NoKey,
    );
    rejected(
        keys.verify_comment("bob", &ts, &sig, None, NOW, &rules),
        Rejection::BadSignature,
    );
    let wrong = sign_comment(OTHER_SECRET.as_bytes(), "alice", &ts);
    let subject = rejected(
        keys.verify_comment("alice", &ts, &wrong, None, NOW, &rules),
        Rejection::BadSignature,
    );
    assert_eq!(subject.as_deref(), Some("alice"));

    let at = |ts: u64| {
        let ts = ts.to_string();
        keys.verify_comment(
            "alice",
            &ts,
            &sign_comment(SECRET.as_bytes(), "alice", &ts),
            None,
            NOW,
            &rules,
        )
    };
    ok(at(NOW - 300), "alice", "shop");
    rejected(at(NOW - 301), Rejection::Stale { ts: NOW - 301 });
    ok(at(NOW + 30), "alice", "shop");
    rejected(at(NOW + 31), Rejection::Stale { ts: NOW + 31 });

    for bad_ts in [
        "",
        "+123",
        "abc",
        "1.5",
        "123456789012345678901",
        "99999999999999999999",
    ] {
        let sig = sign_comment(SECRET.as_bytes(), "alice", bad_ts);
        malformed(keys.verify_comment("alice", bad_ts, &sig, None, NOW, &rules));
    }
    malformed(keys.verify_comment("alice", &ts, "not base64!", None, NOW, &rules));
    malformed(keys.verify_comment("alice", &ts, &"A".repeat(500), None, NOW, &rules));
    malformed(keys.verify_comment(&"a".repeat(20_000), &ts, &sig, None, NOW, &rules));
    let empty = sign_comment(SECRET.as_bytes(), "", &ts);
    rejected(
        keys.verify_comment("", &ts, &empty, None, NOW, &rules),
        Rejection::NoSubject,
    );
}

#[test]
fn comments_use_only_hmac_keys() {
    let kp = ed_keypair();
    let file = temp_file("ed.pem", &ed_spki_pem(&kp));
    let keys = Keys::load(&[pem_spec(Some("shop"), file.0.clone())]).unwrap();
    let ts = NOW.to_string();
    let sig = sign_comment(SECRET.as_bytes(), "alice", &ts);
    let rules = Rules::default();
    rejected(
        keys.verify_comment("alice", &ts, &sig, Some("shop"), NOW, &rules),
        Rejection::NoKey,
    );
    rejected(
        Keys::empty().verify_comment("alice", &ts, &sig, None, NOW, &rules),
        Rejection::NoKey,
    );
}
