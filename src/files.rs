//! Files that hold secrets (the users file, generated keys): written 0600
//! from the start, and checked at start for modes that let others read.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A secrets file that could not be written: the file the failing step
/// touched (the temporary file, or the target of the rename) and why.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Writes `bytes` to `path` through a temporary file created 0600, synced
/// and renamed over `path`, so a reader sees the old file or the new one,
/// and nobody else can read it at any point.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = path.with_extension("tmp");
    let at = |p: &Path, source: io::Error| WriteError {
        path: p.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| at(&tmp, e))?;
    // `mode` applies only when the file is created: a stale temp file
    // keeps its own mode, so set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| at(&tmp, e))?;
    f.write_all(bytes).map_err(|e| at(&tmp, e))?;
    f.sync_all().map_err(|e| at(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| at(path, e))
}

/// The permission bits of `path` when group or others may read it.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then_some(mode)
}

/// Logs a warning naming `path` and its mode when others may read it.
pub fn warn_if_readable(path: &Path, what: &str) {
    if let Some(mode) = readable_by_others(path) {
        tracing::warn!(
            file = %path.display(),
            mode = %format!("{mode:04o}"),
            "{what} holds secrets and is readable by group or others: chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_even_over_a_stale_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(path.with_extension("tmp"), "old").unwrap();
        std::fs::set_permissions(
            path.with_extension("tmp"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(readable_by_others(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(readable_by_others(&path), Some(0o640));
    }
}
