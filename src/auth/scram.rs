//! Server side of SCRAM-SHA-256 (RFC 5802/7677) against PostgreSQL-format
//! verifiers. Hashing and HMAC come from the RustCrypto crates; this module
//! only assembles the messages and compares keys in constant time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A parsed `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(<redacted>)")
    }
}

impl Verifier {
    pub fn parse(s: &str) -> Option<Verifier> {
        let rest = s.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iter_salt.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(Verifier {
            iterations: iterations.parse().ok().filter(|&i| i > 0)?,
            salt: B64.decode(salt).ok()?,
            stored_key: B64.decode(stored).ok()?.try_into().ok()?,
            server_key: B64.decode(server).ok()?.try_into().ok()?,
        })
    }

    /// A verifier no password matches, with a salt derived from the user name
    /// and the users file's mock secret (the same on every instance and
    /// across restarts), so that an unknown user goes through the same
    /// exchange as a known one and learns nothing.
    pub fn mock(user: &[u8], mock_secret: &[u8]) -> Verifier {
        let salt = hmac(mock_secret, user)[..16].to_vec();
        Verifier {
            iterations: 4096,
            salt,
            stored_key: [0; 32],
            server_key: [0; 32],
        }
    }

    /// Checks a cleartext password (for `password` authentication).
    pub fn matches_password(&self, password: &[u8]) -> bool {
        let salted = hi(&saslprep(password), &self.salt, self.iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        stored.ct_eq(&self.stored_key).into()
    }
}

/// SASLprep the way PostgreSQL does: skipped for text it cannot prepare.
fn saslprep(password: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(password)
        .ok()
        .and_then(|s| stringprep::saslprep(s).ok())
    {
        Some(p) => p.into_owned().into_bytes(),
        None => password.to_vec(),
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (RFC 5802's Hi).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    /// The client's message is not valid SCRAM.
    Malformed(&'static str),
    /// Well-formed, but the proof does not match: wrong password.
    WrongProof,
}

/// The server's state between its first message and the client's final one.
pub struct ScramServer {
    verifier: Verifier,
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
    nonce: String,
}

impl ScramServer {
    /// Takes the client-first message and returns the server-first message.
    pub fn start(
        verifier: Verifier,
        client_first: &[u8],
    ) -> Result<(ScramServer, String), ScramError> {
        let msg =
            std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2 header: channel binding flag, optional authzid, then the bare message.
        let mut parts = msg.splitn(3, ',');
        let cbind = parts.next().ok_or(ScramError::Malformed("empty message"))?;
        let authzid = parts
            .next()
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        let bare = parts
            .next()
            .ok_or(ScramError::Malformed("missing client-first-bare"))?;
        if !matches!(cbind, "n" | "y") {
            return Err(ScramError::Malformed("channel binding was not offered"));
        }
        if !authzid.is_empty() {
            return Err(ScramError::Malformed(
                "authorization identities are not supported",
            ));
        }
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("missing client nonce"))?;
        if bare.split(',').any(|a| a.starts_with("m=")) {
            return Err(ScramError::Malformed(
                "mandatory extensions are not supported",
            ));
        }
        let mut raw = [0u8; 18];
        getrandom::fill(&mut raw).map_err(|_| ScramError::Malformed("no randomness available"))?;
        let nonce = format!("{client_nonce}{}", B64.encode(raw));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&verifier.salt),
            verifier.iterations
        );
        let state = ScramServer {
            verifier,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            gs2_header: format!("{cbind},{authzid},"),
            nonce,
        };
        Ok((state, server_first))
    }

    /// Checks the client-final message; on success returns server-final.
    pub fn finish(self, client_final: &[u8]) -> Result<String, ScramError> {
        let msg =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("missing c="))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("missing r="))?;
        if B64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::Malformed("channel binding data does not match"));
        }
        if nonce != self.nonce {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("invalid proof"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(signature.iter()) {
            *k ^= s;
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(stored.ct_eq(&self.verifier.stored_key)) {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    fn exchange(verifier: &Verifier, password: &[u8]) -> Result<(), ScramError> {
        let mut client = ScramSha256::new(password, ChannelBinding::unsupported());
        let (server, server_first) = ScramServer::start(verifier.clone(), client.message())?;
        client
            .update(server_first.as_bytes())
            .map_err(|_| ScramError::Malformed("client"))?;
        let server_final = server.finish(client.message())?;
        client
            .finish(server_final.as_bytes())
            .map_err(|_| ScramError::Malformed("server signature"))
    }

    #[test]
    fn verifies_against_postgres_protocol_client() {
        let v = Verifier::parse(&postgres_protocol::password::scram_sha_256(b"s3cret")).unwrap();
        assert_eq!(exchange(&v, b"s3cret"), Ok(()));
        assert_eq!(exchange(&v, b"wrong"), Err(ScramError::WrongProof));
        assert!(v.matches_password(b"s3cret"));
        assert!(!v.matches_password(b"s3cre"));
    }

    #[test]
    fn mock_verifier_rejects_everything() {
        let v = Verifier::mock(b"nobody", b"instance");
        assert_eq!(exchange(&v, b""), Err(ScramError::WrongProof));
        assert_eq!(v.salt, Verifier::mock(b"nobody", b"instance").salt);
    }

    #[test]
    fn rejects_malformed_messages() {
        assert!(Verifier::parse("md5abc").is_none());
        assert!(Verifier::parse("SCRAM-SHA-256$0:AAAA$AAAA:AAAA").is_none());
        let v = Verifier::mock(b"u", b"k");
        assert!(ScramServer::start(v.clone(), b"p=tls-server-end-point,,n=,r=abc").is_err());
        assert!(ScramServer::start(v.clone(), b"n,,n=").is_err());
        let (s, _) = ScramServer::start(v, b"n,,n=,r=abc").unwrap();
        assert!(matches!(
            s.finish(b"c=biws,r=wrong,p=AAAA"),
            Err(ScramError::Malformed(_))
        ));
    }
}
