//! JSON Lines sink: one record per line, appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::pipeline::AuditSink;
use super::record::Record;

pub struct JsonlSink {
    path: PathBuf,
    out: BufWriter<File>,
    /// `flush` also fsyncs (durability `before_ack` without a spool).
    durable: bool,
}

impl JsonlSink {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path, durable: bool) -> io::Result<JsonlSink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 * 1024, file),
            durable,
        })
    }
}

impl AuditSink for JsonlSink {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.durable {
            self.out.get_ref().sync_data()?;
        }
        Ok(())
    }
}
