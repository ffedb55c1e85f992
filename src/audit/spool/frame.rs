//! Frame encoding: `u32 length (LE) | u32 CRC32C of payload (LE) | payload`,
//! payload = `u64 seq (LE) | u8 tag | body`. The spool does not know what
//! a tag or a body means: the writer's caller gives both (`encode`), the
//! reader hands them back as they are (`SpooledFrame`). What the ClickHouse
//! sink stores in them, and the tags it has used, is told in
//! `audit::clickhouse::spool_rows`.
//!
//! Spools written by earlier builds hold frames without a tag: their
//! payload is `u64 seq | a JSON document`. They read like any frame, with
//! the document's first byte (`{`) as the tag, so no caller may use that
//! byte as a tag of its own.
//!
//! The seq is in front so that recovery, acknowledgement and segment
//! deletion never have to parse records; the CRC covers it too.

use std::io::{self, Read};

/// Length and CRC.
pub const HEADER: usize = 8;
/// Smallest valid payload: the seq alone (a zero-filled tail is not a frame).
pub const MIN_PAYLOAD: usize = 8;
/// Larger lengths are treated as damage (records are at most a few MiB).
pub const MAX_PAYLOAD: usize = 256 << 20;

/// A frame's payload after the seq: the tag and the body, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledFrame {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl SpooledFrame {
    /// The tag and body of a payload read by `read_frame` (seq included).
    /// A payload of the seq alone (`encode` never writes one) is an error.
    pub fn from_payload(payload: &[u8]) -> io::Result<SpooledFrame> {
        match payload.get(MIN_PAYLOAD..) {
            Some([tag, body @ ..]) => Ok(SpooledFrame {
                tag: *tag,
                body: body.to_vec(),
            }),
            _ => Err(io::Error::other("spool frame without a tag")),
        }
    }
}

/// Appends one frame to `out`: `seq`, then the tag and body that `body`
/// makes: it appends the body to the buffer it is handed (and only
/// appends) and returns the tag. When it fails, `out` is left as it was.
pub fn encode(
    seq: u64,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> io::Result<u8>,
) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(0); // the tag, known once the body is written
    let tag_at = out.len() - 1;
    match body(out) {
        Ok(tag) => out[tag_at] = tag,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    }
    seal(start, out)
}

/// The seq of the frame at `at` in a buffer of whole frames made by `encode`.
pub fn seq_at(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at + HEADER..at + HEADER + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The longest run of whole frames at the start of `buf` (made by
/// `encode`) not over `max` bytes, one frame at least: its length, the
/// seq of its last frame and how many frames it holds.
pub fn prefix(buf: &[u8], max: usize) -> (usize, u64, u64) {
    let (mut len, mut last_seq, mut frames) = (0usize, 0u64, 0u64);
    while let Some(size) = buf
        .get(len..len + 4)
        .and_then(|b| b.try_into().ok())
        .map(|b| HEADER + u32::from_le_bytes(b) as usize)
    {
        if frames > 0 && len + size > max {
            break;
        }
        last_seq = seq_at(buf, len).unwrap_or(last_seq);
        len += size;
        frames += 1;
    }
    (len.min(buf.len()), last_seq, frames)
}

/// Fills in the length and CRC of the frame that starts at `start`.
fn seal(start: usize, out: &mut [u8]) -> io::Result<()> {
    let payload_len = out.len() - start - HEADER;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|&l| l as usize <= MAX_PAYLOAD)
        .ok_or_else(|| io::Error::other("audit record too large for the spool"))?;
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What was found at one position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Read1 {
    /// A valid frame: its seq and payload (seq included), `size` bytes in all.
    Frame { seq: u64, size: u64 },
    /// Clean end of data.
    End,
    /// Fewer bytes than the header or the declared payload.
    Short,
    /// Implausible length or CRC mismatch.
    Bad,
}

/// Reads one frame from `r` into `payload` (cleared first).
pub fn read_frame(r: &mut impl Read, payload: &mut Vec<u8>) -> io::Result<Read1> {
    let mut header = [0u8; HEADER];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(Read1::End);
    }
    if got < HEADER {
        return Ok(Read1::Short);
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return Ok(Read1::Bad);
    }
    payload.clear();
    payload.resize(len, 0);
    if read_full(r, payload)? < len {
        return Ok(Read1::Short);
    }
    if crc32c::crc32c(payload) != crc {
        return Ok(Read1::Bad);
    }
    // `len` is at least MIN_PAYLOAD (8), checked above.
    let Some(seq) = payload.get(..8).and_then(|b| b.try_into().ok()) else {
        return Ok(Read1::Bad);
    };
    let seq = u64::from_le_bytes(seq);
    Ok(Read1::Frame {
        seq,
        size: (HEADER + len) as u64,
    })
}

/// Like `read_exact`, but returns how much was read at end of file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body for `encode`: `n` bytes of `n`, tag 3.
    fn body(n: u8) -> impl FnOnce(&mut Vec<u8>) -> io::Result<u8> {
        move |out| {
            out.extend(std::iter::repeat_n(n, usize::from(n)));
            Ok(3)
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let mut buf = Vec::new();
        encode(7, &mut buf, body(7)).unwrap();
        encode(8, &mut buf, body(8)).unwrap();
        let mut r = &buf[..];
        let mut p = Vec::new();
        let Read1::Frame { seq, size } = read_frame(&mut r, &mut p).unwrap() else {
            panic!()
        };
        assert_eq!(seq, 7);
        assert_eq!(size, (HEADER + 8 + 1 + 7) as u64);
        assert_eq!(
            SpooledFrame::from_payload(&p).unwrap(),
            SpooledFrame {
                tag: 3,
                body: vec![7; 7]
            }
        );
        assert!(matches!(
            read_frame(&mut r, &mut p).unwrap(),
            Read1::Frame { seq: 8, .. }
        ));
        assert_eq!(read_frame(&mut r, &mut p).unwrap(), Read1::End);

        // A flipped bit anywhere in the payload fails the CRC.
        let mut bad = buf.clone();
        bad[size as usize - 3] ^= 1;
        assert_eq!(read_frame(&mut &bad[..], &mut p).unwrap(), Read1::Bad);
        // Cut short: in the header, in the payload.
        assert_eq!(read_frame(&mut &buf[..5], &mut p).unwrap(), Read1::Short);
        assert_eq!(read_frame(&mut &buf[..20], &mut p).unwrap(), Read1::Short);
        // Zeros (a file extended but not written) are not a frame.
        assert_eq!(read_frame(&mut &[0u8; 32][..], &mut p).unwrap(), Read1::Bad);
    }

    #[test]
    fn a_failed_body_leaves_no_trace_and_a_bare_seq_has_no_tag() {
        let mut buf = Vec::new();
        encode(1, &mut buf, body(2)).unwrap();
        let before = buf.clone();
        let failed = encode(2, &mut buf, |out| {
            out.extend_from_slice(b"half");
            Err(io::Error::other("no"))
        });
        assert!(failed.is_err());
        assert_eq!(buf, before);
        assert!(SpooledFrame::from_payload(&5u64.to_le_bytes()).is_err());
    }

    #[test]
    fn prefix_takes_whole_frames_up_to_the_limit() {
        let mut buf = Vec::new();
        for seq in 5..=7 {
            encode(seq, &mut buf, body(4)).unwrap();
        }
        let one = buf.len() / 3;
        assert_eq!(prefix(&buf, 1), (one, 5, 1));
        assert_eq!(prefix(&buf, 2 * one + 1), (2 * one, 6, 2));
        assert_eq!(prefix(&buf, usize::MAX), (buf.len(), 7, 3));
        assert_eq!(seq_at(&buf, one), Some(6));
    }
}
