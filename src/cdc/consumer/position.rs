//! The consumer's durable position: the end LSN of the last transaction
//! whose change records are durable, in a two-slot CRC-checked file
//! (`audit::disk::slotfile`), written at most every 250 ms (`note`). On
//! restart decoding resumes at the slot's confirmed position, which may be
//! behind (a crash before the next standby status update): a transaction
//! whose commit record starts below the position was written already and
//! is skipped, and so is what the trail's last change says it holds
//! (`trail_holds`), which covers the file being a little behind too.

use std::io;
use std::path::{Path, PathBuf};

use crate::audit::disk::slotfile::SlotFile;
use crate::cdc::Lsn;

/// How often the position file is written while transactions come.
const STORE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

pub struct PositionFile {
    file: SlotFile,
    value: Lsn,
    /// A durable end not fsynced yet (`note`), and when the file was last.
    unstored: Option<Lsn>,
    stored_at: std::time::Instant,
    /// The last change the audit trail holds (`trail_holds`), when it is
    /// past the position: a crash after its records were durable and
    /// before the position moved.
    trail: Option<(Lsn, u32)>,
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
            unstored: None,
            stored_at: std::time::Instant::now(),
            trail: None,
        })
    }

    pub fn get(&self) -> Lsn {
        self.value
    }

    /// The audit trail already holds the change `(commit_lsn,
    /// change_index)` and, records being written in order, every change
    /// before it.
    pub fn trail_holds(&mut self, (commit_lsn, change_index): (u64, u32)) {
        if Lsn(commit_lsn) >= self.value {
            self.trail = Some((Lsn(commit_lsn), change_index));
        }
    }

    /// Whether the transaction whose commit record is at `commit_lsn` was
    /// written before (its end is at or below the position, or a later
    /// transaction's change is in the trail).
    pub fn written(&self, commit_lsn: Lsn) -> bool {
        commit_lsn < self.value || self.trail.is_some_and(|(c, _)| commit_lsn < c)
    }

    /// Of the transaction at `commit_lsn`, the changes up to this index
    /// are in the trail already (a crash in the middle of writing it).
    pub fn written_through(&self, commit_lsn: Lsn) -> Option<u32> {
        self.trail.filter(|(c, _)| *c == commit_lsn).map(|(_, i)| i)
    }

    /// The transaction ending at `end_lsn` is durable: the file moves to it
    /// at most every `STORE_EVERY`, not per transaction (an fsync each was
    /// most of the consumer's cost under load). A crash may then leave the
    /// file a little behind: what is decoded again is in the trail, and the
    /// trail's last change says so (`trail_holds`).
    pub fn note(&mut self, end_lsn: Lsn) -> io::Result<()> {
        if self.stored_at.elapsed() < STORE_EVERY {
            self.unstored = Some(self.unstored.map_or(end_lsn, |u| u.max(end_lsn)));
            return Ok(());
        }
        self.store(end_lsn)
    }

    /// Stores what `note` kept back (idle, or stopping).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.unstored {
            Some(end) => self.store(end),
            None => Ok(()),
        }
    }

    /// Moves the position to `end_lsn` (never back) and fsyncs it.
    pub fn store(&mut self, end_lsn: Lsn) -> io::Result<()> {
        let end_lsn = self.unstored.take().map_or(end_lsn, |u| u.max(end_lsn));
        self.stored_at = std::time::Instant::now();
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

    #[test]
    fn notes_are_stored_at_most_every_interval_and_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdc_position");
        let mut p = PositionFile::open(&path).unwrap();
        p.note(Lsn(100)).unwrap();
        p.note(Lsn(200)).unwrap();
        // Within the interval: kept back, the file unchanged.
        assert_eq!(PositionFile::open(&path).unwrap().get(), Lsn(0));
        p.flush().unwrap();
        assert_eq!(PositionFile::open(&path).unwrap().get(), Lsn(200));
        std::thread::sleep(STORE_EVERY);
        p.note(Lsn(300)).unwrap();
        assert_eq!(PositionFile::open(&path).unwrap().get(), Lsn(300));
    }

    #[test]
    fn the_trails_last_change_skips_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PositionFile::open(&dir.path().join("cdc_position")).unwrap();
        p.store(Lsn(500)).unwrap();
        // Behind the position: nothing new.
        p.trail_holds((400, 3));
        assert_eq!(
            (p.written(Lsn(450)), p.written_through(Lsn(400))),
            (true, None)
        );
        // Past it: transactions before it are written, and its own changes
        // up to the index.
        p.trail_holds((700, 2));
        assert!(p.written(Lsn(600)));
        assert!(!p.written(Lsn(700)));
        assert_eq!(p.written_through(Lsn(700)), Some(2));
        assert!(!p.written(Lsn(800)));
    }
}
