//! Unit tests with real keys: Ed25519 generated per run, RSA from
//! `tests/fixtures/identity/`, HMAC from constants.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{json, Value};

use super::*;

mod comment;
mod jwt;
mod keys;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210";

/// A file under the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(name: &str, contents: &str) -> TempFile {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("pgtrail-verify-{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    TempFile(path)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/identity")
        .join(name)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn pem_der(text: &str) -> Vec<u8> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

enum Signer<'a> {
    Hmac(&'a [u8]),
    Ed(&'a Ed25519KeyPair),
    Rsa(&'a RsaKeyPair),
}

fn token(signer: Signer, header: Value, claims: Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = match signer {
        Signer::Hmac(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
        Signer::Ed(kp) => kp.sign(input.as_bytes()).as_ref().to_vec(),
        Signer::Rsa(kp) => {
            let mut sig = vec![0; kp.public().modulus_len()];
            let rng = SystemRandom::new();
            kp.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
            sig
        }
    };
    format!("{input}.{}", b64(sig))
}

fn hs256(secret: &str, kid: Option<&str>, claims: Value) -> String {
    let header = match kid {
        Some(kid) => json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        None => json!({"alg": "HS256", "typ": "JWT"}),
    };
    token(Signer::Hmac(secret.as_bytes()), header, claims)
}

fn claims() -> Value {
    json!({"sub": "alice", "exp": NOW + 600, "iat": NOW - 10, "aud": "pgtrail"})
}

fn ed_keypair() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn ed_spki_pem(kp: &Ed25519KeyPair) -> String {
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(kp.public_key().as_ref());
    pem("PUBLIC KEY", &der)
}

fn rsa_keypair() -> RsaKeyPair {
    let text = std::fs::read_to_string(fixture("rsa_private.pem")).unwrap();
    RsaKeyPair::from_pkcs8(&pem_der(&text)).unwrap()
}

fn spec(id: Option<&str>) -> KeySpec {
    KeySpec {
        id: id.map(str::to_string),
        ..KeySpec::default()
    }
}

fn hmac_spec(id: Option<&str>, secret: &str) -> KeySpec {
    KeySpec {
        hmac_secret: Some(secret.to_string()),
        ..spec(id)
    }
}

fn pem_spec(id: Option<&str>, path: PathBuf) -> KeySpec {
    KeySpec {
        public_key_file: Some(path),
        ..spec(id)
    }
}

fn jwks_spec(id: Option<&str>, path: PathBuf) -> KeySpec {
    KeySpec {
        jwks_file: Some(path),
        ..spec(id)
    }
}

fn ok(verdict: Verdict, subject: &str, key: &str) -> Option<u64> {
    match verdict {
        Verdict::Verified {
            subject: s,
            key: k,
            expires_at,
        } if s == subject && k == key => expires_at,
        other => panic!("expected Verified({subject}, {key}), got {other:?}"),
    }
}

fn rejected(verdict: Verdict, reason: Rejection) -> Option<String> {
    match verdict {
        Verdict::Rejected { subject, reason: r } if r == reason => subject,
        other => panic!("expected Rejected({reason:?}), got {other:?}"),
    }
}

fn malformed(verdict: Verdict) {
    assert!(
        matches!(
            verdict,
            Verdict::Rejected {
                reason: Rejection::Malformed(_),
                ..
            }
        ),
        "{verdict:?}"
    );
}
