//! The spool's small files.
//!
//! - `acked` (highest seq ClickHouse acknowledged) and `seq` (the seq
//!   high-water mark: no seq at or below it is ever handed out again) are
//!   slot files (`audit::slotfile`): overwritten in place with a checksum,
//!   so they move on a full disk. A marker that moves back (a torn update
//!   leaves the previous value) only means records are sent again, which
//!   the tables deduplicate. Older builds wrote `acked` as text; it is read
//!   and converted at start.
//! - `instance_id` is replaced atomically: write a temp file, fsync it,
//!   rename it over the old one, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::audit::disk::slotfile::{self, SlotFile};

pub const ACKED: &str = "acked";
pub const INSTANCE_ID: &str = "instance_id";
pub const SEQ: &str = "seq";

/// Replaces `dir/name` with `contents`, crash-safely.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Makes renames, creations and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The acknowledged seq; 0 when there is no marker yet. An unreadable
/// marker also gives 0 (everything in the spool is sent again: safe), with
/// a warning.
pub fn read_acked(dir: &Path) -> io::Result<u64> {
    if let Some(seq) = slotfile::read(&dir.join(ACKED))? {
        return Ok(seq);
    }
    match fs::read_to_string(dir.join(ACKED)) {
        Ok(s) => Ok(s.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(dir = %dir.display(), content = %s.trim(), "spool: acked marker unreadable; every spooled record will be sent again");
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// The `acked` marker, open for in-place updates (converted from the
/// older text format if need be).
pub fn open_acked(dir: &Path, acked: u64) -> io::Result<SlotFile> {
    SlotFile::open(&dir.join(ACKED), acked)
}

/// The seq high-water mark; 0 when there is none yet.
pub fn read_seq_mark(dir: &Path) -> io::Result<u64> {
    Ok(slotfile::read(&dir.join(SEQ))?.unwrap_or(0))
}

/// The instance id kept in the spool directory, generated (UUIDv7) and
/// stored on first use, so a restarted pgtrail continues the same sequence
/// under the same identity.
pub fn instance_id(dir: &Path) -> io::Result<String> {
    match fs::read_to_string(dir.join(INSTANCE_ID)) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)?;
    let id = uuid::Uuid::now_v7().to_string();
    write_atomic(dir, INSTANCE_ID, format!("{id}\n").as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_survives_a_crash_between_steps() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 0);
        // An older build's text marker is read, then converted.
        fs::write(dir.path().join(ACKED), b"41\n").unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 41);
        let mut marker = open_acked(dir.path(), 41).unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 41);
        marker.store(42).unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 42);
        // A crash during creation (temp file written, not renamed): the
        // old value stands, the stale temp file is overwritten next time.
        fs::write(dir.path().join("acked.tmp"), b"9").unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 42);
        // Garbage: resend everything rather than fail.
        fs::write(dir.path().join(ACKED), b"x").unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 0);
    }

    #[test]
    fn instance_id_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = instance_id(dir.path()).unwrap();
        assert_eq!(instance_id(dir.path()).unwrap(), a);
    }
}
