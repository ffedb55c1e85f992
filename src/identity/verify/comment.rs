//! The HMAC carried in a sqlcommenter comment next to `end_user` and `ts`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use super::{rejected, Keys, Rejection, Rules, Verdict, MAX_INPUT};

/// Versioned so the message format can change without old signatures
/// verifying under a new meaning.
const DOMAIN: &[u8] = b"pgtrail-claim-v1\n";

/// u64::MAX has 20 digits.
const MAX_TS_LEN: usize = 20;

/// An HMAC-SHA256 is 43 base64url characters; allow slack, refuse junk.
const MAX_SIG_LEN: usize = 128;

/// The bytes a comment's HMAC covers: b"pgtrail-claim-v1\n" + end_user + b"\n" + ts.
///
/// `ts` is digits only when verified, so the last newline splits the message
/// unambiguously even if `end_user` contains newlines.
pub fn comment_message(end_user: &str, ts: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + end_user.len() + 1 + ts.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(end_user.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(ts.as_bytes());
    message
}

/// What an application computes: base64url-no-pad HMAC-SHA256(secret, comment_message(end_user, ts)).
pub fn sign_comment(secret: &[u8], end_user: &str, ts: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    URL_SAFE_NO_PAD.encode(hmac::sign(&key, &comment_message(end_user, ts)))
}

impl Keys {
    /// The HMAC inside a sqlcommenter comment. Only HMAC keys take part; `kid`
    /// narrows them to that id.
    pub fn verify_comment(
        &self,
        end_user: &str,
        ts: &str,
        sig: &str,
        kid: Option<&str>,
        now_unix: u64,
        rules: &Rules,
    ) -> Verdict {
        if end_user.len() > MAX_INPUT {
            return rejected(None, Rejection::Malformed("end_user is longer than 16 KiB"));
        }
        let subject = (!end_user.is_empty()).then(|| end_user.to_string());
        let reject = |reason| rejected(subject.clone(), reason);

        // Digits only: u64's parser would also take a leading '+', and the
        // message must have one spelling per timestamp.
        if ts.is_empty() || ts.len() > MAX_TS_LEN || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return reject(Rejection::Malformed("ts is not unix seconds"));
        }
        let Ok(ts_value) = ts.parse::<u64>() else {
            return reject(Rejection::Malformed("ts is not unix seconds"));
        };
        if sig.len() > MAX_SIG_LEN {
            return reject(Rejection::Malformed("sig is too long"));
        }
        let Ok(signature) = URL_SAFE_NO_PAD.decode(sig) else {
            return reject(Rejection::Malformed("sig is not base64url"));
        };

        let message = comment_message(end_user, ts);
        let entry = match self.find_signer("HS256", kid, &message, &signature) {
            Ok(entry) => entry,
            Err(reason) => return reject(reason),
        };

        let expires_at = ts_value.saturating_add(rules.max_age_s);
        if now_unix > expires_at || ts_value > now_unix.saturating_add(rules.leeway_s) {
            return reject(Rejection::Stale { ts: ts_value });
        }
        let Some(subject) = subject else {
            return reject(Rejection::NoSubject);
        };
        Verdict::Verified {
            subject,
            key: entry.label.clone(),
            expires_at: Some(expires_at),
        }
    }
}

/// An HS256 JWT over `claims` (a JSON object's text), as an application
/// holding the shared secret makes one: for tests, examples and the docs.
pub fn sign_hs256_token(secret: &[u8], claims: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.as_bytes());
    let signing_input = format!("{header}.{payload}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let sig = URL_SAFE_NO_PAD.encode(hmac::sign(&key, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}
