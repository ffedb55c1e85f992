//! RowBinary rows encoded by pgtrail itself, so the spool can hold a row
//! exactly as ClickHouse takes it and the sender ships spooled bytes
//! without decoding or re-encoding them (the `clickhouse` crate keeps its
//! encoder private).
//!
//! The encoder is a serde serializer for the row types of `rows`, with the
//! wire format of the RowBinary spec: little-endian integers, booleans as
//! one byte, strings and arrays prefixed with their LEB128 length,
//! `Nullable` as a 1 (null) or 0 (value) byte, tuples and structs as their
//! fields in order; `UUID` is the `(u64, u64)` pair
//! `clickhouse::serde::uuid` hands a binary serializer.
//! `RawRow` then passes such bytes to the crate's `Insert`.

use std::fmt;
use std::marker::PhantomData;

use clickhouse::Row;
use serde::ser::{self, Impossible, Serialize, SerializeSeq, SerializeStruct, SerializeTuple};

use super::rows::AnyRow;
use crate::audit::record::Record;

/// The table a row belongs to and its column layout; as a `u8`, also the
/// tag of the row's spool frame (`spool_rows`), whose body is the row as
/// `encode_row` makes it.
///
/// The tag fixes the row's columns as well as its table: a release that
/// changes a row type must give the new layout new tags and keep inserting
/// rows of the old tags under their own column list (ClickHouse fills
/// columns added since with their defaults), because a spool outlives the
/// binary that wrote it. An older pgtrail cannot read the frames of a newer
/// layout: drain the spool before a downgrade. `b'{'` is never a tag: the
/// JSON frames of earlier builds read under it.
///
/// Tags so far: this build writes 10, 11, 14 and 15 (schema version 7:
/// `chain` on every table, `skipped_seqs` on `gaps`, `checkpoints` and
/// `lifecycle`) and 17 to 19 (schema version 9: `statements`,
/// `transactions` and `changes` with the end user they name). Earlier
/// layouts, all still read and inserted under their own column lists: 1
/// and 2 before schema version 4 (no `backend_pid`, no `effective_role`),
/// 4 the `statements` layout before schema version 5 (no
/// `transaction_id`), 3, 5, 6, 7 and 8 before `chain`, 9 `statements`
/// before schema version 8, 16 `statements` and 12 and 13 `transactions`
/// and `changes` before schema version 9. The next new layout takes 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `statements` before `backend_pid` and `effective_role` (`rows::StatementRowV1`).
    StatementsV1 = 1,
    /// `sessions` before `backend_pid` and `effective_role` (`rows::SessionRowV1`).
    SessionsV1 = 2,
    /// The layouts before `chain` (and, for `gaps`, `skipped_seqs`).
    GapsV1 = 3,
    /// `statements` before `transaction_id` (`rows::StatementRowV2`).
    StatementsV2 = 4,
    SessionsV2 = 5,
    StatementsV3 = 6,
    TransactionsV1 = 7,
    ChangesV1 = 8,
    /// `statements` before schema version 8's columns.
    StatementsV4 = 9,
    Sessions = 10,
    Gaps = 11,
    /// `transactions` before schema version 9's end-user columns.
    TransactionsV2 = 12,
    /// `changes` before schema version 9's end-user columns.
    ChangesV2 = 13,
    Checkpoints = 14,
    Lifecycle = 15,
    /// `statements` before schema version 9's end-user columns.
    StatementsV5 = 16,
    Statements = 17,
    Transactions = 18,
    Changes = 19,
}

impl Table {
    /// Every tag, in the order a batch inserts them: older layouts first.
    pub const ALL: [Table; 19] = [
        Table::StatementsV1,
        Table::SessionsV1,
        Table::GapsV1,
        Table::StatementsV2,
        Table::SessionsV2,
        Table::StatementsV3,
        Table::TransactionsV1,
        Table::ChangesV1,
        Table::StatementsV4,
        Table::StatementsV5,
        Table::TransactionsV2,
        Table::ChangesV2,
        Table::Statements,
        Table::Sessions,
        Table::Transactions,
        Table::Changes,
        Table::Checkpoints,
        Table::Lifecycle,
        Table::Gaps,
    ];

    pub fn from_tag(tag: u8) -> Option<Table> {
        Table::ALL.into_iter().find(|t| *t as u8 == tag)
    }

    /// How many of its table's columns (`schema::table_columns`, in
    /// order) come after this layout's last: the columns added since.
    /// `None` for the layouts that lack columns in between (tags 1, 2 and
    /// 4, `rows::legacy`): theirs are no prefix of the table's.
    pub fn columns_after(self) -> Option<usize> {
        match self {
            Table::StatementsV1 | Table::SessionsV1 | Table::StatementsV2 => None,
            // Before `skipped_seqs` and `chain`.
            Table::GapsV1 => Some(2),
            // Before `chain`.
            Table::SessionsV2 => Some(1),
            // Before `chain`, 8's and 9's columns.
            Table::StatementsV3 => Some(13),
            // Before `chain` and 9's columns.
            Table::TransactionsV1 | Table::ChangesV1 => Some(7),
            // Before 8's and 9's columns.
            Table::StatementsV4 => Some(12),
            // Before 9's columns.
            Table::StatementsV5 | Table::TransactionsV2 | Table::ChangesV2 => Some(6),
            Table::Statements
            | Table::Sessions
            | Table::Gaps
            | Table::Transactions
            | Table::Changes
            | Table::Checkpoints
            | Table::Lifecycle => Some(0),
        }
    }

    /// The table its rows go to.
    pub fn name(self) -> &'static str {
        match self {
            Table::StatementsV1
            | Table::StatementsV2
            | Table::StatementsV3
            | Table::StatementsV4
            | Table::StatementsV5
            | Table::Statements => "statements",
            Table::SessionsV1 | Table::SessionsV2 | Table::Sessions => "sessions",
            Table::GapsV1 | Table::Gaps => "gaps",
            Table::TransactionsV1 | Table::TransactionsV2 | Table::Transactions => "transactions",
            Table::ChangesV1 | Table::ChangesV2 | Table::Changes => "changes",
            Table::Checkpoints => "checkpoints",
            Table::Lifecycle => "lifecycle",
        }
    }
}

/// A row ready for its table: the spool's unit, and what the sender
/// thread receives in memory mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRow {
    pub table: Table,
    pub row: Vec<u8>,
}

/// The ClickHouse row of a record.
pub fn encode_record(record: &Record) -> Result<EncodedRow, EncodeError> {
    let mut row = Vec::new();
    let table = encode_row(&AnyRow::from_record(record), &mut row)?;
    Ok(EncodedRow { table, row })
}

/// Appends the RowBinary encoding of `row` to `out`; says which table.
pub fn encode_row(row: &AnyRow, out: &mut Vec<u8>) -> Result<Table, EncodeError> {
    let mut ser = Encoder { out };
    match row {
        AnyRow::Statement(r) => r.serialize(&mut ser).map(|()| Table::Statements),
        AnyRow::Session(r) => r.serialize(&mut ser).map(|()| Table::Sessions),
        AnyRow::Gap(r) => r.serialize(&mut ser).map(|()| Table::Gaps),
        AnyRow::Transaction(r) => r.serialize(&mut ser).map(|()| Table::Transactions),
        AnyRow::Change(r) => r.serialize(&mut ser).map(|()| Table::Changes),
        AnyRow::Checkpoint(r) => r.serialize(&mut ser).map(|()| Table::Checkpoints),
        AnyRow::Lifecycle(r) => r.serialize(&mut ser).map(|()| Table::Lifecycle),
    }
}

/// The columns every row starts with: `instance_id`, `seq`, `event_time`
/// (after the 16 bytes of `event_id`). `None` for bytes that are not a row.
pub fn row_header(row: &[u8]) -> Option<(&[u8], u64, i64)> {
    let rest = row.get(16..)?;
    let (len, used) = read_leb128(rest)?;
    let len = usize::try_from(len).ok()?;
    let instance = rest.get(used..used.checked_add(len)?)?;
    let rest = &rest[used + len..];
    let seq = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let time = i64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
    Some((instance, seq, time))
}

fn read_leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn put_leb128(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes already in RowBinary, written to an `Insert` for table `T` (whose
/// columns they follow). Written as 8-byte words and a tail of single
/// bytes, which the crate's serializer copies as they are.
pub struct RawRow<'a, T> {
    pub bytes: &'a [u8],
    pub table: PhantomData<T>,
}

impl<T: Row> Row for RawRow<'_, T> {
    const COLUMN_NAMES: &'static [&'static str] = T::COLUMN_NAMES;
}

impl<T> Serialize for RawRow<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let words = self.bytes.chunks_exact(8);
        let tail = words.remainder();
        let mut t = serializer.serialize_tuple(self.bytes.len() / 8 + tail.len())?;
        for word in words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            t.serialize_element(&u64::from_le_bytes(w))?;
        }
        for b in tail {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

#[derive(Debug)]
pub struct EncodeError(String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RowBinary encoding: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

impl From<EncodeError> for std::io::Error {
    fn from(e: EncodeError) -> Self {
        std::io::Error::other(e)
    }
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

fn unsupported(what: &str) -> EncodeError {
    EncodeError(format!("{what} has no RowBinary form in pgtrail's rows"))
}

macro_rules! le {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), EncodeError> {
            self.out.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &mut Encoder<'a> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), EncodeError>;
    type SerializeTupleVariant = Impossible<(), EncodeError>;
    type SerializeMap = Impossible<(), EncodeError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), EncodeError>;

    le!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_f32: f32, serialize_f64: f64);

    fn is_human_readable(&self) -> bool {
        false
    }
    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out.push(u8::from(v));
        Ok(())
    }
    fn serialize_char(self, _: char) -> Result<(), EncodeError> {
        Err(unsupported("char"))
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        put_leb128(self.out, v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.out.push(1);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), EncodeError> {
        self.out.push(0);
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        Err(unsupported("()"))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), EncodeError> {
        Err(unsupported(name))
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), EncodeError> {
        Err(unsupported(name))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), EncodeError> {
        Err(unsupported(name))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, EncodeError> {
        let len = len.ok_or_else(|| unsupported("a sequence of unknown length"))?;
        put_leb128(self.out, len as u64);
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(unsupported(name))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(unsupported(name))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(unsupported("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(unsupported(name))
    }
}

/// Sequences and tuples: their elements in order (a sequence's length
/// prefix is written by `serialize_seq`).
macro_rules! elements {
    ($($kind:ident),*) => {$(
        impl<'a> $kind for &mut Encoder<'a> {
            type Ok = ();
            type Error = EncodeError;
            fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
                v.serialize(&mut **self)
            }
            fn end(self) -> Result<(), EncodeError> {
                Ok(())
            }
        }
    )*};
}

elements!(SerializeSeq, SerializeTuple);

impl<'a> SerializeStruct for &mut Encoder<'a> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::rows::GapRow;
    use super::*;

    #[test]
    fn a_gap_row_has_the_spec_layout() {
        let id = uuid::Uuid::from_u64_pair(0x0102_0304_0506_0708, 0x1112_1314_1516_1718);
        let row = AnyRow::Gap(GapRow {
            event_id: id,
            instance_id: "i1",
            seq: 300,
            event_time: -2,
            missing_events: 5,
            reason: "é",
            skipped_seqs: 1,
            chain: crate::audit::chain::ChainText::of(Some(&[0xab; 32])),
        });
        let mut out = Vec::new();
        assert_eq!(encode_row(&row, &mut out).unwrap(), Table::Gaps);
        let mut want = Vec::new();
        want.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        want.extend_from_slice(&0x1112_1314_1516_1718u64.to_le_bytes());
        want.extend_from_slice(b"\x02i1");
        want.extend_from_slice(&300u64.to_le_bytes());
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&5u64.to_le_bytes());
        want.extend_from_slice(b"\x02\xc3\xa9");
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(64);
        want.extend_from_slice("ab".repeat(32).as_bytes());
        assert_eq!(out, want);
        assert_eq!(row_header(&out), Some((&b"i1"[..], 300, -2)));
        assert_eq!(row_header(&out[..20]), None);
    }

    #[test]
    fn lengths_arrays_and_nullables() {
        let mut out = Vec::new();
        put_leb128(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(read_leb128(&out), Some((300, 2)));
        let mut out = Vec::new();
        let v: Vec<Option<String>> = vec![None, Some("a".into())];
        v.serialize(&mut Encoder { out: &mut out }).unwrap();
        assert_eq!(out, [2, 1, 0, 1, b'a']);
    }
}
