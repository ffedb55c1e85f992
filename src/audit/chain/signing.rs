//! Ed25519 keys for checkpoints, through `ring` (already pgtrail's TLS
//! crypto): the private key is a PKCS#8 PEM file (`pgtrail keygen`, or
//! `openssl genpkey -algorithm ed25519`), created 0600; the public key a
//! SubjectPublicKeyInfo PEM file (`openssl pkey -pubout` reads and writes
//! the same).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A key file that cannot be used, and why.
#[derive(Debug)]
pub struct KeyError {
    pub path: PathBuf,
    pub why: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for KeyError {}

/// The private key checkpoints are signed with.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_id)
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key file.
    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let fail = |why: String| KeyError {
            path: path.to_path_buf(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let der = pem_body(&text, "PRIVATE KEY")
            .ok_or_else(|| fail("no PEM \"PRIVATE KEY\" block".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| fail(format!("not an Ed25519 PKCS#8 key ({e})")))?;
        crate::files::warn_if_readable(path, "audit.signing_key_file");
        let key_id = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The signature of `message`, hex.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex(self.pair.sign(message).as_ref())
    }

    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey {
            bytes,
            key_id: self.key_id.clone(),
        }
    }
}

/// A public key checkpoints are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
    key_id: String,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let fail = |why: &str| KeyError {
            path: path.to_path_buf(),
            why: why.into(),
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(&e.to_string()))?;
        let der =
            pem_body(&text, "PUBLIC KEY").ok_or_else(|| fail("no PEM \"PUBLIC KEY\" block"))?;
        let key = der
            .strip_prefix(&SPKI_PREFIX)
            .filter(|k| k.len() == 32)
            .ok_or_else(|| fail("not an Ed25519 public key"))?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(key);
        Ok(PublicKey {
            bytes,
            key_id: key_id(&bytes),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `signature_hex` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature_hex: &str) -> bool {
        let Some(sig) = unhex(signature_hex) else {
            return false;
        };
        UnparsedPublicKey::new(&signature::ED25519, &self.bytes)
            .verify(message, &sig)
            .is_ok()
    }

    fn pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.bytes);
        pem("PUBLIC KEY", &der)
    }
}

/// `pgtrail keygen`: a new key pair, the private file 0600.
pub fn keygen(private: &Path, public: &Path) -> io::Result<String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| io::Error::other("no randomness for a key"))?;
    crate::files::write_private(private, pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
        .map_err(|e| io::Error::new(e.source.kind(), e.to_string()))?;
    let key = SigningKey::load(private).map_err(|e| io::Error::other(e.to_string()))?;
    let public_key = key.public_key();
    std::fs::write(public, public_key.pem())?;
    Ok(public_key.key_id)
}

/// The first 16 hex digits of SHA-256 of the 32 public key bytes.
fn key_id(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    hex(&digest[..8])
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    B64.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_signs_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("k"), dir.path().join("k.pub"));
        let id = keygen(&private, &public).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&private).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let key = SigningKey::load(&private).unwrap();
        let pubkey = PublicKey::load(&public).unwrap();
        assert_eq!((key.key_id(), pubkey.key_id()), (id.as_str(), id.as_str()));
        let sig = key.sign_hex(b"checkpoint");
        assert!(pubkey.verifies(b"checkpoint", &sig));
        assert!(!pubkey.verifies(b"checkpoinT", &sig));
        assert!(!pubkey.verifies(b"checkpoint", "00"));
        let (other, other_pub) = (dir.path().join("o"), dir.path().join("o.pub"));
        keygen(&other, &other_pub).unwrap();
        assert!(!PublicKey::load(&other_pub)
            .unwrap()
            .verifies(b"checkpoint", &sig));
    }

    #[test]
    fn openssl_keys_are_read() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 v1) and `openssl pkey -pubout`.
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("k");
        let public = dir.path().join("k.pub");
        let ok = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&private)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: no openssl");
            return;
        }
        assert!(std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success());
        let key = SigningKey::load(&private).unwrap();
        let pubkey = PublicKey::load(&public).unwrap();
        assert!(pubkey.verifies(b"m", &key.sign_hex(b"m")));
    }
}
