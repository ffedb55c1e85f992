//! A small tmpfs mount for full-disk tests, unmounted when dropped (also
//! when the test panics). Mounting needs root (CI runs the tests as root);
//! elsewhere `mount` returns `None` and the test prints a SKIPPED line.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (for example `"2m"`); `None` if not allowed.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Tmpfs { path, _dir: dir })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the file system but for about `leave` bytes, with a file
    /// that `free` deletes.
    pub fn fill_leaving(&self, leave: u64) {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let avail: u64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
        let size = avail.saturating_sub(leave) as usize;
        std::fs::write(self.path.join("filler"), vec![1u8; size]).unwrap();
    }

    /// Deletes the filler file.
    pub fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding files there must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Mounts a tmpfs or prints the SKIPPED line for `test`.
pub fn mount_or_skip(size: &str, test: &str) -> Option<Tmpfs> {
    let mount = Tmpfs::mount(size);
    if mount.is_none() {
        println!("SKIPPED {test}: cannot mount a tmpfs here (needs root)");
    }
    mount
}
