//! One process per spool directory and per audit file.
//!
//! Two pgtrail processes on one spool would hand out the same
//! `(instance_id, seq)` for different records (and ClickHouse would
//! deduplicate one of them away). A replacement started while the old
//! process still drains is the usual way to get there. So each process
//! takes an exclusive `flock` on a lock file (`<spool_dir>/lock`,
//! `<audit file>.lock`) and keeps it until the sink that uses the path is
//! dropped; the kernel releases it when the process dies, even by SIGKILL.
//! The holder writes its pid into the file so the refusal can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct PathLock {
    _file: File,
    path: PathBuf,
}

impl PathLock {
    /// Takes the lock at `path` (created if missing) without waiting; if
    /// another process holds it, the error names that process's pid.
    pub fn acquire(path: &Path, what: &str) -> io::Result<PathLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_pid(&mut file);
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{what} is in use by another pgtrail process (pid {holder}, lock file {}); one process per {what}: stop it first or give this one its own",
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // Best effort: the pid only makes the refusal clearer, and writing
        // it may fail on a full disk; the lock itself is what counts.
        let pid = std::process::id().to_string();
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all(pid.as_bytes()));
        Ok(PathLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_pid(file: &mut File) -> String {
    let mut text = String::new();
    match file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
    {
        Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
        _ => "unknown".to_string(),
    }
}

/// `<file>.lock`, next to an audit file.
pub fn lock_path_for(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = PathLock::acquire(&path, "spool directory").unwrap();
        let e = PathLock::acquire(&path, "spool directory").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        PathLock::acquire(&path, "spool directory").unwrap();
    }
}
