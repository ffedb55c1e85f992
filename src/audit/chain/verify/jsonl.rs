//! Reading JSON Lines trails: the audit file and its rotated siblings
//! (`<file>.<time>[.n]`, oldest first), one record per line, streamed.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::item::Item;
use crate::audit::record::Record;

/// `file`'s rotated siblings, oldest first, then `file`.
pub fn with_rotated(file: &Path) -> io::Result<Vec<PathBuf>> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{name}.");
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && is_rotation_stamp(&n[prefix.len()..]))
        })
        .collect();
    rotated.sort();
    if file.exists() {
        rotated.push(file.to_path_buf());
    }
    Ok(rotated)
}

/// `20261206T213152.123456Z`, maybe followed by `.n`.
fn is_rotation_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 23 && b[8] == b'T' && b[22] == b'Z' && b[..8].iter().all(u8::is_ascii_digit)
}

/// A line of a JSON Lines trail.
#[derive(Debug)]
pub enum Line {
    Record(Item),
    /// Not a record: `torn` when a crash cut it short (a last line without
    /// its newline, or one a record was appended to after a crash).
    Malformed {
        at: String,
        why: String,
        torn: bool,
    },
}

/// The lines of one file.
pub fn read_lines(path: &Path) -> io::Result<impl Iterator<Item = io::Result<Line>>> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let path = path.to_path_buf();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut n = 0u64;
    let mut pending: Option<Line> = None;
    Ok(std::iter::from_fn(move || loop {
        if let Some(line) = pending.take() {
            return Some(Ok(line));
        }
        let mut raw = Vec::new();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        n += 1;
        let ended = raw.last() == Some(&b'\n');
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let at = format!("{}:{n}", path.display());
        let why = match serde_json::from_slice::<Record>(&raw) {
            Ok(record) => return Some(Ok(Line::Record(Item::of_record(&record, n)))),
            Err(e) => e.to_string(),
        };
        // A record appended after the remains of a line a crash cut short.
        let appended = raw
            .windows(10)
            .skip(1)
            .position(|w| w == b"{\"record\":")
            .map(|p| p + 1)
            .and_then(|p| {
                serde_json::from_slice::<Record>(&raw[p..])
                    .ok()
                    .map(|r| (p, r))
            });
        if let Some((p, record)) = appended {
            pending = Some(Line::Record(Item::of_record(&record, n)));
            return Some(Ok(Line::Malformed {
                at,
                why: format!("a line cut short ({p} bytes) before this record"),
                torn: true,
            }));
        }
        return Some(Ok(Line::Malformed {
            at,
            why,
            torn: !ended,
        }));
    }))
}

/// The checkpoints of one file (the outside copy), whose lines must all
/// be records.
pub fn read_file(path: &Path) -> io::Result<impl Iterator<Item = io::Result<Item>>> {
    Ok(read_lines(path)?.map(|line| match line? {
        Line::Record(item) => Ok(item),
        Line::Malformed { at, why, .. } => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{at}: not a pgtrail record ({why})"),
        )),
    }))
}

/// Every line of `files` (each with its rotated siblings), in file order.
pub fn read_all(files: &[PathBuf]) -> io::Result<impl Iterator<Item = io::Result<Line>>> {
    let mut paths = Vec::new();
    for f in files {
        paths.extend(with_rotated(f)?);
    }
    let mut readers = Vec::new();
    for p in &paths {
        readers.push(read_lines(p)?);
    }
    let mut position = 0u64;
    Ok(readers.into_iter().flatten().map(move |line| {
        line.map(|line| match line {
            Line::Record(mut i) => {
                position += 1;
                i.position = position;
                Line::Record(i)
            }
            other => other,
        })
    }))
}
