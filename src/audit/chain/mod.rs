//! Tamper evidence. Every record of an instance carries `chain`:
//! SHA-256 over the chain value before it and the record's canonical bytes
//! (`canonical`, specified in docs/integrity.md), so changing, removing,
//! inserting or reordering a record changes every chain value after it.
//! Checkpoints (`checkpoint`) sign a chain value with Ed25519 (`signing`)
//! and are kept outside ClickHouse too; `verify` walks a trail again.
//!
//! The chain is the record sequence's, not a sink's: JSON Lines and
//! ClickHouse hold the same values. A sink that could not keep some records
//! (`fail_open`) writes a gap record in their place whose `chain` is the
//! value after the last of them, where the chain goes on.

pub mod canonical;
pub mod checkpoint;
pub mod signing;
pub mod state;
pub mod verify;

use serde::{Deserialize, Deserializer, Serializer};
use sha2::{Digest, Sha256};

use super::record::Record;

/// A chain value: 32 bytes of SHA-256 output.
pub type ChainValue = [u8; 32];

/// The value the first record of an instance continues from.
pub const GENESIS: ChainValue = [0; 32];

/// The chain value after `previous` and a record of these canonical bytes.
pub fn next(previous: &ChainValue, canonical: &[u8]) -> ChainValue {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(canonical);
    h.finalize().into()
}

/// Links records in seq order: the writer's one `Chainer` gives each record
/// its `chain`.
pub struct Chainer {
    last: ChainValue,
    /// Reused for each record's canonical bytes.
    scratch: Vec<u8>,
}

impl Chainer {
    /// Continues from `last` (`GENESIS` for a new instance).
    pub fn new(last: ChainValue) -> Chainer {
        Chainer {
            last,
            scratch: Vec::with_capacity(1024),
        }
    }

    /// The value the next record continues from.
    pub fn last(&self) -> ChainValue {
        self.last
    }

    /// Sets `record.chain` to the value after it and moves on to it.
    pub fn link(&mut self, record: &mut Record) {
        self.scratch.clear();
        canonical::encode(record, &mut self.scratch);
        self.last = next(&self.last, &self.scratch);
        record.header_mut().chain = Some(self.last);
    }
}

/// A chain value as lowercase hex, on the stack: rows borrow it as `&str`.
#[derive(Clone, Copy)]
pub struct ChainText {
    bytes: [u8; 64],
    len: u8,
}

impl ChainText {
    /// Empty for an unknown value.
    pub fn of(value: Option<&ChainValue>) -> ChainText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 64];
        let Some(value) = value else {
            return ChainText { bytes, len: 0 };
        };
        for (i, b) in value.iter().enumerate() {
            bytes[2 * i] = HEX[usize::from(b >> 4)];
            bytes[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        ChainText { bytes, len: 64 }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Default for ChainText {
    fn default() -> Self {
        ChainText::of(None)
    }
}

impl std::fmt::Debug for ChainText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ChainText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// 64 hex digits as a chain value; `None` for anything else (the empty
/// text of an unknown value included).
pub fn parse_hex(text: &str) -> Option<ChainValue> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Serde for `RecordHeader::chain`: hex text, `""` when unknown; absent in
/// records of earlier builds.
pub(crate) mod hex_text {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<ChainValue>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(ChainText::of(value.as_ref()).as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ChainValue>, D::Error> {
        let text = String::deserialize(d)?;
        Ok(parse_hex(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let v: ChainValue = core::array::from_fn(|i| (i * 7) as u8);
        let text = ChainText::of(Some(&v));
        assert_eq!(text.as_str().len(), 64);
        assert_eq!(parse_hex(text.as_str()), Some(v));
        assert_eq!(ChainText::of(None).as_str(), "");
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn next_is_sha256_of_previous_then_bytes() {
        // hashlib.sha256(b"\0" * 32 + b"abc").hexdigest() in Python.
        let v = next(&GENESIS, b"abc");
        assert_eq!(
            ChainText::of(Some(&v)).as_str(),
            "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370"
        );
    }
}
