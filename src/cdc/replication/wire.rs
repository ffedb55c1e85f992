//! The replication protocol's own messages, without I/O: the CopyData
//! payloads the walsender sends (XLogData, Primary keepalive), the Standby
//! status update pgtrail answers with, and the commands' text.

use bytes::{BufMut, Bytes, BytesMut};

use crate::cdc::pgoutput::PgTimestamp;
use crate::cdc::Lsn;
use crate::protocol::Malformed;

/// CopyData payload tags (protocol documentation, "Streaming Replication
/// Protocol").
pub mod tag {
    pub const XLOG_DATA: u8 = b'w';
    pub const PRIMARY_KEEPALIVE: u8 = b'k';
    pub const STANDBY_STATUS_UPDATE: u8 = b'r';
    /// Frontend CopyData / CopyDone / Query frame tags.
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const QUERY: u8 = b'Q';
}

/// What one server CopyData carries during `START_REPLICATION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyMessage {
    /// WAL data: for a logical slot, one output plugin message.
    XLogData {
        wal_start: Lsn,
        /// The server's current end of WAL.
        wal_end: Lsn,
        server_time: PgTimestamp,
        data: Bytes,
    },
    /// The server is alive; with `reply_requested` it wants a status
    /// update now, or it ends the connection at `wal_sender_timeout`.
    Keepalive {
        wal_end: Lsn,
        server_time: PgTimestamp,
        reply_requested: bool,
    },
}

fn read_u64(body: &[u8], at: usize) -> Result<u64, Malformed> {
    let field = body
        .get(at..at + 8)
        .ok_or(Malformed("replication message too short"))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(field);
    Ok(u64::from_be_bytes(b))
}

/// Decodes a CopyData body (the bytes after the frame header).
pub fn copy_message(body: Bytes) -> Result<CopyMessage, Malformed> {
    let first = *body.first().ok_or(Malformed("empty CopyData"))?;
    match first {
        tag::XLOG_DATA => {
            let wal_start = Lsn(read_u64(&body, 1)?);
            let wal_end = Lsn(read_u64(&body, 9)?);
            let server_time = PgTimestamp(read_u64(&body, 17)? as i64);
            Ok(CopyMessage::XLogData {
                wal_start,
                wal_end,
                server_time,
                data: body.slice(25..),
            })
        }
        tag::PRIMARY_KEEPALIVE => {
            if body.len() != 18 {
                return Err(Malformed("keepalive is not 18 bytes"));
            }
            Ok(CopyMessage::Keepalive {
                wal_end: Lsn(read_u64(&body, 1)?),
                server_time: PgTimestamp(read_u64(&body, 9)? as i64),
                reply_requested: body[17] == 1,
            })
        }
        _ => Err(Malformed("unknown CopyData message in replication")),
    }
}

/// The positions a Standby status update reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyStatus {
    /// Received (written) by pgtrail.
    pub written: Lsn,
    /// Durable in pgtrail's records: the slot's `confirmed_flush_lsn`
    /// moves to this and nowhere else.
    pub flushed: Lsn,
    pub applied: Lsn,
    pub client_time: PgTimestamp,
    /// Asks the server to answer at once with a keepalive.
    pub reply_requested: bool,
}

/// Standby status update ('r') inside a frontend CopyData frame.
pub fn standby_status(s: &StandbyStatus) -> Bytes {
    let mut b = BytesMut::with_capacity(39);
    b.put_u8(tag::COPY_DATA);
    b.put_i32(4 + 34);
    b.put_u8(tag::STANDBY_STATUS_UPDATE);
    b.put_u64(s.written.0);
    b.put_u64(s.flushed.0);
    b.put_u64(s.applied.0);
    b.put_i64(s.client_time.0);
    b.put_u8(u8::from(s.reply_requested));
    b.freeze()
}

/// Frontend CopyDone: ends the stream from pgtrail's side.
pub fn copy_done() -> Bytes {
    Bytes::from_static(&[tag::COPY_DONE, 0, 0, 0, 4])
}

/// A simple-protocol Query frame. `sql` must not contain NUL (callers
/// build it from quoted names).
pub fn query(sql: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(sql.len() + 6);
    b.put_u8(tag::QUERY);
    b.put_i32((4 + sql.len() + 1) as i32);
    b.put_slice(sql.as_bytes());
    b.put_u8(0);
    b.freeze()
}

/// An identifier in double quotes, as `quote_ident` writes it.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal (standard_conforming_strings holds in walsenders).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The `publication_names` option: a comma-separated list of quoted
/// identifiers, itself a literal.
pub fn publication_names(names: &[String]) -> String {
    let list: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    quote_literal(&list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlogdata_and_keepalive_decode_and_short_ones_fail() {
        let mut w = BytesMut::new();
        w.put_u8(b'w');
        w.put_u64(1);
        w.put_u64(2);
        w.put_i64(3);
        w.put_slice(b"B...");
        let w = w.freeze();
        let CopyMessage::XLogData { data, wal_end, .. } = copy_message(w.clone()).unwrap() else {
            panic!("not XLogData")
        };
        assert_eq!((&data[..], wal_end), (&b"B..."[..], Lsn(2)));
        for len in 0..25 {
            assert!(copy_message(w.slice(..len)).is_err(), "{len}");
        }
        let mut k = BytesMut::new();
        k.put_u8(b'k');
        k.put_u64(7);
        k.put_i64(8);
        k.put_u8(1);
        let k = k.freeze();
        let msg = copy_message(k.clone()).unwrap();
        assert!(matches!(
            msg,
            CopyMessage::Keepalive {
                reply_requested: true,
                wal_end: Lsn(7),
                ..
            }
        ));
        for len in 0..18 {
            assert!(copy_message(k.slice(..len)).is_err(), "{len}");
        }
        assert!(copy_message(Bytes::from_static(b"x")).is_err());
    }

    #[test]
    fn status_update_layout() {
        let s = standby_status(&StandbyStatus {
            written: Lsn(3),
            flushed: Lsn(2),
            applied: Lsn(1),
            client_time: PgTimestamp(9),
            reply_requested: true,
        });
        assert_eq!(s.len(), 1 + 4 + 34);
        assert_eq!(&s[..6], &[b'd', 0, 0, 0, 38, b'r']);
        assert_eq!(&s[6..14], &3u64.to_be_bytes());
        assert_eq!(&s[14..22], &2u64.to_be_bytes());
        assert_eq!(s[38], 1);
    }

    #[test]
    fn quoting() {
        assert_eq!(
            publication_names(&["p".into(), "a\"b'".into()]),
            r#"'"p","a""b''"'"#
        );
        assert_eq!(&query("X")[..], b"Q\x00\x00\x00\x06X\x00");
    }
}
