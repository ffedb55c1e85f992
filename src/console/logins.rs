//! Logged-in sessions of the console: a random token in the cookie, only
//! its SHA-256 kept here (a memory dump does not hand out sessions), an
//! expiry, and the session's CSRF token for its forms. Logins live in
//! memory: restarting the console logs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::users::Role;

/// Who is logged in, as handlers see it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

struct Login {
    viewer: Viewer,
    expires: Instant,
}

/// At most this many logins are kept; the oldest go first.
const MAX_LOGINS: usize = 10_000;

pub struct Logins {
    by_hash: Mutex<HashMap<[u8; 32], Login>>,
    ttl: Duration,
}

/// 32 random bytes as hex; `None` when the system has no randomness (the
/// console then refuses logins rather than hand out guessable tokens).
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Logins {
    pub fn new(ttl: Duration) -> Logins {
        Logins {
            by_hash: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// A new login; returns the cookie token.
    pub fn start(&self, name: &str, role: Role) -> Option<String> {
        let token = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut map = self.by_hash.lock().ok()?;
        map.retain(|_, l| l.expires > now);
        if map.len() >= MAX_LOGINS {
            let oldest = map.iter().min_by_key(|(_, l)| l.expires).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            hash(&token),
            Login {
                viewer: Viewer {
                    name: name.to_string(),
                    role,
                    csrf,
                },
                expires: now + self.ttl,
            },
        );
        Some(token)
    }

    /// The viewer of an unexpired token. The map is keyed by the token's
    /// hash, so a lookup compares hashes, not the secret itself.
    pub fn viewer(&self, token: &str) -> Option<Viewer> {
        let map = self.by_hash.lock().ok()?;
        let login = map.get(&hash(token))?;
        (login.expires > Instant::now()).then(|| login.viewer.clone())
    }

    pub fn end(&self, token: &str) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.remove(&hash(token));
        }
    }
}

/// Constant-time comparison of a submitted CSRF token with the expected.
pub fn csrf_matches(expected: &str, submitted: &str) -> bool {
    expected.len() == submitted.len() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_end() {
        let logins = Logins::new(Duration::from_millis(50));
        let token = logins.start("ann", Role::Dba).unwrap();
        assert_eq!(token.len(), 64);
        let v = logins.viewer(&token).unwrap();
        assert_eq!((v.name.as_str(), v.role), ("ann", Role::Dba));
        assert!(logins.viewer("not a token").is_none());
        assert!(csrf_matches(&v.csrf, &v.csrf.clone()));
        assert!(!csrf_matches(&v.csrf, "x"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(logins.viewer(&token).is_none());
        let t2 = logins.start("ann", Role::Auditor).unwrap();
        logins.end(&t2);
        assert!(logins.viewer(&t2).is_none());
    }
}
