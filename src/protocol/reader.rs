//! A cursor over a message body that never reads past its end.

use std::fmt;

/// A field could not be read because the body ended or was ill-formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// Reads fields in order from a message body.
#[derive(Debug, Clone)]
pub struct MessageReader<'a> {
    buf: &'a [u8],
}

impl<'a> MessageReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        MessageReader { buf }
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// A NUL-terminated string, without its terminator.
    pub fn cstr(&mut self) -> Result<&'a [u8], Malformed> {
        let end = memchr(0, self.buf).ok_or(Malformed("string without terminator"))?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(Malformed("message too short"))?;
        self.buf = rest;
        Ok(b)
    }

    pub fn i16(&mut self) -> Result<i16, Malformed> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, Malformed> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed("message too short"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A count read as i16 that must not be negative.
    pub fn count16(&mut self) -> Result<usize, Malformed> {
        usize::try_from(self.i16()?).map_err(|_| Malformed("negative count"))
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_stops_at_end() {
        let mut r = MessageReader::new(b"ab\0\x00\x07\x00\x00\x00\x09");
        assert_eq!(r.cstr(), Ok(&b"ab"[..]));
        assert_eq!(r.i16(), Ok(7));
        assert_eq!(r.i32(), Ok(9));
        assert!(r.is_empty());
        assert!(r.u8().is_err());
        assert!(MessageReader::new(b"abc").cstr().is_err());
    }
}
