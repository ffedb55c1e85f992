//! A cursor over one pgoutput message that checks every length before it
//! slices, and hands out values as `Bytes` sharing the message's buffer.

use bytes::Bytes;

use super::{DecodeError, Fault};
use crate::cdc::Lsn;

pub(super) struct Cursor {
    buf: Bytes,
    pos: usize,
    /// The message being read, named in errors.
    message: &'static str,
}

impl Cursor {
    pub(super) fn new(buf: Bytes, pos: usize, message: &'static str) -> Self {
        Cursor { buf, pos, message }
    }

    pub(super) fn error(&self, fault: Fault) -> DecodeError {
        DecodeError {
            message: self.message,
            offset: self.pos,
            fault,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.error(Fault::Truncated))?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(super) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(super) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(super) fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        Ok(Lsn(u64::from_be_bytes(self.array()?)))
    }

    /// A count sent as int16 or int32 that must not be negative.
    pub(super) fn count(&mut self, value: i64) -> Result<usize, DecodeError> {
        usize::try_from(value).map_err(|_| self.error(Fault::NegativeLength(value)))
    }

    /// `n` bytes sharing the message's buffer.
    pub(super) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..self.pos))
    }

    /// A NUL-terminated string. The replication connection asks for
    /// `client_encoding=UTF8`, so names and prefixes arrive as UTF-8.
    pub(super) fn string(&mut self) -> Result<String, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error(Fault::NoTerminator))?;
        let text = std::str::from_utf8(&rest[..len])
            .map_err(|_| self.error(Fault::NotUtf8))?
            .to_string();
        self.pos += len + 1;
        Ok(text)
    }

    /// Every byte read: pgoutput messages have no padding, so a leftover
    /// means the layout is not the one we decoded.
    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos.min(self.buf.len()) {
            0 => Ok(()),
            left => Err(self.error(Fault::TrailingBytes(left))),
        }
    }
}
