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

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::lockfile::{lock_path_for, PathLock};
use super::pipeline::AuditSink;
use super::record::{format_time, Record};

pub struct JsonlSink {
    path: PathBuf,
    out: BufWriter<File>,
    /// `flush` also fsyncs (durability `before_ack` without a spool).
    durable: bool,
    /// Rotate at this size; 0 never.
    rotate_bytes: u64,
    /// Bytes in the current file, written or buffered.
    size: u64,
    /// The line being encoded, reused so a record costs no allocation here.
    line: Vec<u8>,
    _lock: PathLock,
}

impl JsonlSink {
    /// Opens `path` for appending, creating it if needed; fails if another
    /// process has it open (see `lockfile`).
    pub fn open(path: &Path, durable: bool, rotate_bytes: u64) -> io::Result<JsonlSink> {
        let lock = PathLock::acquire(&lock_path_for(path), "audit file")?;
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(JsonlSink {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 * 1024, file),
            durable,
            rotate_bytes,
            size,
            line: Vec::with_capacity(4096),
            _lock: lock,
        })
    }

    /// Seals the current file under a timestamped name and starts anew.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
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
        self.out = BufWriter::with_capacity(256 * 1024, open_append(&self.path)?);
        self.size = 0;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        tracing::info!(file = %self.path.display(), rotated = %rotated.display(), "audit file rotated");
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AuditSink for JsonlSink {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        if self.rotate_bytes > 0 && self.size >= self.rotate_bytes {
            self.rotate()?;
        }
        self.line.clear();
        super::json::write_record(record, &mut self.line);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.size += self.line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.durable {
            self.out.get_ref().sync_data()?;
        }
        Ok(())
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
            },
            missing_events: 1,
            reason: "x".repeat(100),
        })
    }

    #[test]
    fn rotates_at_the_size_and_keeps_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut sink = JsonlSink::open(&path, false, 1000).expect("open");
        for seq in 1..=50 {
            sink.write(&gap(seq)).expect("write");
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
}
