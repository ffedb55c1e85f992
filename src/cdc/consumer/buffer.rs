//! The changes of one decoded transaction, held until its Commit (the
//! attribution marker arrives just before it). Up to a bound they stay in
//! memory; past it they go to an unnamed temporary file (deleted when
//! closed), so a transaction of a million rows costs a file, not memory.
//! PostgreSQL itself spills large transactions before sending them, so
//! this buffer is what keeps pgtrail's side bounded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::audit::event::ChangeEvent;

/// When the held changes go to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpillLimits {
    pub max_changes: usize,
    pub max_bytes: usize,
}

impl Default for SpillLimits {
    fn default() -> Self {
        SpillLimits {
            max_changes: 10_000,
            max_bytes: 8 << 20,
        }
    }
}

pub struct TxnBuffer {
    limits: SpillLimits,
    dir: PathBuf,
    mem: Vec<ChangeEvent>,
    mem_bytes: usize,
    /// Changes already on disk, one JSON line each, in order before `mem`.
    spill: Option<BufWriter<File>>,
    spilled: usize,
}

/// An estimate of what a change holds in memory.
fn weight(c: &ChangeEvent) -> usize {
    let cols = |v: &[(std::sync::Arc<str>, Option<String>)]| -> usize {
        v.iter()
            .map(|(n, x)| n.len() + x.as_ref().map_or(0, String::len) + 56)
            .sum()
    };
    256 + c.schema.len()
        + c.table.len()
        + cols(&c.key)
        + cols(&c.old)
        + cols(&c.new)
        + c.changed_columns
            .iter()
            .map(|s| s.len() + 24)
            .sum::<usize>()
}

impl TxnBuffer {
    pub fn new(limits: SpillLimits, dir: PathBuf) -> Self {
        TxnBuffer {
            limits,
            dir,
            mem: Vec::new(),
            mem_bytes: 0,
            spill: None,
            spilled: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.spilled + self.mem.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether part of the transaction is on disk.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    pub fn push(&mut self, change: ChangeEvent) -> io::Result<()> {
        self.mem_bytes += weight(&change);
        self.mem.push(change);
        if self.mem.len() >= self.limits.max_changes || self.mem_bytes >= self.limits.max_bytes {
            self.spill_mem()?;
        }
        Ok(())
    }

    fn spill_mem(&mut self) -> io::Result<()> {
        let out = match &mut self.spill {
            Some(out) => out,
            None => self.spill.insert(BufWriter::new(unnamed_file(&self.dir)?)),
        };
        for change in self.mem.drain(..) {
            serde_json::to_writer(&mut *out, &change)?;
            out.write_all(b"\n")?;
            self.spilled += 1;
        }
        self.mem_bytes = 0;
        Ok(())
    }

    /// Every change in order: those on disk, read back one at a time, then
    /// those in memory.
    pub fn drain(self) -> io::Result<Drain> {
        let file = match self.spill {
            Some(out) => {
                let mut file = out.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                Some(BufReader::new(file))
            }
            None => None,
        };
        Ok(Drain {
            file,
            line: String::new(),
            mem: self.mem.into_iter(),
        })
    }
}

/// A new file in `dir` whose name is removed at once: it lives as long as
/// it is open, and a crash leaves nothing behind.
fn unnamed_file(dir: &std::path::Path) -> io::Result<File> {
    let tag = getrandom::u64().map_err(io::Error::other)?;
    let path = dir.join(format!(".cdc-spill-{}-{tag:016x}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

pub struct Drain {
    file: Option<BufReader<File>>,
    line: String,
    mem: std::vec::IntoIter<ChangeEvent>,
}

impl Iterator for Drain {
    type Item = io::Result<ChangeEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(file) = &mut self.file {
            self.line.clear();
            match file.read_line(&mut self.line) {
                Ok(0) => self.file = None,
                Ok(_) => {
                    return Some(serde_json::from_str(&self.line).map_err(io::Error::other));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        self.mem.next().map(Ok)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::event::{Attribution, ChangeOp};

    pub(crate) fn change(i: u32) -> ChangeEvent {
        ChangeEvent {
            commit_lsn: 100,
            lsn: 90 + u64::from(i),
            change_index: i,
            xid: 7,
            commit_time: 1,
            database: "d".into(),
            schema: "public".into(),
            table: "t".into(),
            op: ChangeOp::Insert,
            key: vec![("id".into(), Some(i.to_string()))],
            old: vec![],
            new: vec![
                ("id".into(), Some(i.to_string())),
                ("note".into(), None),
                ("text".into(), Some("line\nbreak \"q\"".into())),
            ],
            old_complete: false,
            changed_columns: vec![],
            truncated_columns: vec![],
            transaction_id: None,
            statement_seq: None,
            statement_index: None,
            statement_claimed: false,
            session_id: Default::default(),
            user: Default::default(),
            db_role: Default::default(),
            client_addr: Default::default(),
            application_name: Default::default(),
            attribution: Attribution::None,
            forged_marker: false,
        }
    }

    #[test]
    fn small_transactions_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = TxnBuffer::new(SpillLimits::default(), dir.path().into());
        for i in 0..3 {
            b.push(change(i)).unwrap();
        }
        assert!(!b.spilled());
        let out: Vec<_> = b.drain().unwrap().map(Result::unwrap).collect();
        assert_eq!(out, (0..3).map(change).collect::<Vec<_>>());
    }

    #[test]
    fn past_the_bound_changes_go_to_disk_and_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpillLimits {
            max_changes: 4,
            max_bytes: usize::MAX,
        };
        let mut b = TxnBuffer::new(limits, dir.path().into());
        for i in 0..10 {
            b.push(change(i)).unwrap();
            // Never more than the bound in memory.
            assert!(b.mem.len() < 4);
        }
        assert!(b.spilled());
        assert_eq!(b.len(), 10);
        let out: Vec<_> = b.drain().unwrap().map(Result::unwrap).collect();
        assert_eq!(out, (0..10).map(change).collect::<Vec<_>>());
        // The spill file has no name: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_byte_bound_spills_too() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpillLimits {
            max_changes: usize::MAX,
            max_bytes: 1000,
        };
        let mut b = TxnBuffer::new(limits, dir.path().into());
        for i in 0..5 {
            b.push(change(i)).unwrap();
        }
        assert!(b.spilled() && b.mem_bytes < 1000);
        assert_eq!(b.drain().unwrap().count(), 5);
    }
}
