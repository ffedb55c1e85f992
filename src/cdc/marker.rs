//! pgtrail's attribution markers: what a session leaves inside a client's
//! transaction so that the decoding stream can name who made its changes.
//!
//! PostgreSQL's decoding stream carries a transaction's xid, never its
//! session. Just before a client's transaction ends, the relay pipelines
//! [`MarkerSigner::statement_sql`] into it: a transactional logical message
//! (`pg_logical_emit_message(true, 'pgtrail', ...)`), emitted only when the
//! transaction already has an xid, so read-only transactions write nothing.
//! The message is decoded inside that transaction, in order with its
//! changes, and says which session and transaction of pgtrail it was.
//!
//! Any role can emit a message with the `pgtrail` prefix, so the content is
//! signed: HMAC-SHA256 under a per-instance key ([`MarkerKey`], a 0600
//! file that every pgtrail instance in front of the same server shares).
//! A message that does not verify is [`Forged`] and is recorded as such;
//! its transaction's changes are not attributed by it.
//!
//! Content, all integers big-endian:
//! `version (1) | transaction_id (16) | boundary kind (1) + statement index
//!  (u32, all ones for none) | session_id len (u16) + bytes |
//!  user | db_role | client_addr | application_name (each u16 len + bytes) |
//!  HMAC-SHA256 of everything before (32)`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of pgtrail's logical messages.
pub const PREFIX: &str = "pgtrail";
const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const KEY_LEN: usize = 32;
/// What `keyed_hash` puts before a value (NUL-terminated, so no value can
/// extend it).
const REDACT_DOMAIN: &[u8] = b"pgtrail column redaction v1\0";

/// The key markers are signed with: 32 random bytes, kept hex-encoded in a
/// file created 0600 on first use.
#[derive(Clone)]
pub struct MarkerKey([u8; KEY_LEN]);

impl std::fmt::Debug for MarkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerKey(<redacted>)")
    }
}

/// Why the key file could not be used.
#[derive(Debug)]
pub enum MarkerKeyError {
    Read(std::path::PathBuf, io::Error),
    Invalid(std::path::PathBuf),
    Random(getrandom::Error),
    Write(crate::files::WriteError),
}

impl std::fmt::Display for MarkerKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MarkerKeyError::Read(p, e) => write!(f, "cannot read marker key {}: {e}", p.display()),
            MarkerKeyError::Invalid(p) => {
                write!(f, "marker key {} is not 64 hexadecimal digits", p.display())
            }
            MarkerKeyError::Random(e) => write!(f, "no randomness for a marker key: {e}"),
            MarkerKeyError::Write(e) => write!(f, "cannot write marker key: {e}"),
        }
    }
}

impl std::error::Error for MarkerKeyError {}

impl MarkerKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MarkerKey(bytes)
    }

    /// Reads the key at `path`, or makes one there (0600) when the file
    /// does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, MarkerKeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => parse_hex_key(text.trim())
                .map(MarkerKey)
                .ok_or_else(|| MarkerKeyError::Invalid(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut bytes = [0u8; KEY_LEN];
                getrandom::fill(&mut bytes).map_err(MarkerKeyError::Random)?;
                let mut text = hex(&bytes);
                text.push('\n');
                crate::files::write_private(path, text.as_bytes())
                    .map_err(MarkerKeyError::Write)?;
                Ok(MarkerKey(bytes))
            }
            Err(e) => Err(MarkerKeyError::Read(path.to_path_buf(), e)),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length, so this cannot fail.
        <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
    }
}

fn parse_hex_key(text: &str) -> Option<[u8; KEY_LEN]> {
    let raw = text.as_bytes();
    if raw.len() != KEY_LEN * 2 {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, pair) in raw.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Which of the transaction's changes a marker speaks for: those decoded
/// since the previous marker. `After` follows one statement; `End` comes
/// just before the transaction ends; `Before` goes just before a statement
/// that may write (`next`) when others may have written since the previous
/// marker, and also names `next` for the changes after it, a claim the
/// writer keeps only if the session saw no other statement that may write
/// before the transaction ended (`TransactionEvent::tail_statement`). An
/// index (the statement's, within its transaction) is there only when those
/// changes can be that one statement's and no other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    End(Option<u32>),
    /// Right after a statement: sent by earlier builds, still read (a
    /// slot may hold their markers across an upgrade).
    After(Option<u32>),
    Before {
        done: Option<u32>,
        next: Option<u32>,
    },
}

impl Boundary {
    /// The statement the changes before this marker are exactly from.
    pub fn statement(self) -> Option<u32> {
        match self {
            Boundary::End(s) | Boundary::After(s) => s,
            Boundary::Before { done, .. } => done,
        }
    }

    /// The statement this marker claims the changes after it for.
    pub fn next(self) -> Option<u32> {
        match self {
            Boundary::Before { next, .. } => next,
            Boundary::End(_) | Boundary::After(_) => None,
        }
    }

    fn encode(self, out: &mut Vec<u8>) {
        let index = |i: Option<u32>| i.unwrap_or(u32::MAX).to_be_bytes();
        match self {
            Boundary::End(i) => {
                out.push(0);
                out.extend_from_slice(&index(i));
            }
            Boundary::After(i) => {
                out.push(1);
                out.extend_from_slice(&index(i));
            }
            Boundary::Before { done, next } => {
                out.push(2);
                out.extend_from_slice(&index(done));
                out.extend_from_slice(&index(next));
            }
        }
    }

    /// The boundary at the start of `raw`, and how many bytes it took.
    fn decode(raw: &[u8]) -> Option<(Boundary, usize)> {
        let index = |at: usize| -> Option<Option<u32>> {
            let i = u32::from_be_bytes(raw.get(at..at + 4)?.try_into().ok()?);
            Some((i != u32::MAX).then_some(i))
        };
        match raw.first()? {
            0 => Some((Boundary::End(index(1)?), 5)),
            1 => Some((Boundary::After(index(1)?), 5)),
            2 => Some((
                Boundary::Before {
                    done: index(1)?,
                    next: index(5)?,
                },
                9,
            )),
            _ => None,
        }
    }
}

/// Who a marker says made a transaction's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub transaction_id: uuid::Uuid,
    pub boundary: Boundary,
    pub session_id: Arc<str>,
    pub user: Arc<str>,
    pub db_role: Arc<str>,
    pub client_addr: Arc<str>,
    pub application_name: Arc<str>,
}

/// A `pgtrail` message that is not pgtrail's: a bad signature, or content
/// that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forged {
    Malformed,
    BadSignature,
    /// A genuine marker of another transaction: captured and emitted again.
    Replayed,
}

/// Signs markers and checks them: one per server, shared by its sessions
/// and its decoding consumer.
#[derive(Clone)]
pub struct MarkerSigner {
    /// The HMAC with the key already absorbed (its inner and outer pads):
    /// each use clones it instead of hashing the key's two blocks again.
    keyed: HmacSha256,
}

impl std::fmt::Debug for MarkerSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerSigner(<redacted>)")
    }
}

impl MarkerSigner {
    pub fn new(key: MarkerKey) -> Self {
        MarkerSigner { keyed: key.mac() }
    }

    /// The signed content of `marker`.
    pub fn sign(&self, marker: &Marker) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + marker.session_id.len() + marker.user.len());
        out.push(VERSION);
        out.extend_from_slice(marker.transaction_id.as_bytes());
        marker.boundary.encode(&mut out);
        for field in fields(marker) {
            // A field longer than 65,535 bytes is cut (names and addresses
            // never are; the signature covers what is written).
            let bytes = &field.as_bytes()[..field.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let mut mac = self.keyed.clone();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The SQL a session pipelines just before its transaction ends: emits
    /// the signed marker when the transaction has an xid (it wrote), and
    /// nothing otherwise. Every name is schema-qualified so that a user's
    /// function cannot stand in, and the content goes as hex through
    /// `decode`, which reads the same under any `standard_conforming_strings`.
    pub fn statement_sql(&self, marker: &Marker) -> String {
        let content = hex(&self.sign(marker));
        format!(
            "SELECT CASE WHEN pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL \
             THEN pg_catalog.pg_logical_emit_message(true, '{PREFIX}', \
             pg_catalog.decode('{content}', 'hex')) END"
        )
    }

    /// A keyed hash of a column value for `cdc.redact_columns`: `hmac:` and
    /// the hex HMAC-SHA256 of the value under the marker key, after a
    /// domain-separation prefix so that no hash can pass for a marker's
    /// signature (whose input starts with the version byte 1). Equal values
    /// hash equal, so a redacted column still shows when it changed.
    pub fn keyed_hash(&self, value: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(REDACT_DOMAIN);
        mac.update(value);
        let mut out = String::from("hmac:");
        out.push_str(&hex(&mac.finalize().into_bytes()));
        out
    }

    /// The marker as a statement prepared once per session: the signed
    /// content goes as its one `bytea` parameter (in binary), so each
    /// marker is a Bind and an Execute, not a parse and a plan.
    pub const PREPARED_SQL: &'static str =
        "SELECT CASE WHEN pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL \
         THEN pg_catalog.pg_logical_emit_message(true, 'pgtrail', $1) END";

    /// Checks a decoded message's content.
    pub fn verify(&self, content: &[u8]) -> Result<Marker, Forged> {
        if content.len() < 1 + 16 + 5 + TAG_LEN || content[0] != VERSION {
            return Err(Forged::Malformed);
        }
        let (signed, tag) = content.split_at(content.len() - TAG_LEN);
        let mut mac = self.keyed.clone();
        mac.update(signed);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(Forged::BadSignature);
        }
        parse(signed).ok_or(Forged::Malformed)
    }
}

fn fields(m: &Marker) -> [&str; 5] {
    [
        &m.session_id,
        &m.user,
        &m.db_role,
        &m.client_addr,
        &m.application_name,
    ]
}

fn parse(signed: &[u8]) -> Option<Marker> {
    let id: [u8; 16] = signed.get(1..17)?.try_into().ok()?;
    let (boundary, len) = Boundary::decode(signed.get(17..)?)?;
    let mut rest = signed.get(17 + len..)?;
    let mut text = || -> Option<Arc<str>> {
        let len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let value = Arc::from(std::str::from_utf8(rest.get(2..2 + len)?).ok()?);
        rest = &rest[2 + len..];
        Some(value)
    };
    let marker = Marker {
        transaction_id: uuid::Uuid::from_bytes(id),
        boundary,
        session_id: text()?,
        user: text()?,
        db_role: text()?,
        client_addr: text()?,
        application_name: text()?,
    };
    rest.is_empty().then_some(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> Marker {
        Marker {
            transaction_id: uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0007),
            boundary: Boundary::After(Some(3)),
            session_id: "0192aaaa-0000-7000-8000-000000000001".into(),
            user: "alice".into(),
            db_role: "app".into(),
            client_addr: "10.0.0.7".into(),
            application_name: "billing|app".into(),
        }
    }

    #[test]
    fn signed_marker_verifies_to_itself() {
        let signer = MarkerSigner::new(MarkerKey::from_bytes([7; 32]));
        let content = signer.sign(&marker());
        assert_eq!(signer.verify(&content), Ok(marker()));
    }

    #[test]
    fn every_boundary_round_trips() {
        let signer = MarkerSigner::new(MarkerKey::from_bytes([7; 32]));
        for boundary in [
            Boundary::End(None),
            Boundary::End(Some(0)),
            Boundary::After(Some(3)),
            Boundary::Before {
                done: Some(1),
                next: Some(3),
            },
            Boundary::Before {
                done: None,
                next: None,
            },
        ] {
            let m = Marker {
                boundary,
                ..marker()
            };
            assert_eq!(signer.verify(&signer.sign(&m)), Ok(m));
        }
        let before = Boundary::Before {
            done: Some(1),
            next: Some(3),
        };
        assert_eq!((before.statement(), before.next()), (Some(1), Some(3)));
        assert_eq!(Boundary::After(Some(2)).next(), None);
    }

    #[test]
    fn another_key_or_a_changed_byte_is_forged() {
        let signer = MarkerSigner::new(MarkerKey::from_bytes([7; 32]));
        let other = MarkerSigner::new(MarkerKey::from_bytes([8; 32]));
        let content = other.sign(&marker());
        assert_eq!(signer.verify(&content), Err(Forged::BadSignature));
        let mut changed = signer.sign(&marker());
        changed[20] ^= 1;
        assert_eq!(signer.verify(&changed), Err(Forged::BadSignature));
        assert_eq!(signer.verify(b"alice did it"), Err(Forged::Malformed));
    }

    #[test]
    fn sql_carries_the_content_as_hex_and_qualified_names() {
        let signer = MarkerSigner::new(MarkerKey::from_bytes([1; 32]));
        let sql = signer.statement_sql(&marker());
        let content = hex(&signer.sign(&marker()));
        assert!(sql.contains(&content));
        assert!(sql.contains("pg_catalog.pg_logical_emit_message(true, 'pgtrail'"));
        assert!(sql.is_ascii());
    }

    #[test]
    fn keyed_hash_is_stable_per_key_and_not_a_signature() {
        let signer = MarkerSigner::new(MarkerKey::from_bytes([7; 32]));
        let other = MarkerSigner::new(MarkerKey::from_bytes([8; 32]));
        let h = signer.keyed_hash(b"4111 1111 1111 1111");
        assert!(h.starts_with("hmac:") && h.len() == 5 + 64, "{h}");
        assert_eq!(h, signer.keyed_hash(b"4111 1111 1111 1111"));
        assert_ne!(h, signer.keyed_hash(b"4111 1111 1111 1112"));
        assert_ne!(h, other.keyed_hash(b"4111 1111 1111 1111"));
        let mut mac = MarkerKey::from_bytes([7; 32]).mac();
        mac.update(b"4111 1111 1111 1111");
        assert_ne!(h[5..], hex(&mac.finalize().into_bytes()));
    }

    #[test]
    fn key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marker.key");
        let a = MarkerKey::load_or_create(&path).unwrap();
        let b = MarkerKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        std::fs::write(&path, "zz").unwrap();
        assert!(matches!(
            MarkerKey::load_or_create(&path),
            Err(MarkerKeyError::Invalid(_))
        ));
    }
}
