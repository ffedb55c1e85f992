//! JSON Lines sink: one record per line, appended to a file.
//!
//! Rotation by size: once the file holds `audit.file_rotate_bytes`, it is
//! flushed, fsynced and renamed to `<file>.<UTC time>` (for example
//! `audit.jsonl.20261129T151500.123456Z`, so names sort by age), and a new
//! file is started. pgtrail never deletes rotated files: how long audit
//! records are kept is the operator's decision (logrotate, a shipper, ...).
//!
//! One process per file: `<file>.lock` is locked (`lockfile`) while the
//! sink lives.
//!
//! A failed write (disk full, I/O error): the file is cut back to its
//! length before the write (appends are whole lines or nothing) and the
//! lines stay buffered; the gate is closed (`FileDisk`) and the write is
//! tried again after `PROBE_EVERY`, doubling to `PROBE_MAX` while it keeps
//! failing (each try writes every held line). Meanwhile records are
//! reported as not taken (`Offer::Failing`), and `policy` decides: hold
//! them here (up to `MAX_HELD`, then the writer waits) or give up what is
//! held, told later by a gap line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{AuditSink, Held, Offer, Released, Room};
use crate::audit::disk::lockfile::{lock_path_for, PathLock};
use crate::audit::record::{format_time, Record};
use crate::audit::writer::gate::{AuditGate, Blocked};

/// Lines are written once this much is buffered, or at each flush.
const WRITE_AT: usize = 256 * 1024;
/// While writes fail, the writer waits once this much is held.
const MAX_HELD: usize = 16 << 20;
/// While writes fail, a write is tried again at most this often.
const PROBE_EVERY: Duration = Duration::from_millis(200);
const PROBE_MAX: Duration = Duration::from_secs(2);
/// What one write holds while the disk recovers.
const RESUME_CHUNK: usize = 64 << 10;

/// When the audit file is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSync {
    /// Never by pgtrail (the kernel writes it back).
    Never,
    /// Each write (durability `before_ack` without a spool).
    EachWrite,
    /// At a flush that follows row changes (the decoding consumer confirms
    /// its slot only once they are durable; statement records stay as
    /// durable as under `async`).
    Changes,
}

pub struct JsonlSink {
    path: PathBuf,
    file: File,
    sync: FileSync,
    /// A row change was buffered since the last fsync (`FileSync::Changes`).
    changes_unsynced: bool,
    /// Rotate at this size; 0 never.
    rotate_bytes: u64,
    /// Bytes in the current file (written, not necessarily fsynced).
    size: u64,
    /// Lines not written yet, and the seqs they account for.
    buf: Vec<u8>,
    held: Held,
    /// The line being encoded, reused so a record costs no allocation here.
    line: Vec<u8>,
    gate: Arc<AuditGate>,
    /// The last write error while writes fail, and when it was last tried.
    failing: Option<String>,
    probed: Instant,
    /// How long after `probed` the next try is due.
    probe_wait: Duration,
    /// Whether rotation failed last time (logged once).
    rotate_failing: bool,
    _lock: PathLock,
}

impl JsonlSink {
    /// Opens `path` for appending, creating it if needed; fails if another
    /// process has it open (see `lockfile`).
    pub fn open(path: &Path, sync: FileSync, rotate_bytes: u64) -> io::Result<JsonlSink> {
        let lock = PathLock::acquire(&lock_path_for(path), "audit file")?;
        cut_torn_tail(path)?;
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(JsonlSink {
            path: path.to_path_buf(),
            file,
            sync,
            changes_unsynced: false,
            rotate_bytes,
            size,
            buf: Vec::with_capacity(WRITE_AT + 4096),
            held: Held::default(),
            line: Vec::with_capacity(4096),
            gate: Arc::default(),
            failing: None,
            probed: Instant::now(),
            probe_wait: PROBE_EVERY,
            rotate_failing: false,
            _lock: lock,
        })
    }

    /// The gate to close while writes fail.
    pub fn guard(&mut self, gate: Arc<AuditGate>) {
        self.gate = gate;
    }

    /// Seals the current file under a timestamped name and starts anew.
    fn rotate(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.file.sync_all()?;
        let stamp: String = format_time(SystemTime::now())
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{stamp}"));
        let mut rotated = PathBuf::from(&name);
        // Never replace an earlier rotated file (two in one microsecond).
        let mut n = 1;
        while rotated.exists() {
            let mut again = name.clone();
            again.push(format!(".{n}"));
            rotated = PathBuf::from(again);
            n += 1;
        }
        std::fs::rename(&self.path, &rotated)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        tracing::info!(file = %self.path.display(), rotated = %rotated.display(), "audit file rotated");
        Ok(())
    }

    fn encode(&mut self, record: &Record, end_seq: u64) {
        self.line.clear();
        crate::audit::record::json::write_record(record, &mut self.line);
        self.line.push(b'\n');
        self.buf.extend_from_slice(&self.line);
        self.held.add(record.seq(), end_seq, record.header().chain);
        self.changes_unsynced |= matches!(record, Record::Change(_));
    }

    /// Appends the buffered lines (and fsyncs them under
    /// `FileSync::EachWrite`); on failure cuts the file back and keeps
    /// them.
    fn write_out(&mut self) -> io::Result<()> {
        self.write_prefix(self.buf.len())
    }

    /// Appends `buf[..len]` (whole lines; fsynced under `EachWrite`).
    fn write_prefix(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let chunk = &self.buf[..len];
        let written = self.file.write_all(chunk).and_then(|()| {
            if self.sync == FileSync::EachWrite {
                self.file.sync_data()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            return Err(self.on_write_error(e));
        }
        self.size += len as u64;
        if len == self.buf.len() {
            self.buf.clear();
            self.held.wrote(self.held.records(), None);
            return Ok(());
        }
        let lines = self.buf[..len].iter().filter(|&&b| b == b'\n').count() as u64;
        self.buf.drain(..len);
        self.held.wrote(lines, first_line_seq(&self.buf));
        Ok(())
    }

    /// While writes fail: the held lines a chunk at a time, so a disk with
    /// less room than they need still makes progress.
    fn write_out_in_chunks(&mut self) -> io::Result<()> {
        while !self.buf.is_empty() {
            let end = self.buf.len().min(RESUME_CHUNK);
            let len = match self.buf[..end].iter().rposition(|&b| b == b'\n') {
                Some(at) => at + 1,
                // One line longer than a chunk: up to its end.
                None => self
                    .buf
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.buf.len(), |at| at + 1),
            };
            self.write_prefix(len)?;
        }
        Ok(())
    }

    fn on_write_error(&mut self, e: io::Error) -> io::Error {
        // Part of the buffer may have reached the file: cut it back so
        // the file ends with a whole line; the buffer still holds it all.
        if let Err(cut) = self.file.set_len(self.size) {
            tracing::error!(file = %self.path.display(), error = %cut, "audit file could not be cut back after a failed write: it may end with a partial line");
        }
        if self.failing.is_none() {
            tracing::error!(file = %self.path.display(), error = %e, "audit file write failed (disk full?): retried until it works");
            self.gate.set(Blocked::FileDisk, true);
        }
        self.failing = Some(e.to_string());
        e
    }

    /// While writes fail: tries again once the pause is over;
    /// whether writes work again.
    fn try_resume(&mut self) -> bool {
        if self.probed.elapsed() < self.probe_wait {
            return false;
        }
        self.probed = Instant::now();
        if self.write_out_in_chunks().is_err() {
            self.probe_wait = (self.probe_wait * 2).clamp(PROBE_EVERY, PROBE_MAX);
            return false;
        }
        self.probe_wait = PROBE_EVERY;
        tracing::info!(file = %self.path.display(), "audit file writes work again");
        self.failing = None;
        self.gate.set(Blocked::FileDisk, false);
        true
    }

    fn failing_error(&self) -> io::Result<()> {
        match &self.failing {
            Some(e) => Err(io::Error::other(format!(
                "audit file write failing ({e}); the record is kept in memory and written when the disk takes it"
            ))),
            None => Ok(()),
        }
    }
}

/// The `seq` of the first line in `buf` (the encoder writes the key as
/// `"seq":N`; inside strings a quote is escaped, so this is the key).
pub(crate) fn first_line_seq(buf: &[u8]) -> Option<u64> {
    let line = &buf[..buf.iter().position(|&b| b == b'\n')?];
    let key = b"\"seq\":";
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The last `bytes` of `path` (all of it when shorter); `None` when there
/// is no such file.
pub(crate) fn read_tail(path: &Path, bytes: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(bytes)))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    Ok(Some(tail))
}

/// The last whole line of `tail`, its newline included.
pub(crate) fn last_whole_line(tail: &[u8]) -> Option<&[u8]> {
    let end = tail.iter().rposition(|&b| b == b'\n')?;
    let start = tail[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    Some(&tail[start..=end])
}

/// `(commit_lsn, change_index)` of the last `changes` record in the audit
/// file's last 16 MiB, whichever instance wrote it (an instance without a
/// fixed id is a new one at each start; the decoding position belongs to
/// the file).
pub fn last_change(path: &Path) -> Option<(u64, u32)> {
    #[derive(serde::Deserialize)]
    struct Change {
        commit_lsn: u64,
        change_index: u32,
    }
    let tail = read_tail(path, 16 << 20).ok()??;
    tail.split(|&b| b == b'\n')
        .rev()
        .filter(|line| line.starts_with(b"{\"record\":\"changes\""))
        .find_map(|line| serde_json::from_slice::<Change>(line).ok())
        .map(|c| (c.commit_lsn, c.change_index))
}

/// A last line without its newline is an append a crash cut short (never
/// acknowledged as durable): it is cut off, as the spool cuts a torn frame,
/// so the next record starts a line of its own.
fn cut_torn_tail(path: &Path) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut keep = len;
    let mut chunk = vec![0u8; 64 << 10];
    while keep > 0 {
        let start = keep.saturating_sub(chunk.len() as u64);
        let n = (keep - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk[..n])?;
        if let Some(at) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            keep = start + at as u64 + 1;
            break;
        }
        keep = start;
    }
    if keep < len {
        tracing::warn!(file = %path.display(), bytes = len - keep, "audit file: a torn last line (an append cut short by a crash) is cut off");
        f.set_len(keep)?;
        f.sync_all()?;
    }
    Ok(())
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AuditSink for JsonlSink {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }

    fn offer(&mut self, record: &Record, end_seq: u64, _room: Room) -> Offer {
        if self.failing.is_some() && !self.try_resume() {
            if let Err(e) = self.failing_error() {
                return Offer::Failing(e);
            }
        }
        self.encode(record, end_seq);
        if self.rotate_bytes > 0 && self.size + self.buf.len() as u64 >= self.rotate_bytes {
            match self.rotate() {
                Ok(()) => self.rotate_failing = false,
                Err(e) if self.failing.is_none() && !self.rotate_failing => {
                    self.rotate_failing = true;
                    tracing::error!(file = %self.path.display(), error = %e, "audit file rotation failed; lines go on to the current file");
                }
                Err(_) => {}
            }
        } else if self.buf.len() >= WRITE_AT {
            // A failure keeps the line buffered: see the module doc.
            let _ = self.write_out();
        }
        Offer::Taken
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failing.is_some() {
            self.try_resume();
            return self.failing_error();
        }
        self.write_out()?;
        if self.sync == FileSync::Changes && self.changes_unsynced {
            self.file.sync_data()?;
            self.changes_unsynced = false;
        }
        Ok(())
    }

    fn hold(&mut self, record: &Record, end_seq: u64) {
        self.encode(record, end_seq);
    }

    fn held_full(&self) -> bool {
        self.failing.is_some() && self.buf.len() >= MAX_HELD
    }

    fn release_held(&mut self) -> Option<Released> {
        let released = self.held.release()?;
        self.buf.clear();
        Some(released)
    }

    fn wait(&mut self) {
        std::thread::sleep(PROBE_EVERY);
    }
}

impl Drop for JsonlSink {
    fn drop(&mut self) {
        // A last try now, whatever the retry pause.
        self.probe_wait = Duration::ZERO;
        let _ = self.flush();
        if !self.held.is_empty() {
            tracing::error!(file = %self.path.display(), lines = self.held.records(), "stopping while audit file writes fail: these records were not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{GapRecord, RecordHeader};

    fn gap(seq: u64) -> Record {
        Record::Gap(GapRecord {
            header: RecordHeader {
                event_id: uuid::Uuid::nil(),
                instance_id: "i".into(),
                seq,
                event_time: 0,
                chain: None,
            },
            missing_events: 1,
            reason: "x".repeat(100),
            skipped_seqs: 0,
        })
    }

    #[test]
    fn under_changes_a_flush_syncs_only_after_a_row_change() {
        use crate::audit::record::json::tests as json_tests;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut sink = JsonlSink::open(&path, FileSync::Changes, 1 << 20).expect("open");
        let statement = json_tests::statement("SELECT 1", None);
        let change = json_tests::change("x", 2);
        sink.offer(&statement, 2, Room::WithinLimit);
        assert!(!sink.changes_unsynced, "a statement needs no fsync");
        sink.offer(&change, 3, Room::WithinLimit);
        assert!(sink.changes_unsynced);
        sink.flush().expect("flush");
        assert!(!sink.changes_unsynced, "synced by the flush");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_torn_last_line_is_cut_off_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"torn").unwrap();
        drop(JsonlSink::open(&path, FileSync::Never, 1 << 20).expect("open"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        std::fs::write(&path, "no newline at all").unwrap();
        drop(JsonlSink::open(&path, FileSync::Never, 1 << 20).expect("open"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn rotates_at_the_size_and_keeps_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut sink = JsonlSink::open(&path, FileSync::Never, 1000).expect("open");
        for seq in 1..=50 {
            assert!(matches!(
                sink.offer(&gap(seq), seq + 1, Room::WithinLimit),
                Offer::Taken
            ));
            // Distinct timestamps for the rotated names.
            std::thread::sleep(std::time::Duration::from_micros(5));
        }
        sink.flush().expect("flush");
        let mut seqs = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "lock") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            assert!(
                text.len() < 1000 + 300,
                "{} holds {}",
                path.display(),
                text.len()
            );
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                seqs.push(v["seq"].as_u64().expect("seq"));
            }
            files += 1;
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
        assert!(files > 5, "{files} files");
    }

    #[test]
    fn the_seq_of_the_first_line_is_found() {
        let mut line = Vec::new();
        crate::audit::record::json::write_record(&gap(42), &mut line);
        line.push(b'\n');
        line.extend_from_slice(b"{}\n");
        assert_eq!(first_line_seq(&line), Some(42));
        assert_eq!(first_line_seq(b"no newline"), None);
    }
}
