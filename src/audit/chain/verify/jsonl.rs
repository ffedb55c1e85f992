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

/// The records of one file, with their line positions (counting on from
/// `first_position`).
pub fn read_file(path: &Path) -> io::Result<impl Iterator<Item = io::Result<Item>>> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let path = path.to_path_buf();
    let mut lines = BufReader::with_capacity(1 << 20, file).split(b'\n');
    let mut n = 0u64;
    Ok(std::iter::from_fn(move || loop {
        let line = match lines.next()? {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Some(match serde_json::from_slice::<Record>(&line) {
            Ok(record) => Ok(Item::of_record(&record, n)),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{n}: not a pgtrail record ({e})", path.display()),
            )),
        });
    }))
}

/// Every record of `files` (each with its rotated siblings), in file order.
pub fn read_all(files: &[PathBuf]) -> io::Result<impl Iterator<Item = io::Result<Item>>> {
    let mut paths = Vec::new();
    for f in files {
        paths.extend(with_rotated(f)?);
    }
    let mut readers = Vec::new();
    for p in &paths {
        readers.push(read_file(p)?);
    }
    let mut position = 0u64;
    Ok(readers.into_iter().flatten().map(move |item| {
        item.map(|mut i| {
            position += 1;
            i.position = position;
            i
        })
    }))
}
