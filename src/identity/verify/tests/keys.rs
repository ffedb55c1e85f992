//! Key loading, its errors, Debug output and rejection texts.

use super::*;

#[test]
fn debug_output_hides_secrets() {
    let spec = hmac_spec(Some("shop"), SECRET);
    let shown = format!("{spec:?}");
    assert!(shown.contains(r#"hmac_secret: Some("***")"#), "{shown}");
    assert!(!shown.contains(SECRET));
    let kp = ed_keypair();
    let file = temp_file("ed.pem", &ed_spki_pem(&kp));
    let keys = Keys::load(&[
        spec,
        pem_spec(None, file.0.clone()),
        pem_spec(Some("idp2"), fixture("rsa_public.pem")),
    ])
    .unwrap();
    assert_eq!(
        format!("{keys:?}"),
        "Keys(3: hmac shop, ed25519 identity.keys[1], rsa idp2)"
    );
    assert_eq!(format!("{:?}", Keys::empty()), "Keys(0)");
    assert!(Keys::empty().is_empty() && !keys.is_empty());
}

#[test]
fn load_errors_name_the_key() {
    let err = |specs: &[KeySpec]| Keys::load(specs).unwrap_err();
    let missing = std::env::temp_dir().join("pgtrail-verify-does-not-exist.pem");
    let e = err(&[pem_spec(None, missing.clone())]);
    assert_eq!(e.key, "identity.keys[0]");
    assert!(e.why.contains(&missing.display().to_string()), "{e}");

    let junk = temp_file("junk.pem", "hello");
    let e = err(&[
        hmac_spec(None, SECRET),
        pem_spec(Some("idp"), junk.0.clone()),
    ]);
    assert_eq!(e.key, "identity.keys[1] (idp)");
    assert!(e.to_string().starts_with("identity.keys[1] (idp): "), "{e}");
    assert!(
        e.why.contains(&junk.0.display().to_string()) && e.why.contains("PUBLIC KEY"),
        "{e}"
    );

    let e = err(&[pem_spec(None, fixture("rsa_private.pem"))]);
    assert!(e.why.contains("private key"), "{e}");

    let e = err(&[hmac_spec(Some("short"), "too short")]);
    assert_eq!(e.key, "identity.keys[0] (short)");
    assert!(e.why.contains("at least 32"), "{e}");

    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256"}, {"kty": "RSA", "use": "enc", "n": "AA", "e": "AQAB"}]});
    let file = temp_file("none.json", &jwks.to_string());
    let e = err(&[jwks_spec(None, file.0.clone())]);
    assert!(e.why.contains("no usable signing key"), "{e}");
    for bad in [
        r#"{"nokeys": []}"#,
        "not json",
        r#"{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}"#,
    ] {
        let file = temp_file("bad.json", bad);
        let e = err(&[jwks_spec(None, file.0.clone())]);
        assert!(e.why.contains(&file.0.display().to_string()), "{e}");
    }

    let e = err(&[spec(Some("empty"))]);
    assert_eq!(e.key, "identity.keys[0] (empty)");
    assert!(
        e.why.contains("exactly one") && e.why.contains("found 0"),
        "{e}"
    );
    let two = KeySpec {
        public_key_file: Some(fixture("rsa_public.pem")),
        ..hmac_spec(None, SECRET)
    };
    assert!(err(&[two]).why.contains("found 2"));
}

#[test]
fn rsa_keys_outside_2048_to_8192_bits_are_refused() {
    let tlv = |tag: u8, body: &[u8]| {
        let mut out = vec![tag];
        match body.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(body);
        out
    };
    let spki = |n: &[u8]| {
        let rsa = tlv(0x30, &[tlv(0x02, n), tlv(0x02, &[1, 0, 1])].concat());
        let alg = tlv(
            0x30,
            &[
                tlv(
                    0x06,
                    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                ),
                vec![0x05, 0x00],
            ]
            .concat(),
        );
        tlv(
            0x30,
            &[alg, tlv(0x03, &[&[0u8][..], &rsa].concat())].concat(),
        )
    };
    let small = temp_file("small.pem", &pem("PUBLIC KEY", &spki(&[0xff; 128])));
    let e = Keys::load(&[pem_spec(None, small.0.clone())]).unwrap_err();
    assert!(e.why.contains("1024 bits"), "{e}");
    // The leading 0x00 of a positive INTEGER is not part of the size.
    let fine = temp_file(
        "fine.pem",
        &pem("PUBLIC KEY", &spki(&[&[0u8][..], &[0xff; 256]].concat())),
    );
    assert_eq!(
        Keys::load(&[pem_spec(None, fine.0.clone())]).unwrap().len(),
        1
    );
}

#[test]
fn display_and_kinds() {
    assert_eq!(
        Rejection::Expired { at: 1_796_612_400 }.to_string(),
        "token expired at 2026-12-07T03:00:00Z"
    );
    assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
    assert_eq!(Rfc3339(951_782_400).to_string(), "2000-02-29T00:00:00Z");
    assert_eq!(Rfc3339(4_102_444_799).to_string(), "2099-12-31T23:59:59Z");
    let _ = Rfc3339(u64::MAX).to_string();
    assert_eq!(
        Rejection::BadSignature.to_string(),
        "signature does not match any configured key"
    );
    let all = [
        Rejection::Malformed("x"),
        Rejection::UnsupportedAlgorithm("x".into()),
        Rejection::NoKey,
        Rejection::BadSignature,
        Rejection::Expired { at: 0 },
        Rejection::NotYetValid { from: 0 },
        Rejection::NoExpiry,
        Rejection::WrongAudience,
        Rejection::NoSubject,
        Rejection::Stale { ts: 0 },
    ];
    let kinds: Vec<&str> = all.iter().map(Rejection::kind).collect();
    assert_eq!(kinds, Rejection::KINDS);
    let rules = Rules::default();
    assert_eq!(
        (
            rules.audience,
            rules.leeway_s,
            rules.max_age_s,
            rules.subject_claim.as_str()
        ),
        (None, 30, 300, "sub")
    );
}
