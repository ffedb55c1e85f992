//! Bytes → [`LogicalMessage`]. The only state is whether a stream block is
//! open, because inside one (protocol 2) the data messages start with the
//! xid of the streamed transaction.

use bytes::Bytes;

use super::cursor::Cursor;
use super::*;

/// Decodes the pgoutput messages of one replication stream, in order.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    in_stream: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Whether a StreamStart was decoded without its StreamStop yet.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// One message: the payload of one XLogData. Values share `data`.
    pub fn decode(&mut self, data: Bytes) -> Result<LogicalMessage, DecodeError> {
        let Some(&first) = data.first() else {
            return Err(DecodeError {
                message: "message",
                offset: 0,
                fault: Fault::Empty,
            });
        };
        let mut c = Cursor::new(data, 1, name_of(first));
        let s = self.in_stream;
        let message = match first {
            tag::BEGIN => LogicalMessage::Begin(Begin {
                final_lsn: c.lsn()?,
                commit_time: PgTimestamp(c.i64()?),
                xid: c.u32()?,
            }),
            tag::COMMIT => LogicalMessage::Commit(Commit {
                flags: c.u8()?,
                commit_lsn: c.lsn()?,
                end_lsn: c.lsn()?,
                commit_time: PgTimestamp(c.i64()?),
            }),
            tag::ORIGIN => LogicalMessage::Origin(Origin {
                commit_lsn: c.lsn()?,
                name: c.string()?,
            }),
            tag::RELATION => LogicalMessage::Relation(relation(&mut c, s)?),
            tag::TYPE => LogicalMessage::Type(TypeMessage {
                xid: stream_xid(&mut c, s)?,
                oid: c.u32()?,
                namespace: c.string()?,
                name: c.string()?,
            }),
            tag::INSERT => LogicalMessage::Insert(insert(&mut c, s)?),
            tag::UPDATE => LogicalMessage::Update(update(&mut c, s)?),
            tag::DELETE => LogicalMessage::Delete(delete(&mut c, s)?),
            tag::TRUNCATE => LogicalMessage::Truncate(truncate(&mut c, s)?),
            tag::MESSAGE => LogicalMessage::Message(message(&mut c, s)?),
            tag::STREAM_START => LogicalMessage::StreamStart(StreamStart {
                xid: c.u32()?,
                first_segment: c.u8()? == 1,
            }),
            tag::STREAM_STOP => LogicalMessage::StreamStop,
            tag::STREAM_COMMIT => LogicalMessage::StreamCommit(StreamCommit {
                xid: c.u32()?,
                flags: c.u8()?,
                commit_lsn: c.lsn()?,
                end_lsn: c.lsn()?,
                commit_time: PgTimestamp(c.i64()?),
            }),
            tag::STREAM_ABORT => LogicalMessage::StreamAbort(StreamAbort {
                xid: c.u32()?,
                subxid: c.u32()?,
            }),
            other => return Err(c.error(Fault::UnknownTag(other))),
        };
        c.finish()?;
        // Only a whole, valid message changes the state.
        match message {
            LogicalMessage::StreamStart(_) => self.in_stream = true,
            LogicalMessage::StreamStop => self.in_stream = false,
            _ => {}
        }
        Ok(message)
    }
}

/// Inside a stream block, data messages start with the streamed xid.
fn stream_xid(c: &mut Cursor, streaming: bool) -> Result<Option<Xid>, DecodeError> {
    if streaming {
        c.u32().map(Some)
    } else {
        Ok(None)
    }
}

fn name_of(tag: u8) -> &'static str {
    match tag {
        tag::BEGIN => "Begin",
        tag::COMMIT => "Commit",
        tag::ORIGIN => "Origin",
        tag::RELATION => "Relation",
        tag::TYPE => "Type",
        tag::INSERT => "Insert",
        tag::UPDATE => "Update",
        tag::DELETE => "Delete",
        tag::TRUNCATE => "Truncate",
        tag::MESSAGE => "Message",
        tag::STREAM_START => "Stream Start",
        tag::STREAM_STOP => "Stream Stop",
        tag::STREAM_COMMIT => "Stream Commit",
        tag::STREAM_ABORT => "Stream Abort",
        _ => "message",
    }
}

fn relation(c: &mut Cursor, streaming: bool) -> Result<RelationMessage, DecodeError> {
    let xid = stream_xid(c, streaming)?;
    let oid = c.u32()?;
    let namespace = c.string()?;
    let name = c.string()?;
    let replica_identity = match c.u8()? {
        b'd' => ReplicaIdentity::Default,
        b'n' => ReplicaIdentity::Nothing,
        b'f' => ReplicaIdentity::Full,
        b'i' => ReplicaIdentity::Index,
        other => return Err(c.error(Fault::UnknownReplicaIdentity(other))),
    };
    let n = c.i16()?;
    let n = c.count(n.into())?;
    // At most 64 slots up front: a lying count must not make us allocate;
    // reading fails at the end of the bytes instead.
    let mut columns = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        columns.push(Column {
            flags: c.u8()?,
            name: c.string()?.into(),
            type_oid: c.u32()?,
            type_modifier: c.i32()?,
        });
    }
    Ok(RelationMessage {
        xid,
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

/// TupleData: a column count, then per column a kind byte and, for 't'
/// and 'b', an int32 length and the bytes.
fn tuple(c: &mut Cursor) -> Result<TupleData, DecodeError> {
    let n = c.i16()?;
    let n = c.count(n.into())?;
    let mut values = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let value = match c.u8()? {
            b'n' => Value::Null,
            b'u' => Value::UnchangedToast,
            kind @ (b't' | b'b') => {
                let len = c.i32()?;
                let len = c.count(len.into())?;
                let bytes = c.bytes(len)?;
                if kind == b't' {
                    Value::Text(bytes)
                } else {
                    Value::Binary(bytes)
                }
            }
            other => return Err(c.error(Fault::UnknownValueKind(other))),
        };
        values.push(value);
    }
    Ok(TupleData(values))
}

fn expect_new(c: &mut Cursor) -> Result<(), DecodeError> {
    match c.u8()? {
        b'N' => Ok(()),
        other => Err(c.error(Fault::UnknownTupleMarker(other))),
    }
}

fn insert(c: &mut Cursor, streaming: bool) -> Result<Insert, DecodeError> {
    let xid = stream_xid(c, streaming)?;
    let relation = c.u32()?;
    expect_new(c)?;
    Ok(Insert {
        xid,
        relation,
        new: tuple(c)?,
    })
}

fn update(c: &mut Cursor, streaming: bool) -> Result<Update, DecodeError> {
    let xid = stream_xid(c, streaming)?;
    let relation = c.u32()?;
    let old = match c.u8()? {
        b'K' => Some(OldTuple::Key(tuple(c)?)),
        b'O' => Some(OldTuple::Full(tuple(c)?)),
        b'N' => None,
        other => return Err(c.error(Fault::UnknownTupleMarker(other))),
    };
    if old.is_some() {
        expect_new(c)?;
    }
    Ok(Update {
        xid,
        relation,
        old,
        new: tuple(c)?,
    })
}

fn delete(c: &mut Cursor, streaming: bool) -> Result<Delete, DecodeError> {
    let xid = stream_xid(c, streaming)?;
    let relation = c.u32()?;
    let old = match c.u8()? {
        b'K' => OldTuple::Key(tuple(c)?),
        b'O' => OldTuple::Full(tuple(c)?),
        other => return Err(c.error(Fault::UnknownTupleMarker(other))),
    };
    Ok(Delete { xid, relation, old })
}

fn truncate(c: &mut Cursor, streaming: bool) -> Result<Truncate, DecodeError> {
    let xid = stream_xid(c, streaming)?;
    let n = c.i32()?;
    let n = c.count(n.into())?;
    let options = c.u8()?;
    let mut relations = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        relations.push(c.u32()?);
    }
    Ok(Truncate {
        xid,
        options,
        relations,
    })
}

fn message(c: &mut Cursor, streaming: bool) -> Result<Message, DecodeError> {
    let xid = stream_xid(c, streaming)?;
    let flags = c.u8()?;
    let lsn = c.lsn()?;
    let prefix = c.string()?;
    let len = c.i32()?;
    let len = c.count(len.into())?;
    Ok(Message {
        xid,
        transactional: flags & 1 != 0,
        lsn,
        prefix,
        content: c.bytes(len)?,
    })
}
