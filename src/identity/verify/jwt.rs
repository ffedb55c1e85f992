//! Compact JWS / JWT verification.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::{rejected, Keys, Rejection, Rules, Verdict, MAX_INPUT};

/// An algorithm name echoed back in a rejection is client text; keep it short.
const MAX_ALG_SHOWN: usize = 32;

enum Fault {
    Base64,
    Json,
    NotObject,
}

impl Keys {
    /// A compact JWT (header.payload.signature, base64url without padding).
    pub fn verify_jwt(&self, token: &str, now_unix: u64, rules: &Rules) -> Verdict {
        if token.len() > MAX_INPUT {
            return rejected(None, Rejection::Malformed("token is longer than 16 KiB"));
        }
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return rejected(
                None,
                Rejection::Malformed("token is not three dot-separated parts"),
            );
        };
        // Decoded before anything is trusted so that every rejection can still
        // show whom the token claimed to be.
        let payload = decode_object(body);
        let subject = payload
            .as_ref()
            .ok()
            .and_then(|claims| subject_of(claims, &rules.subject_claim));
        let reject = |reason| rejected(subject.clone(), reason);

        let header = match decode_object(head) {
            Ok(header) => header,
            Err(fault) => {
                return reject(Rejection::Malformed(match fault {
                    Fault::Base64 => "header is not base64url",
                    Fault::Json => "header is not JSON",
                    Fault::NotObject => "header is not a JSON object",
                }))
            }
        };
        let claims = match payload {
            Ok(claims) => claims,
            Err(fault) => {
                return reject(Rejection::Malformed(match fault {
                    Fault::Base64 => "payload is not base64url",
                    Fault::Json => "payload is not JSON",
                    Fault::NotObject => "payload is not a JSON object",
                }))
            }
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(sig) else {
            return reject(Rejection::Malformed("signature is not base64url"));
        };
        let Some(alg) = header.get("alg").and_then(Value::as_str) else {
            return reject(Rejection::Malformed("header has no alg"));
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return reject(Rejection::Malformed("header kid is not a string")),
        };
        // RFC 7515: extensions marked critical that we do not understand must fail.
        if header.contains_key("crit") {
            return reject(Rejection::Malformed(
                "critical header extensions are not supported",
            ));
        }
        if !matches!(alg, "HS256" | "EdDSA" | "RS256") {
            return reject(Rejection::UnsupportedAlgorithm(shorten(alg)));
        }

        let signed = &token.as_bytes()[..head.len() + 1 + body.len()];
        let entry = match self.find_signer(alg, kid, signed, &signature) {
            Ok(entry) => entry,
            Err(reason) => return reject(reason),
        };

        let leeway = rules.leeway_s;
        let exp = match time_claim(&claims, "exp") {
            Ok(Some(exp)) => exp,
            Ok(None) => return reject(Rejection::NoExpiry),
            Err(why) => return reject(Rejection::Malformed(why)),
        };
        if now_unix > exp.saturating_add(leeway) {
            return reject(Rejection::Expired { at: exp });
        }
        // iat in the future is treated like nbf: a clock far ahead, or a token
        // minted for later use.
        for name in ["nbf", "iat"] {
            match time_claim(&claims, name) {
                Ok(Some(from)) if now_unix.saturating_add(leeway) < from => {
                    return reject(Rejection::NotYetValid { from })
                }
                Ok(_) => {}
                Err(why) => return reject(Rejection::Malformed(why)),
            }
        }
        if let Some(want) = &rules.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == want,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(want)),
                _ => false,
            };
            if !ok {
                return reject(Rejection::WrongAudience);
            }
        }
        let Some(subject) = subject.clone() else {
            return reject(Rejection::NoSubject);
        };
        Verdict::Verified {
            subject,
            key: entry.label.clone(),
            expires_at: Some(exp.saturating_add(leeway)),
        }
    }
}

fn decode_object(part: &str) -> Result<Map<String, Value>, Fault> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Fault::Base64)?;
    match serde_json::from_slice(&bytes).map_err(|_| Fault::Json)? {
        Value::Object(map) => Ok(map),
        _ => Err(Fault::NotObject),
    }
}

/// A non-empty string, or an integer taken as its decimal text.
fn subject_of(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A NumericDate; fractional seconds are allowed by RFC 7519 and truncated.
fn time_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, &'static str> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(secs) = value.as_u64() {
        return Ok(Some(secs));
    }
    match value.as_f64() {
        // `as` saturates, so a huge float becomes u64::MAX rather than wrapping.
        Some(secs) if secs.is_finite() && secs >= 0.0 => Ok(Some(secs as u64)),
        _ => Err(match name {
            "exp" => "exp is not a non-negative number",
            "nbf" => "nbf is not a non-negative number",
            _ => "iat is not a non-negative number",
        }),
    }
}

fn shorten(alg: &str) -> String {
    match alg.char_indices().nth(MAX_ALG_SHOWN) {
        Some((cut, _)) => format!("{}…", &alg[..cut]),
        None => alg.to_string(),
    }
}
