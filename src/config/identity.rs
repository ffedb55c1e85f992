//! `[identity]`: end-user claims (`crate::identity`): whether pgtrail reads
//! them, the keys signed claims are verified with, and the roles whose
//! statements must name a verified end user.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Read claims from comments, `pgtrail.*` settings and startup
    /// options (on by default; off: records carry no end user).
    pub claims: bool,
    /// The `aud` a token must carry; empty: not checked.
    pub audience: String,
    /// Clock skew allowed on a token's `exp` and `nbf`, seconds.
    pub leeway_s: u64,
    /// How long a comment's HMAC (`pgtrail_ts`) holds, seconds.
    pub max_claim_age_s: u64,
    /// The token claim naming the end user.
    pub subject_claim: String,
    /// `application_name` convention: the text after the last occurrence
    /// of this separator is the end user (`shop/alice` with `/`); empty:
    /// not read.
    pub application_name_separator: String,
    /// Keys for signed claims: HMAC secrets, PEM public keys (Ed25519,
    /// RSA) or JWKS files.
    pub keys: Vec<IdentityKey>,
    /// Per database role (or authenticated user).
    pub roles: BTreeMap<String, RoleIdentity>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            claims: true,
            audience: String::new(),
            leeway_s: 30,
            max_claim_age_s: 300,
            subject_claim: "sub".into(),
            application_name_separator: String::new(),
            keys: Vec::new(),
            roles: BTreeMap::new(),
        }
    }
}

/// One `[[identity.keys]]`: exactly one of `hmac_secret`,
/// `public_key_file`, `jwks_file`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityKey {
    /// Matched against a token's `kid` or a comment's `pgtrail_kid`.
    pub id: Option<String>,
    pub hmac_secret: Option<Secret>,
    pub public_key_file: Option<PathBuf>,
    pub jwks_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleIdentity {
    /// Statements of this role without a verified end user are refused
    /// (SQLSTATE 28000).
    pub require_verified_end_user: bool,
}

impl IdentityKey {
    /// The verifier's form of it.
    pub fn spec(&self) -> crate::identity::verify::KeySpec {
        crate::identity::verify::KeySpec {
            id: self.id.clone(),
            hmac_secret: self.hmac_secret.as_ref().map(|s| s.0.clone()),
            public_key_file: self.public_key_file.clone(),
            jwks_file: self.jwks_file.clone(),
        }
    }
}
