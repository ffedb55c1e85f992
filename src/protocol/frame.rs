//! Splitting a byte stream into typed protocol frames (1-byte tag, 4-byte length).

use std::fmt;

/// Tag byte plus the 4-byte length word.
pub const HEADER_LEN: usize = 5;

/// PostgreSQL's limit for messages that carry no user data
/// (`PQ_SMALL_MESSAGE_LIMIT`): Sync, Flush, Close, Describe, Execute, Terminate,
/// CopyDone, CopyFail.
pub const SMALL_MESSAGE_LIMIT: usize = 10_000;

/// PostgreSQL's limit for everything else (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 1).
pub const LARGE_MESSAGE_LIMIT: usize = (1 << 30) - 1;

/// A frame header that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length word is below 4, which no valid message has.
    InvalidLength { tag: u8, len: i64 },
    /// The message is larger than the configured limit.
    TooLarge { tag: u8, len: usize, limit: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::InvalidLength { tag, len } => {
                write!(
                    f,
                    "invalid length {len} in message of type {}",
                    tag_name(*tag)
                )
            }
            FrameError::TooLarge { tag, len, limit } => write!(
                f,
                "message of type {} is {len} bytes, over the limit of {limit}",
                tag_name(*tag)
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// A printable name for a tag byte, for log lines.
pub fn tag_name(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

/// Size limits applied to frames read from one peer.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Limit for messages that may carry user data (queries, rows, COPY data).
    pub max_message: usize,
    /// Limit for control messages; `None` applies `max_message` to every type
    /// (used for the server side, which PostgreSQL trusts the same way).
    pub max_small: Option<usize>,
}

impl FrameLimits {
    /// Limits PostgreSQL applies to what a client sends.
    pub fn frontend(max_message: usize) -> Self {
        FrameLimits {
            max_message,
            max_small: Some(SMALL_MESSAGE_LIMIT),
        }
    }

    /// Limits for what the server sends.
    pub fn backend(max_message: usize) -> Self {
        FrameLimits {
            max_message,
            max_small: None,
        }
    }

    fn limit_for(&self, tag: u8) -> usize {
        match (self.max_small, tag) {
            (Some(small), b'S' | b'H' | b'C' | b'D' | b'E' | b'X' | b'c' | b'f') => {
                small.min(self.max_message)
            }
            _ => self.max_message,
        }
    }
}

/// A whole message seen as its tag and its body (the bytes after the
/// 5-byte header), borrowed from the bytes that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub tag: u8,
    pub body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The view of a whole frame, header included, as `frame_len` or
    /// `Framed::read_frame` delimit it. Shorter input (never produced by
    /// either) reads as tag 0 with an empty body rather than panicking.
    pub fn of(bytes: &'a [u8]) -> Frame<'a> {
        Frame {
            tag: bytes.first().copied().unwrap_or(0),
            body: bytes.get(HEADER_LEN..).unwrap_or_default(),
        }
    }
}

/// Length of the first whole frame at the start of `buf`.
///
/// `Ok(Err(missing))` means the frame is incomplete and at least `missing`
/// more bytes are needed. The length is checked before the body arrives, so
/// an oversized message is refused without buffering it.
pub fn frame_len(buf: &[u8], limits: &FrameLimits) -> Result<Result<usize, usize>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(Err(HEADER_LEN - buf.len()));
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(FrameError::InvalidLength {
            tag,
            len: len.into(),
        });
    }
    // i32 → usize cannot lose anything once it is known to be positive.
    let len = len as usize;
    let limit = limits.limit_for(tag);
    if len > limit {
        return Err(FrameError::TooLarge { tag, len, limit });
    }
    let total = len + 1;
    if buf.len() >= total {
        Ok(Ok(total))
    } else {
        Ok(Err(total - buf.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_partial_frames() {
        let limits = FrameLimits::frontend(1000);
        let frame = [b'Q', 0, 0, 0, 6, b'x', 0];
        assert_eq!(frame_len(&frame, &limits), Ok(Ok(7)));
        assert_eq!(frame_len(&frame[..3], &limits), Ok(Err(2)));
        assert_eq!(frame_len(&frame[..5], &limits), Ok(Err(2)));
    }

    #[test]
    fn rejects_bad_lengths() {
        let limits = FrameLimits::frontend(1000);
        assert!(matches!(
            frame_len(&[b'Q', 0, 0, 0, 3], &limits),
            Err(FrameError::InvalidLength { .. })
        ));
        assert!(matches!(
            frame_len(&[b'Q', 0x7f, 0xff, 0xff, 0xff], &limits),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            frame_len(&[b'Q', 0xff, 0xff, 0xff, 0xff], &limits),
            Err(FrameError::InvalidLength { .. })
        ));
        // Sync is a control message: PostgreSQL's small limit applies.
        assert!(matches!(
            frame_len(&[b'S', 0, 1, 0, 0], &FrameLimits::frontend(1 << 20)),
            Err(FrameError::TooLarge { .. })
        ));
    }
}
