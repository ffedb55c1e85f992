//! The seq high-water mark: seqs are handed out only below a mark that is
//! already on disk, so no seq is used twice across restarts, even when the
//! records that carried them were lost in a crash.
//!
//! The mark moves in blocks of `SEQ_BLOCK` (one fsync per block, not per
//! record). A clean stop lowers it to the last seq used, so a clean
//! restart continues without a jump; after a crash the next start continues
//! above the block and writes a gap record for the seqs between the last
//! record it finds and the mark.

use std::io;
use std::path::{Path, PathBuf};

use crate::audit::disk::slotfile::{self, SlotFile};

/// Seqs reserved per update of the mark.
pub const SEQ_BLOCK: u64 = 1 << 16;

pub struct SeqMark {
    file: SlotFile,
    /// Every seq up to this is reserved (may have been handed out).
    through: u64,
    /// Whether the last update failed (logged once per episode).
    failing: bool,
}

impl SeqMark {
    /// `through`: the mark as read at start (or the last seq in use).
    pub fn new(file: SlotFile, through: u64) -> SeqMark {
        SeqMark {
            file,
            through,
            failing: false,
        }
    }

    /// Makes sure `seq` is below the mark on disk before it is used. If the
    /// mark cannot be written (an I/O error: it needs no free space) the
    /// seq is used anyway, logged, and the update tried again next record:
    /// refusing records would lose them for certain.
    pub fn cover(&mut self, seq: u64) {
        if seq <= self.through {
            return;
        }
        let mark = seq.saturating_add(SEQ_BLOCK - 1);
        match self.file.store(mark) {
            Ok(()) => {
                if self.failing {
                    tracing::info!(path = %self.file.path().display(), "seq high-water mark written again");
                }
                self.failing = false;
                self.through = mark;
            }
            Err(e) => {
                if !self.failing {
                    tracing::error!(path = %self.file.path().display(), error = %e, seq, "could not write the seq high-water mark: after a crash, seqs from here could be used again");
                }
                self.failing = true;
            }
        }
    }

    /// A clean stop: lowers the mark to the last seq used (both slots, as
    /// the larger slot wins), so the next start continues without a jump.
    pub fn finish(&mut self, last_used: u64) {
        if last_used >= self.through {
            return;
        }
        let result = self
            .file
            .store(last_used)
            .and_then(|()| self.file.store(last_used));
        match result {
            Ok(()) => self.through = last_used,
            Err(e) => {
                tracing::warn!(error = %e, "could not lower the seq high-water mark at stop; the next start skips to it and writes a gap record")
            }
        }
    }
}

/// Without a spool, a configured `audit.instance_id` with `audit.file`:
/// the mark is `<file>.seq`. Returns it, the mark read, and the seq of the
/// file's last whole line (where the records really stopped), if any.
pub fn for_audit_file(file: &Path) -> io::Result<(SlotFile, u64, Option<u64>)> {
    let mut name = file.as_os_str().to_owned();
    name.push(".seq");
    let path = PathBuf::from(name);
    let mark = slotfile::read(&path)?.unwrap_or(0);
    let last = last_line_seq(file)?;
    let slot = SlotFile::open(&path, mark.max(last.unwrap_or(0)))?;
    Ok((slot, mark, last))
}

/// The seq of the last whole line of a JSON Lines file (its last 64 KiB).
fn last_line_seq(file: &Path) -> io::Result<Option<u64>> {
    use crate::audit::sink::jsonl::{first_line_seq, last_whole_line, read_tail};
    let Some(tail) = read_tail(file, 64 << 10)? else {
        return Ok(None);
    };
    Ok(last_whole_line(&tail).and_then(first_line_seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::disk::slotfile;

    #[test]
    fn the_mark_is_ahead_of_every_seq_used_and_lowered_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        let mut mark = SeqMark::new(SlotFile::open(&path, 0).unwrap(), 0);
        mark.cover(1);
        assert_eq!(slotfile::read(&path).unwrap(), Some(SEQ_BLOCK));
        mark.cover(SEQ_BLOCK);
        assert_eq!(slotfile::read(&path).unwrap(), Some(SEQ_BLOCK));
        mark.cover(SEQ_BLOCK + 1);
        assert_eq!(slotfile::read(&path).unwrap(), Some(2 * SEQ_BLOCK));
        mark.finish(SEQ_BLOCK + 1);
        assert_eq!(slotfile::read(&path).unwrap(), Some(SEQ_BLOCK + 1));
    }
}
