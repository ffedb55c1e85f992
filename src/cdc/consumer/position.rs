//! The consumer's durable position: the end LSN of the last transaction
//! whose change records are durable, in a two-slot CRC-checked file
//! (`audit::disk::slotfile`). PostgreSQL's slot is confirmed after this
//! file is written, and on restart decoding resumes at the slot's
//! confirmed position, which may be behind (a crash before the next
//! standby status update): a transaction whose commit record starts below
//! the position was written already and is skipped.

use std::io;
use std::path::{Path, PathBuf};

use crate::audit::disk::slotfile::SlotFile;
use crate::cdc::Lsn;

pub struct PositionFile {
    file: SlotFile,
    value: Lsn,
}

impl PositionFile {
    /// `<spool_dir>/cdc_position`, else `<audit.file>.cdc_position`.
    pub fn path_for(config: &crate::config::Config) -> Option<PathBuf> {
        if let Some(dir) = &config.audit.spool_dir {
            return Some(dir.join("cdc_position"));
        }
        config.audit.file.as_ref().map(|f| {
            let mut name = f.as_os_str().to_owned();
            name.push(".cdc_position");
            PathBuf::from(name)
        })
    }

    pub fn open(path: &Path) -> io::Result<PositionFile> {
        let value = crate::audit::disk::slotfile::read(path)?.unwrap_or(0);
        let file = SlotFile::open(path, value)?;
        Ok(PositionFile {
            file,
            value: Lsn(value),
        })
    }

    pub fn get(&self) -> Lsn {
        self.value
    }

    /// Whether the transaction whose commit record is at `commit_lsn` was
    /// written before (its end is at or below the position).
    pub fn written(&self, commit_lsn: Lsn) -> bool {
        commit_lsn < self.value
    }

    /// Moves the position to `end_lsn` (never back) and fsyncs it.
    pub fn store(&mut self, end_lsn: Lsn) -> io::Result<()> {
        if end_lsn <= self.value {
            return Ok(());
        }
        self.file.store(end_lsn.0)?;
        self.value = end_lsn;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_survives_a_reopen_and_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdc_position");
        let mut p = PositionFile::open(&path).unwrap();
        assert_eq!(p.get(), Lsn(0));
        assert!(!p.written(Lsn(1)));
        p.store(Lsn(500)).unwrap();
        p.store(Lsn(300)).unwrap();
        let p = PositionFile::open(&path).unwrap();
        assert_eq!(p.get(), Lsn(500));
        // A commit record starting below 500 ended at or before it.
        assert!(p.written(Lsn(480)));
        assert!(!p.written(Lsn(500)));
    }
}
