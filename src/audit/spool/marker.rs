//! Small files replaced atomically: the `acked` marker (highest seq
//! ClickHouse acknowledged) and `instance_id`.
//!
//! Write a temp file, fsync it, rename it over the old one, fsync the
//! directory: after a crash the file holds either the old or the new value,
//! never a mix or nothing. A marker that moves back (old value) only means
//! records are sent again, which the tables deduplicate.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub const ACKED: &str = "acked";
pub const INSTANCE_ID: &str = "instance_id";

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
    match fs::read_to_string(dir.join(ACKED)) {
        Ok(s) => Ok(s.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(dir = %dir.display(), content = %s.trim(), "spool: acked marker unreadable; every spooled record will be sent again");
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

pub fn write_acked(dir: &Path, seq: u64) -> io::Result<()> {
    write_atomic(dir, ACKED, format!("{seq}\n").as_bytes())
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
        write_acked(dir.path(), 41).unwrap();
        write_acked(dir.path(), 42).unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 42);
        // A crash after writing the temp file but before the rename: the
        // old value stands, the stale temp file is overwritten next time.
        fs::write(dir.path().join("acked.tmp"), b"9").unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 42);
        write_acked(dir.path(), 43).unwrap();
        assert_eq!(read_acked(dir.path()).unwrap(), 43);
        assert!(!dir.path().join("acked.tmp").exists());
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
