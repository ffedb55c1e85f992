//! JWT verification: algorithms, keys, times, audience, subjects, hostile input.

use super::*;

#[test]
fn hs256_valid_with_and_without_kid() {
    let keys = Keys::load(&[hmac_spec(Some("shop"), SECRET)]).unwrap();
    let rules = Rules::default();
    let exp = ok(
        keys.verify_jwt(&hs256(SECRET, Some("shop"), claims()), NOW, &rules),
        "alice",
        "shop",
    );
    assert_eq!(exp, Some(NOW + 600 + 30));
    ok(
        keys.verify_jwt(&hs256(SECRET, None, claims()), NOW, &rules),
        "alice",
        "shop",
    );
}

#[test]
fn hs256_via_jwks_oct() {
    let jwks = json!({"keys": [{"kty": "oct", "k": b64(SECRET), "kid": "shop", "use": "sig"}]});
    let file = temp_file("oct.json", &jwks.to_string());
    let keys = Keys::load(&[jwks_spec(None, file.0.clone())]).unwrap();
    ok(
        keys.verify_jwt(
            &hs256(SECRET, Some("shop"), claims()),
            NOW,
            &Rules::default(),
        ),
        "alice",
        "shop",
    );
}

#[test]
fn eddsa_via_pem_and_jwks() {
    let kp = ed_keypair();
    let file = temp_file("ed.pem", &ed_spki_pem(&kp));
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key()), "kid": "idp"}]});
    let jfile = temp_file("ed.json", &jwks.to_string());
    let rules = Rules::default();

    let keys = Keys::load(&[pem_spec(None, file.0.clone())]).unwrap();
    let t = token(Signer::Ed(&kp), json!({"alg": "EdDSA"}), claims());
    ok(
        keys.verify_jwt(&t, NOW, &rules),
        "alice",
        "identity.keys[0]",
    );

    let keys = Keys::load(&[jwks_spec(None, jfile.0.clone())]).unwrap();
    let t = token(
        Signer::Ed(&kp),
        json!({"alg": "EdDSA", "kid": "idp"}),
        claims(),
    );
    ok(keys.verify_jwt(&t, NOW, &rules), "alice", "idp");
}

#[test]
fn rs256_via_pem_and_jwks() {
    let kp = rsa_keypair();
    let rules = Rules::default();
    let keys = Keys::load(&[pem_spec(Some("idp2"), fixture("rsa_public.pem"))]).unwrap();
    let t = token(
        Signer::Rsa(&kp),
        json!({"alg": "RS256", "kid": "idp2"}),
        claims(),
    );
    ok(keys.verify_jwt(&t, NOW, &rules), "alice", "idp2");

    let parts = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public());
    let jwks = json!({"keys": [
        {"kty": "RSA", "use": "enc", "n": b64(&parts.n), "e": b64(&parts.e), "kid": "enc"},
        {"kty": "RSA", "alg": "RS512", "n": b64(&parts.n), "e": b64(&parts.e), "kid": "rs512"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"},
        {"kty": "OKP", "crv": "X25519", "x": "AA", "kid": "x"},
        {"kty": "RSA", "alg": "RS256", "use": "sig", "n": b64(&parts.n), "e": b64(&parts.e), "kid": "rsa1"}
    ]});
    let file = temp_file("rsa.json", &jwks.to_string());
    let keys = Keys::load(&[jwks_spec(None, file.0.clone())]).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let t = token(Signer::Rsa(&kp), json!({"alg": "RS256"}), claims());
    ok(keys.verify_jwt(&t, NOW, &rules), "alice", "rsa1");
}

#[test]
fn kid_selects_the_key() {
    let keys = Keys::load(&[
        hmac_spec(Some("a"), SECRET),
        hmac_spec(Some("b"), OTHER_SECRET),
    ])
    .unwrap();
    let rules = Rules::default();
    ok(
        keys.verify_jwt(&hs256(OTHER_SECRET, Some("b"), claims()), NOW, &rules),
        "alice",
        "b",
    );
    ok(
        keys.verify_jwt(&hs256(OTHER_SECRET, None, claims()), NOW, &rules),
        "alice",
        "b",
    );
    let t = hs256(OTHER_SECRET, Some("a"), claims());
    rejected(keys.verify_jwt(&t, NOW, &rules), Rejection::BadSignature);
    let t = hs256(SECRET, Some("zzz"), claims());
    assert_eq!(
        rejected(keys.verify_jwt(&t, NOW, &rules), Rejection::NoKey),
        Some("alice".into())
    );
}

#[test]
fn tampered_payload_keeps_the_claimed_subject() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let t = hs256(SECRET, None, claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged = json!({"sub": "mallory", "exp": NOW + 600});
    let t = format!("{}.{}.{}", parts[0], b64(forged.to_string()), parts[2]);
    let subject = rejected(
        keys.verify_jwt(&t, NOW, &Rules::default()),
        Rejection::BadSignature,
    );
    assert_eq!(subject.as_deref(), Some("mallory"));
}

#[test]
fn unsupported_algorithms() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let rules = Rules::default();
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(claims().to_string())
    );
    let reason = Rejection::UnsupportedAlgorithm("none".into());
    assert_eq!(reason.to_string(), "algorithm \"none\" is not accepted");
    assert_eq!(
        rejected(keys.verify_jwt(&none, NOW, &rules), reason),
        Some("alice".into())
    );
    let t = token(
        Signer::Hmac(SECRET.as_bytes()),
        json!({"alg": "HS512"}),
        claims(),
    );
    rejected(
        keys.verify_jwt(&t, NOW, &rules),
        Rejection::UnsupportedAlgorithm("HS512".into()),
    );
    let t = token(
        Signer::Hmac(SECRET.as_bytes()),
        json!({"alg": "x".repeat(100)}),
        claims(),
    );
    let long = Rejection::UnsupportedAlgorithm(format!("{}…", "x".repeat(32)));
    rejected(keys.verify_jwt(&t, NOW, &rules), long);
}

#[test]
fn rsa_public_key_as_hmac_secret_is_refused() {
    let public_pem = std::fs::read_to_string(fixture("rsa_public.pem")).unwrap();
    let rules = Rules::default();
    let keys = Keys::load(&[pem_spec(Some("rsa"), fixture("rsa_public.pem"))]).unwrap();
    for kid in [Some("rsa"), None] {
        let t = hs256(&public_pem, kid, claims());
        rejected(keys.verify_jwt(&t, NOW, &rules), Rejection::NoKey);
    }
    let both = Keys::load(&[
        pem_spec(None, fixture("rsa_public.pem")),
        hmac_spec(None, SECRET),
    ])
    .unwrap();
    rejected(
        both.verify_jwt(&hs256(&public_pem, None, claims()), NOW, &rules),
        Rejection::BadSignature,
    );
    // An RS256 signature relabelled EdDSA finds no Ed25519 key.
    let t = token(
        Signer::Rsa(&rsa_keypair()),
        json!({"alg": "EdDSA"}),
        claims(),
    );
    rejected(keys.verify_jwt(&t, NOW, &rules), Rejection::NoKey);
}

#[test]
fn time_claims() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let rules = Rules::default();
    let check = |extra: Value| {
        let mut c = json!({"sub": "alice"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        keys.verify_jwt(&hs256(SECRET, None, c), NOW, &rules)
    };
    rejected(
        check(json!({"exp": NOW - 31})),
        Rejection::Expired { at: NOW - 31 },
    );
    ok(check(json!({"exp": NOW - 30})), "alice", "identity.keys[0]");
    ok(
        check(json!({"exp": (NOW + 10) as f64 + 0.5})),
        "alice",
        "identity.keys[0]",
    );
    rejected(check(json!({})), Rejection::NoExpiry);
    malformed(check(json!({"exp": "tomorrow"})));
    malformed(check(json!({"exp": -5})));
    let exp = NOW + 600;
    rejected(
        check(json!({"exp": exp, "nbf": NOW + 31})),
        Rejection::NotYetValid { from: NOW + 31 },
    );
    ok(
        check(json!({"exp": exp, "nbf": NOW + 30})),
        "alice",
        "identity.keys[0]",
    );
    rejected(
        check(json!({"exp": exp, "iat": NOW + 31})),
        Rejection::NotYetValid { from: NOW + 31 },
    );
    ok(check(json!({"exp": u64::MAX})), "alice", "identity.keys[0]");
}

#[test]
fn audience() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let rules = Rules {
        audience: Some("pgtrail".into()),
        ..Rules::default()
    };
    let check = |aud: Option<Value>| {
        let mut c = json!({"sub": "alice", "exp": NOW + 60});
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        keys.verify_jwt(&hs256(SECRET, None, c), NOW, &rules)
    };
    ok(check(Some(json!("pgtrail"))), "alice", "identity.keys[0]");
    ok(
        check(Some(json!(["other", "pgtrail"]))),
        "alice",
        "identity.keys[0]",
    );
    rejected(check(None), Rejection::WrongAudience);
    rejected(check(Some(json!("other"))), Rejection::WrongAudience);
    rejected(check(Some(json!(["other"]))), Rejection::WrongAudience);
    let t = hs256(
        SECRET,
        None,
        json!({"sub": "alice", "exp": NOW + 60, "aud": "other"}),
    );
    ok(
        keys.verify_jwt(&t, NOW, &Rules::default()),
        "alice",
        "identity.keys[0]",
    );
}

#[test]
fn subjects() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let rules = Rules::default();
    let check = |c: Value| keys.verify_jwt(&hs256(SECRET, None, c), NOW, &rules);
    ok(
        check(json!({"sub": 42, "exp": NOW + 60})),
        "42",
        "identity.keys[0]",
    );
    rejected(
        check(json!({"sub": "", "exp": NOW + 60})),
        Rejection::NoSubject,
    );
    rejected(check(json!({"exp": NOW + 60})), Rejection::NoSubject);
    rejected(
        check(json!({"sub": 1.5, "exp": NOW + 60})),
        Rejection::NoSubject,
    );
    rejected(
        check(json!({"sub": ["a"], "exp": NOW + 60})),
        Rejection::NoSubject,
    );
    let email = Rules {
        subject_claim: "email".into(),
        ..Rules::default()
    };
    let t = hs256(
        SECRET,
        None,
        json!({"sub": "svc", "email": "a@example.com", "exp": NOW + 60}),
    );
    ok(
        keys.verify_jwt(&t, NOW, &email),
        "a@example.com",
        "identity.keys[0]",
    );
}

#[test]
fn oversized_tokens_are_refused() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let big = json!({"sub": "alice", "exp": NOW + 60, "pad": "x".repeat(16 * 1024)});
    let verdict = keys.verify_jwt(&hs256(SECRET, None, big), NOW, &Rules::default());
    assert_eq!(
        verdict,
        Verdict::Rejected {
            subject: None,
            reason: Rejection::Malformed("token is longer than 16 KiB")
        }
    );
    malformed(keys.verify_jwt(&"a".repeat(16 * 1024 + 1), NOW, &Rules::default()));
}

#[test]
fn garbage_never_panics_and_never_verifies() {
    let keys = Keys::load(&[hmac_spec(None, SECRET)]).unwrap();
    let rules = Rules::default();
    let valid = hs256(SECRET, None, claims());
    let json_b64 = |s: &str| b64(s);
    let inputs = [
        String::new(),
        ".".into(),
        "..".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        "!!!.!!!.!!!".into(),
        "é.é.é".into(),
        "eyJ.eyJ.".into(),
        format!("{}.{}.", json_b64("not json"), json_b64("{}")),
        format!("{}.{}.", json_b64("[1]"), json_b64("{}")),
        format!("{}.{}.", json_b64(r#"{"alg":5}"#), json_b64("{}")),
        format!(
            "{}.{}.AA",
            json_b64(r#"{"alg":"HS256","kid":7}"#),
            json_b64("{}")
        ),
        format!(
            "{}.{}.AA",
            json_b64(r#"{"alg":"HS256","crit":["x"]}"#),
            json_b64("{}")
        ),
        format!("{}.{}.", json_b64(r#"{"alg":"HS256"}"#), json_b64("null")),
        format!("{valid}="),
        valid.replace('.', ".."),
    ];
    for input in &inputs {
        malformed(Keys::empty().verify_jwt(input, NOW, &rules));
        malformed(keys.verify_jwt(input, NOW, &rules));
    }
    // Every one-character change of a valid token must fail, without panicking.
    ok(
        keys.verify_jwt(&valid, NOW, &rules),
        "alice",
        "identity.keys[0]",
    );
    for i in 0..valid.len() {
        for c in ['A', 'b', '-', '_', '.', '0', 'é'] {
            let mut t = valid.clone();
            if t.as_bytes()[i] as char == c {
                continue;
            }
            t.replace_range(i..i + 1, &c.to_string());
            let verdict = keys.verify_jwt(&t, NOW, &rules);
            assert!(
                matches!(verdict, Verdict::Rejected { .. }),
                "{t}: {verdict:?}"
            );
        }
    }
}
