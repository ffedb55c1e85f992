//! Verification of signed end-user claims.
//!
//! An application connects as one service role and tells pgtrail which person
//! it acts for, either as a compact JWT (HS256, EdDSA or RS256) or as an
//! HMAC-SHA256 over `end_user` and `ts` inside a SQL comment. This module checks
//! such claims against keys loaded once from the config and returns a
//! [`Verdict`]. Besides reading key files in [`Keys::load`] it does no I/O.

mod comment;
mod jwt;
mod keys;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub use comment::{comment_message, sign_comment, sign_hs256_token};

/// Tokens and comment fields longer than this are refused before any decoding,
/// so a hostile client cannot make us parse megabytes of JSON per query.
const MAX_INPUT: usize = 16 * 1024;

/// One configured key, as the config file gives it. Exactly one of the three sources is set.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Key id matched against a JWT header's `kid` or a comment's `pgtrail_kid`.
    /// Optional for single keys; JWKS keys carry their own `kid` (this id is used
    /// only for JWKS keys that have none).
    pub id: Option<String>,
    /// HMAC-SHA256 shared secret (the text's UTF-8 bytes are the key). At least 32 bytes.
    pub hmac_secret: Option<String>,
    /// A PEM "PUBLIC KEY" (SubjectPublicKeyInfo) file: Ed25519 or RSA (2048..=8192 bits).
    pub public_key_file: Option<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`) with OKP/Ed25519, RSA or oct keys.
    pub jwks_file: Option<PathBuf>,
}

// Written by hand so that a logged config never shows the shared secret.
impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySpec")
            .field("id", &self.id)
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "***"))
            .field("public_key_file", &self.public_key_file)
            .field("jwks_file", &self.jwks_file)
            .finish()
    }
}

/// A key that could not be loaded.
#[derive(Debug)]
pub struct KeyError {
    /// Which key: `identity.keys[2]`, or `identity.keys[2] (shop)` when it has an id.
    pub key: String,
    /// What is wrong, naming the file when a file is involved.
    pub why: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.why)
    }
}

impl std::error::Error for KeyError {}

/// The loaded, validated keys.
pub struct Keys {
    entries: Vec<Entry>,
}

struct Entry {
    id: Option<String>,
    /// What a verdict reports: the id, or the config position when there is none.
    label: String,
    material: Material,
}

/// The key type alone decides the algorithm, which is what rules out
/// algorithm confusion (e.g. an RSA public key used as an HMAC secret).
enum Material {
    Hmac(ring::hmac::Key),
    Ed25519(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl Material {
    fn alg(&self) -> &'static str {
        match self {
            Material::Hmac(_) => "HS256",
            Material::Ed25519(_) => "EdDSA",
            Material::Rsa { .. } => "RS256",
        }
    }

    /// Constant-time for HMAC (ring::hmac::verify); public-key checks have no secret to leak.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{self as sig, UnparsedPublicKey};
        match self {
            Material::Hmac(key) => ring::hmac::verify(key, message, signature).is_ok(),
            Material::Ed25519(public) => UnparsedPublicKey::new(&sig::ED25519, public)
                .verify(message, signature)
                .is_ok(),
            Material::Rsa { n, e } => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Material::Hmac(_) => "hmac",
            Material::Ed25519(_) => "ed25519",
            Material::Rsa { .. } => "rsa",
        }
    }
}

impl Keys {
    /// No keys: every signed claim is rejected with [`Rejection::NoKey`].
    pub fn empty() -> Keys {
        Keys {
            entries: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first key of `alg` (and `kid`, when given) whose signature matches.
    fn find_signer(
        &self,
        alg: &str,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<&Entry, Rejection> {
        let mut any_key = false;
        for entry in &self.entries {
            if entry.material.alg() != alg || kid.is_some_and(|k| entry.id.as_deref() != Some(k)) {
                continue;
            }
            any_key = true;
            if entry.material.verifies(message, signature) {
                return Ok(entry);
            }
        }
        Err(if any_key {
            Rejection::BadSignature
        } else {
            Rejection::NoKey
        })
    }
}

fn rejected(subject: Option<String>, reason: Rejection) -> Verdict {
    Verdict::Rejected { subject, reason }
}

// Written by hand: names and types only, never key material.
impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({}", self.entries.len())?;
        for (i, e) in self.entries.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{} {}", e.material.kind(), e.label)?;
        }
        write!(f, ")")
    }
}

/// What a claim must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Required `aud` (string or array containing it). None: aud not checked.
    pub audience: Option<String>,
    /// Clock skew allowed for exp / nbf / iat-in-future, seconds (default 30).
    pub leeway_s: u64,
    /// A comment's `ts` older than this (or more than leeway_s in the future) is stale (default 300).
    pub max_age_s: u64,
    /// The JWT claim holding the end user (default "sub").
    pub subject_claim: String,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            audience: None,
            leeway_s: 30,
            max_age_s: 300,
            subject_claim: "sub".to_string(),
        }
    }
}

/// The outcome of checking one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signature valid, times and audience fine. `expires_at`: unix seconds after
    /// which it no longer holds (JWT exp + leeway; comment ts + max_age_s), so a
    /// caller caching the verdict re-checks only time.
    Verified {
        subject: String,
        key: String,
        expires_at: Option<u64>,
    },
    /// `subject`: what the claim names, read without trusting it (None when
    /// unreadable), so the record still shows the claim.
    Rejected {
        subject: Option<String>,
        reason: Rejection,
    },
}

/// Why a claim was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Malformed(&'static str),
    UnsupportedAlgorithm(String),
    NoKey,
    BadSignature,
    Expired {
        at: u64,
    },
    NotYetValid {
        from: u64,
    },
    /// A claim must not be valid forever, so a JWT without `exp` is refused.
    NoExpiry,
    WrongAudience,
    NoSubject,
    Stale {
        ts: u64,
    },
}

impl Rejection {
    /// A short, stable label for metrics.
    /// Every [`Rejection::kind`], in declaration order (the labels of a
    /// counter per kind).
    pub const KINDS: [&'static str; 10] = [
        "malformed",
        "algorithm",
        "no_key",
        "signature",
        "expired",
        "not_yet_valid",
        "no_expiry",
        "audience",
        "no_subject",
        "stale",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::UnsupportedAlgorithm(_) => "algorithm",
            Rejection::NoKey => "no_key",
            Rejection::BadSignature => "signature",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::NoExpiry => "no_expiry",
            Rejection::WrongAudience => "audience",
            Rejection::NoSubject => "no_subject",
            Rejection::Stale { .. } => "stale",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(what) => write!(f, "malformed claim: {what}"),
            // Debug formatting quotes and escapes: the name comes from the client.
            Rejection::UnsupportedAlgorithm(alg) => write!(f, "algorithm {alg:?} is not accepted"),
            Rejection::NoKey => write!(f, "no configured key for the claim's algorithm and key id"),
            Rejection::BadSignature => write!(f, "signature does not match any configured key"),
            Rejection::Expired { at } => write!(f, "token expired at {}", Rfc3339(*at)),
            Rejection::NotYetValid { from } => {
                write!(f, "token not valid before {}", Rfc3339(*from))
            }
            Rejection::NoExpiry => write!(f, "token has no expiry (exp)"),
            Rejection::WrongAudience => {
                write!(f, "audience does not include the configured audience")
            }
            Rejection::NoSubject => write!(f, "claim names no end user"),
            Rejection::Stale { ts } => {
                write!(
                    f,
                    "claim timestamp {} is outside the accepted window",
                    Rfc3339(*ts)
                )
            }
        }
    }
}

/// Unix seconds shown as RFC 3339 UTC, without pulling in a date crate.
struct Rfc3339(u64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 % 86_400;
        // Howard Hinnant's civil_from_days; u64 seconds fit easily in i64 days.
        let z = (self.0 / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3_600,
            secs / 60 % 60,
            secs % 60
        )
    }
}
