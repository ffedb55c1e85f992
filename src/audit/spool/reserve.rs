//! Room kept on the spool's file system for what must be written when the
//! disk is full: the gap record of `fail_open` and the segment it goes in.
//!
//! `reserve` is a file of zeros (written, not sparse, so the blocks are
//! really taken). The writer deletes it when a write fails for want of
//! space, which frees that room at once, and writes it again once writes
//! succeed. Both are best effort: the marker and the seq mark need no free
//! space (they are overwritten in place), so nothing depends on it for
//! correctness, only for how soon a gap record reaches the disk.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub const RESERVE: &str = "reserve";
/// Room for many gap frames and a segment's first blocks.
pub const RESERVE_BYTES: usize = 128 << 10;

/// Writes the reserve file if it is missing or short; on failure removes
/// what was written and says why.
pub fn ensure(dir: &Path) -> io::Result<()> {
    let path = dir.join(RESERVE);
    match fs::metadata(&path) {
        Ok(m) if m.len() >= RESERVE_BYTES as u64 => return Ok(()),
        _ => {}
    }
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&vec![0u8; RESERVE_BYTES])?;
            f.sync_all()
        });
    if result.is_err() {
        let _ = fs::remove_file(&path);
    }
    result
}

/// Deletes the reserve file; whether there was one.
pub fn release(dir: &Path) -> bool {
    fs::remove_file(dir.join(RESERVE)).is_ok()
}
