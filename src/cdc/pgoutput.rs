//! The messages of PostgreSQL's `pgoutput` plugin ("Logical Replication
//! Message Formats"), decoded from the bytes of one XLogData payload,
//! without I/O. Protocol versions 1 and 2 (streaming of large
//! transactions); values stay raw bytes in the format the server sent.

mod cursor;
mod decode;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use std::fmt;

use super::Lsn;
pub use decode::Decoder;

/// A transaction id (32 bits on the wire, as `txid_current() % 2^32`).
pub type Xid = u32;
/// An object id (relation or type).
pub type Oid = u32;

/// Message tags, as the documentation names them.
pub mod tag {
    pub const BEGIN: u8 = b'B';
    pub const COMMIT: u8 = b'C';
    pub const ORIGIN: u8 = b'O';
    pub const RELATION: u8 = b'R';
    pub const TYPE: u8 = b'Y';
    pub const INSERT: u8 = b'I';
    pub const UPDATE: u8 = b'U';
    pub const DELETE: u8 = b'D';
    pub const TRUNCATE: u8 = b'T';
    pub const MESSAGE: u8 = b'M';
    pub const STREAM_START: u8 = b'S';
    pub const STREAM_STOP: u8 = b'E';
    pub const STREAM_COMMIT: u8 = b'c';
    pub const STREAM_ABORT: u8 = b'A';
}

/// A server timestamp: microseconds since 2000-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgTimestamp(pub i64);

impl PgTimestamp {
    /// Microseconds between the Unix epoch and PostgreSQL's.
    pub const UNIX_OFFSET_MICROS: i64 = 946_684_800_000_000;

    pub fn unix_micros(self) -> i64 {
        self.0.saturating_add(Self::UNIX_OFFSET_MICROS)
    }

    pub fn from_unix_micros(micros: i64) -> Self {
        PgTimestamp(micros.saturating_sub(Self::UNIX_OFFSET_MICROS))
    }
}

/// One decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicalMessage {
    Begin(Begin),
    Commit(Commit),
    Origin(Origin),
    Relation(RelationMessage),
    Type(TypeMessage),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Truncate(Truncate),
    Message(Message),
    StreamStart(StreamStart),
    StreamStop,
    StreamCommit(StreamCommit),
    StreamAbort(StreamAbort),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// The LSN of the commit record.
    pub final_lsn: Lsn,
    pub commit_time: PgTimestamp,
    pub xid: Xid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub flags: u8,
    pub commit_lsn: Lsn,
    /// The end of the commit record: the position to confirm once this
    /// transaction's changes are durable.
    pub end_lsn: Lsn,
    pub commit_time: PgTimestamp,
}

/// The replication origin a transaction was replayed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub commit_lsn: Lsn,
    pub name: String,
}

/// `relreplident`: which old values UPDATE and DELETE carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// 'd': the primary key.
    Default,
    /// 'n': nothing.
    Nothing,
    /// 'f': every column.
    Full,
    /// 'i': the columns of a chosen unique index.
    Index,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Bit 1: the column is part of the replica identity key.
    pub flags: u8,
    pub name: std::sync::Arc<str>,
    pub type_oid: Oid,
    pub type_modifier: i32,
}

impl Column {
    pub fn is_key(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// Sent before the first change of a relation in a session, and again
/// when its definition changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationMessage {
    /// Set inside a stream block (protocol 2) only.
    pub xid: Option<Xid>,
    pub oid: Oid,
    /// Empty for `pg_catalog`.
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<Column>,
}

/// A column type outside `pg_catalog`, named before its first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMessage {
    pub xid: Option<Xid>,
    pub oid: Oid,
    pub namespace: String,
    pub name: String,
}

/// One column's value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// 'n'
    Null,
    /// 'u': a TOASTed value the change did not touch; its value is not sent.
    UnchangedToast,
    /// 't': the type's text output.
    Text(Bytes),
    /// 'b': the type's binary send format (only with `binary 'true'`).
    Binary(Bytes),
}

/// The values of one row, in the relation's column order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleData(pub Vec<Value>);

/// The old row of an UPDATE or DELETE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// 'K': the replica identity key columns; the others are `Null`.
    Key(TupleData),
    /// 'O': the whole old row (`REPLICA IDENTITY FULL`).
    Full(TupleData),
}

impl OldTuple {
    pub fn tuple(&self) -> &TupleData {
        match self {
            OldTuple::Key(t) | OldTuple::Full(t) => t,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub xid: Option<Xid>,
    pub relation: Oid,
    pub new: TupleData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub xid: Option<Xid>,
    pub relation: Oid,
    /// Absent when the key did not change and the identity is not FULL.
    pub old: Option<OldTuple>,
    pub new: TupleData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub xid: Option<Xid>,
    pub relation: Oid,
    pub old: OldTuple,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    pub xid: Option<Xid>,
    /// Bit 1: CASCADE; bit 2: RESTART IDENTITY.
    pub options: u8,
    pub relations: Vec<Oid>,
}

impl Truncate {
    pub fn cascade(&self) -> bool {
        self.options & 1 != 0
    }

    pub fn restart_identity(&self) -> bool {
        self.options & 2 != 0
    }
}

/// A `pg_logical_emit_message` record (sent with `messages 'true'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub xid: Option<Xid>,
    /// Transactional messages arrive inside their transaction, and only if
    /// it commits; the others at once, outside any Begin/Commit.
    pub transactional: bool,
    pub lsn: Lsn,
    pub prefix: String,
    pub content: Bytes,
}

/// Protocol 2: the next messages, up to StreamStop, belong to the
/// still-running transaction `xid` (which may later abort).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    pub xid: Xid,
    pub first_segment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCommit {
    pub xid: Xid,
    pub flags: u8,
    pub commit_lsn: Lsn,
    pub end_lsn: Lsn,
    pub commit_time: PgTimestamp,
}

/// The streamed transaction `xid` (or only its subtransaction `subxid`,
/// when the two differ) rolled back: drop what was streamed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAbort {
    pub xid: Xid,
    pub subxid: Xid,
}

/// A message that does not decode; `offset` is where the field that
/// failed starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The message being decoded (`"Insert"`, ...), or `"message"` before
    /// its tag is known.
    pub message: &'static str,
    pub offset: usize,
    pub fault: Fault,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The message ends before a field does.
    Truncated,
    /// A string without its NUL terminator.
    NoTerminator,
    /// A name or prefix that is not UTF-8.
    NotUtf8,
    /// A length or count below zero.
    NegativeLength(i64),
    /// Bytes left after the last field.
    TrailingBytes(usize),
    /// An empty payload.
    Empty,
    UnknownTag(u8),
    /// A tuple column kind other than 'n', 'u', 't', 'b'.
    UnknownValueKind(u8),
    /// An UPDATE/DELETE tuple marker other than 'K', 'O', 'N'.
    UnknownTupleMarker(u8),
    UnknownReplicaIdentity(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pgoutput {} at byte {}: ", self.message, self.offset)?;
        match &self.fault {
            Fault::Truncated => f.write_str("message ends before the field"),
            Fault::NoTerminator => f.write_str("string without terminator"),
            Fault::NotUtf8 => f.write_str("name is not UTF-8"),
            Fault::NegativeLength(n) => write!(f, "negative length {n}"),
            Fault::TrailingBytes(n) => write!(f, "{n} bytes after the last field"),
            Fault::Empty => f.write_str("empty message"),
            Fault::UnknownTag(t) => write!(f, "unknown message tag {t:#04x}"),
            Fault::UnknownValueKind(k) => write!(f, "unknown column value kind {k:#04x}"),
            Fault::UnknownTupleMarker(m) => write!(f, "unknown tuple marker {m:#04x}"),
            Fault::UnknownReplicaIdentity(r) => write!(f, "unknown replica identity {r:#04x}"),
        }
    }
}

impl std::error::Error for DecodeError {}
