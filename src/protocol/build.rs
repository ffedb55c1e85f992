//! Builders for the messages pgtrail itself writes. Each returns one whole
//! frame, ready to be written.

use bytes::{BufMut, Bytes, BytesMut};

/// Writes a frame: tag, length (filled in at the end), then `body`.
fn frame(tag: u8, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u8(tag);
    buf.put_i32(0);
    body(&mut buf);
    finish_len(&mut buf, 1);
    buf.freeze()
}

/// A frame without tag byte (startup-phase messages).
fn untagged(body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    body(&mut buf);
    finish_len(&mut buf, 0);
    buf.freeze()
}

fn finish_len(buf: &mut BytesMut, at: usize) {
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(buf: &mut BytesMut, s: &[u8]) {
    buf.put_slice(s);
    buf.put_u8(0);
}

/// Severity of a message pgtrail sends on its own behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Severity::Error => b"ERROR",
            Severity::Fatal => b"FATAL",
        }
    }
}

/// ErrorResponse with the fields PostgreSQL always sends.
pub fn error_response(severity: Severity, code: &str, message: &str) -> Bytes {
    frame(b'E', |b| {
        b.put_u8(b'S');
        put_cstr(b, severity.as_bytes());
        b.put_u8(b'V');
        put_cstr(b, severity.as_bytes());
        b.put_u8(b'C');
        put_cstr(b, code.as_bytes());
        b.put_u8(b'M');
        put_cstr(b, message.as_bytes());
        b.put_u8(0);
    })
}

pub fn ready_for_query(status: u8) -> Bytes {
    frame(b'Z', |b| b.put_u8(status))
}

pub fn backend_key_data(pid: i32, secret: i32) -> Bytes {
    frame(b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    })
}

/// Authentication request with a code and its data.
pub fn auth_request(code: i32, data: &[u8]) -> Bytes {
    frame(b'R', |b| {
        b.put_i32(code);
        b.put_slice(data);
    })
}

/// AuthenticationSASL offering the given mechanisms.
pub fn auth_sasl(mechanisms: &[&[u8]]) -> Bytes {
    frame(b'R', |b| {
        b.put_i32(super::backend::auth::SASL);
        for m in mechanisms {
            put_cstr(b, m);
        }
        b.put_u8(0);
    })
}

/// NegotiateProtocolVersion: newest minor version supported, and the
/// protocol options (`_pq_.*`) that were not recognised.
pub fn negotiate_protocol_version(minor: i32, unrecognised: &[&[u8]]) -> Bytes {
    frame(b'v', |b| {
        b.put_i32(minor);
        b.put_i32(unrecognised.len() as i32);
        for o in unrecognised {
            put_cstr(b, o);
        }
    })
}

/// StartupMessage for protocol 3.0 with the given parameters, in order.
pub fn startup_message<'a>(params: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Bytes {
    untagged(|b| {
        b.put_i32(super::startup::PROTOCOL_3_0);
        for (name, value) in params {
            put_cstr(b, name);
            put_cstr(b, value);
        }
        b.put_u8(0);
    })
}

pub fn ssl_request() -> Bytes {
    untagged(|b| b.put_i32(super::startup::SSL_REQUEST))
}

pub fn cancel_request(pid: i32, secret: &[u8]) -> Bytes {
    untagged(|b| {
        b.put_i32(super::startup::CANCEL_REQUEST);
        b.put_i32(pid);
        b.put_slice(secret);
    })
}

/// PasswordMessage ('p') carrying a NUL-terminated password or md5 hash.
pub fn password_message(password: &[u8]) -> Bytes {
    frame(b'p', |b| put_cstr(b, password))
}

/// SASLInitialResponse ('p').
pub fn sasl_initial_response(mechanism: &[u8], data: &[u8]) -> Bytes {
    frame(b'p', |b| {
        put_cstr(b, mechanism);
        b.put_i32(data.len() as i32);
        b.put_slice(data);
    })
}

/// SASLResponse ('p').
pub fn sasl_response(data: &[u8]) -> Bytes {
    frame(b'p', |b| b.put_slice(data))
}

pub fn terminate() -> Bytes {
    frame(b'X', |_| {})
}

/// Query ('Q'): a simple-protocol statement of pgtrail's own.
pub fn query(sql: &[u8]) -> Bytes {
    frame(b'Q', |b| put_cstr(b, sql))
}

/// Parse ('P') of a named statement without parameter types.
pub fn parse(statement: &[u8], sql: &[u8]) -> Bytes {
    frame(b'P', |b| {
        put_cstr(b, statement);
        put_cstr(b, sql);
        b.put_i16(0);
    })
}

/// Bind ('B') of a named statement without parameters, text results.
pub fn bind(portal: &[u8], statement: &[u8]) -> Bytes {
    frame(b'B', |b| {
        put_cstr(b, portal);
        put_cstr(b, statement);
        b.put_i16(0);
        b.put_i16(0);
        b.put_i16(0);
    })
}

/// Parse ('P') of a named statement with the given parameter type oids.
pub fn parse_typed(statement: &[u8], sql: &[u8], types: &[u32]) -> Bytes {
    frame(b'P', |b| {
        put_cstr(b, statement);
        put_cstr(b, sql);
        b.put_i16(types.len() as i16);
        for t in types {
            b.put_u32(*t);
        }
    })
}

/// Bind ('B') of a named statement with binary parameters, text results.
pub fn bind_binary(portal: &[u8], statement: &[u8], params: &[&[u8]]) -> Bytes {
    frame(b'B', |b| {
        put_cstr(b, portal);
        put_cstr(b, statement);
        b.put_i16(1);
        b.put_i16(1);
        b.put_i16(params.len() as i16);
        for p in params {
            b.put_i32(p.len() as i32);
            b.put_slice(p);
        }
        b.put_i16(0);
    })
}

/// Sync ('S').
pub fn sync() -> Bytes {
    frame(b'S', |_| {})
}

/// Execute ('E') of a portal, all rows.
pub fn execute(portal: &[u8]) -> Bytes {
    frame(b'E', |b| {
        put_cstr(b, portal);
        b.put_i32(0);
    })
}

/// Close ('C') of a prepared statement.
pub fn close_statement(statement: &[u8]) -> Bytes {
    frame(b'C', |b| {
        b.put_u8(b'S');
        put_cstr(b, statement);
    })
}

/// Close ('C') of a portal (in a transaction block a portal outlives the
/// Close of its statement).
pub fn close_portal(portal: &[u8]) -> Bytes {
    frame(b'C', |b| {
        b.put_u8(b'P');
        put_cstr(b, portal);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::backend;

    #[test]
    fn error_response_round_trips() {
        let e = error_response(Severity::Fatal, "08P01", "bad");
        assert_eq!(e[0], b'E');
        assert_eq!(
            i32::from_be_bytes([e[1], e[2], e[3], e[4]]) as usize,
            e.len() - 1
        );
        let f = backend::error_fields(&e[5..]).unwrap();
        assert_eq!(
            (f.severity.as_str(), f.code.as_str(), f.message.as_str()),
            ("FATAL", "08P01", "bad")
        );
    }

    #[test]
    fn startup_message_layout() {
        let m = startup_message([(&b"user"[..], &b"bob"[..])]);
        assert_eq!(&m[..], b"\0\0\0\x12\0\x03\0\0user\0bob\0\0");
    }
}
