//! A number kept in a small file that is overwritten in place, so updating
//! it needs no free space (the spool's `acked` marker and `seq` high-water
//! mark must move on a full disk, which a write-temp-and-rename cannot).
//!
//! Layout: two 16-byte slots, each the value (u64 LE), its CRC32C (u32 LE)
//! and 4 zero bytes. Updates alternate between the slots and are fsynced,
//! so a crash tears at most the slot being written; the other still holds
//! the previous value. The values only grow, so the reader takes the
//! larger of the valid slots. The file is created once (write a temp file,
//! rename), which is the only step that needs space.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SLOT: usize = 16;
pub const FILE_LEN: u64 = 2 * SLOT as u64;

/// An open slot file; `store` overwrites the older slot.
#[derive(Debug)]
pub struct SlotFile {
    file: File,
    path: PathBuf,
    /// The slot the next `store` writes.
    next: u64,
}

fn encode(value: u64) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..8].copy_from_slice(&value.to_le_bytes());
    let crc = crc32c::crc32c(&value.to_le_bytes());
    slot[8..12].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn decode(slot: &[u8]) -> Option<u64> {
    let value: [u8; 8] = slot.get(..8)?.try_into().ok()?;
    let crc: [u8; 4] = slot.get(8..12)?.try_into().ok()?;
    (crc32c::crc32c(&value) == u32::from_le_bytes(crc)).then(|| u64::from_le_bytes(value))
}

/// What a file holds: `Some(value)` in slot format, `None` otherwise.
pub fn read_slots(bytes: &[u8]) -> Option<u64> {
    if bytes.len() as u64 != FILE_LEN {
        return None;
    }
    let a = decode(&bytes[..SLOT]);
    let b = decode(&bytes[SLOT..]);
    a.max(b)
}

impl SlotFile {
    /// Opens `path`, creating it with `initial` in both slots when it is
    /// missing or not in slot format (an older text marker: the caller
    /// passes the value it read from it).
    pub fn open(path: &Path, initial: u64) -> io::Result<SlotFile> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        if read_slots(&bytes).is_none() {
            let mut both = Vec::with_capacity(FILE_LEN as usize);
            both.extend_from_slice(&encode(initial));
            both.extend_from_slice(&encode(initial));
            let dir = path.parent().unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| io::Error::other(format!("bad file name {}", path.display())))?;
            crate::audit::spool::marker::write_atomic(dir, name, &both)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut bytes = [0u8; FILE_LEN as usize];
        file.read_exact_at(&mut bytes, 0)?;
        // Never overwrite the newer slot: a torn write must leave it.
        let next = u64::from(decode(&bytes[..SLOT]) > decode(&bytes[SLOT..]));
        Ok(SlotFile {
            file,
            path: path.to_path_buf(),
            next,
        })
    }

    /// Overwrites the older slot with `value` and fsyncs; no allocation
    /// on disk, so this works on a full file system.
    pub fn store(&mut self, value: u64) -> io::Result<()> {
        let offset = self.next * SLOT as u64;
        self.file.write_all_at(&encode(value), offset)?;
        self.file.sync_data()?;
        self.next = 1 - self.next;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The value in `path` if it is a slot file; `Ok(None)` when missing or in
/// another format.
pub fn read(path: &Path) -> io::Result<Option<u64>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(read_slots(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_slot_leaves_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let mut f = SlotFile::open(&path, 7).unwrap();
        assert_eq!(read(&path).unwrap(), Some(7));
        f.store(8).unwrap();
        f.store(9).unwrap();
        assert_eq!(read(&path).unwrap(), Some(9));
        // A crash in the middle of the next store (slot 0) tears it.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap(), Some(9));
        // Reopening keeps the value and the format.
        let mut f = SlotFile::open(&path, 0).unwrap();
        f.store(10).unwrap();
        assert_eq!(read(&path).unwrap(), Some(10));
    }

    #[test]
    fn other_content_is_not_a_slot_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        std::fs::write(&path, b"42\n").unwrap();
        assert_eq!(read(&path).unwrap(), None);
        SlotFile::open(&path, 42).unwrap();
        assert_eq!(read(&path).unwrap(), Some(42));
    }
}
