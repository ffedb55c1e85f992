//! Startup scan of the spool directory: every segment is read frame by
//! frame and checked.
//!
//! - A torn tail (a short frame, or a bad frame whose extent reaches the end
//!   of the file, or a zero-filled tail) at the end of the *last* segment is
//!   what a crash during an append leaves: those bytes were never fsynced,
//!   so no client was told they were on disk. It is truncated.
//! - Damage anywhere else is corruption of data that was fsynced. The rest
//!   of that segment is moved to `quarantine/<file>.<offset>` (kept for an
//!   operator), the segment is truncated before it, and a gap is reported
//!   so that the audit trail itself says what is missing. Nothing is
//!   skipped silently.
//!
//! Seqs: the quarantined bytes may hold records that were already shipped,
//! so the next seq must be above any seq they held. The damaged region is
//! therefore scanned for frames that still check out (resynchronisation),
//! and the highest seq found counts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frame::{self, Read1, HEADER};
use super::marker::sync_dir;

/// One segment file as found (and repaired) at start.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    pub first_seq: u64,
    pub path: PathBuf,
    pub len: u64,
    /// Highest seq held; 0 when empty.
    pub last_seq: u64,
}

/// A stretch of the audit trail lost to corruption, to be recorded as a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub missing_events: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Recovered {
    pub segments: Vec<SegmentInfo>,
    /// Highest seq seen anywhere (segments and quarantined bytes).
    pub max_seq: u64,
    pub gaps: Vec<Gap>,
    /// The last whole frame of each tag in the last two segments: its seq
    /// and payload (where the audit chain stood when the previous run
    /// ended; the last row change written).
    pub last_by_tag: std::collections::BTreeMap<u8, (u64, Vec<u8>)>,
}

pub const QUARANTINE: &str = "quarantine";

pub fn segment_name(first_seq: u64) -> String {
    format!("spool-{first_seq:020}.log")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("spool-")?.strip_suffix(".log")?;
    (digits.len() == 20).then(|| digits.parse().ok())?
}

/// Segment files in `dir`, sorted by first seq.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Scans and repairs every segment; logs what it did.
pub fn recover(dir: &Path) -> io::Result<Recovered> {
    let files = list(dir)?;
    let mut rec = Recovered::default();
    let mut payload = Vec::new();
    for (i, (first_seq, path)) in files.iter().enumerate() {
        let is_last = i + 1 == files.len();
        let file_len = fs::metadata(path)?.len();
        let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut offset = 0u64;
        let mut last_seq = 0u64;
        let damage = loop {
            match frame::read_frame(&mut r, &mut payload)? {
                Read1::Frame { seq, size } => {
                    offset += size;
                    last_seq = seq;
                    // The last segment may be new and empty: keep the
                    // last frames of the one before it too.
                    if i + 2 >= files.len() {
                        if let Some(&tag) = payload.get(frame::MIN_PAYLOAD) {
                            let (s, p) = rec.last_by_tag.entry(tag).or_default();
                            *s = seq;
                            p.clear();
                            p.extend_from_slice(&payload);
                        }
                    }
                }
                Read1::End => break None,
                other => break Some(other),
            }
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(kind) = damage {
            let torn = is_last
                && (kind == Read1::Short
                    || declared_end(path, offset)? >= file_len
                    || all_zero(path, offset)?);
            if torn {
                tracing::warn!(segment = %name, offset, bytes = file_len - offset, "spool: torn tail (an append cut short by a crash, never acknowledged as durable) truncated");
                truncate(path, offset)?;
            } else {
                let (quarantined, found_max) = quarantine(dir, path, offset, file_len)?;
                let bytes = file_len - offset;
                let upper = match files.get(i + 1) {
                    Some((next, _)) => next.saturating_sub(1).max(found_max),
                    None => found_max,
                };
                let lower = if last_seq > 0 {
                    last_seq
                } else {
                    first_seq - 1
                };
                rec.max_seq = rec.max_seq.max(found_max);
                let reason = format!(
                    "spool corruption: {name} at offset {offset}, {bytes} bytes quarantined"
                );
                tracing::error!(segment = %name, offset, bytes, quarantined = %quarantined.display(), missing_events = upper.saturating_sub(lower), "{reason}; a gap record is written");
                rec.gaps.push(Gap {
                    missing_events: upper.saturating_sub(lower),
                    reason,
                });
            }
        }
        rec.max_seq = rec.max_seq.max(last_seq).max(first_seq.saturating_sub(1));
        rec.segments.push(SegmentInfo {
            first_seq: *first_seq,
            path: path.clone(),
            len: offset,
            last_seq,
        });
    }
    Ok(rec)
}

/// Where the frame at `offset` says it ends (its length field).
fn declared_end(path: &Path, offset: u64) -> io::Result<u64> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut len = [0u8; 4];
    if f.read_exact(&mut len).is_err() {
        return Ok(u64::MAX);
    }
    Ok(offset + HEADER as u64 + u64::from(u32::from_le_bytes(len)))
}

fn all_zero(path: &Path, offset: u64) -> io::Result<bool> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut rest = Vec::new();
    f.read_to_end(&mut rest)?;
    Ok(rest.iter().all(|&b| b == 0))
}

fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

/// Moves `path[offset..len]` to the quarantine directory; returns the
/// copy's path and the highest seq of any frame that still checks out in it.
fn quarantine(dir: &Path, path: &Path, offset: u64, len: u64) -> io::Result<(PathBuf, u64)> {
    let qdir = dir.join(QUARANTINE);
    fs::create_dir_all(&qdir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let target = qdir.join(format!("{name}.{offset}"));
    let mut src = File::open(path)?;
    src.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::with_capacity((len - offset) as usize);
    src.read_to_end(&mut bytes)?;
    let mut out = File::create(&target)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    sync_dir(&qdir)?;
    truncate(path, offset)?;
    Ok((target, resync_max_seq(&bytes)))
}

/// The highest seq among frames that check out anywhere in `bytes`.
fn resync_max_seq(bytes: &[u8]) -> u64 {
    let mut max = 0;
    let mut payload = Vec::new();
    let mut pos = 1; // position 0 is the damaged frame
    while pos + HEADER <= bytes.len() {
        let Some(len) = bytes.get(pos..pos + 4).and_then(|b| b.try_into().ok()) else {
            break;
        };
        let len = u32::from_le_bytes(len) as usize;
        if len >= frame::MIN_PAYLOAD && pos + HEADER + len <= bytes.len() {
            if let Ok(Read1::Frame { seq, size }) =
                frame::read_frame(&mut &bytes[pos..], &mut payload)
            {
                max = max.max(seq);
                pos += size as usize;
                continue;
            }
        }
        pos += 1;
    }
    max
}
