//! Where the chain continues after a restart. A clean stop writes the last
//! seq and chain value to a small file (`<spool_dir>/chain`, or
//! `<audit.file>.chain`); the next start continues from it when that seq is
//! the last one used. After a crash the last record kept says where the
//! chain stood: the audit file's last line, else the spool's last frame
//! (whichever has the higher seq); without either the chain restarts, and
//! the start record says so (`clean = false`, no `previous_chain`).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{parse_hex, ChainText, ChainValue, GENESIS};

/// Where the new run's chain continues from; the start record tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStart {
    /// The seq of the record the chain continues from (0: none).
    pub previous_seq: u64,
    /// Its chain value; `None` when not known (a crash without an audit file).
    pub previous_chain: Option<ChainValue>,
    /// The previous run stopped cleanly.
    pub clean: bool,
}

impl ChainStart {
    pub fn new_instance() -> ChainStart {
        ChainStart {
            previous_seq: 0,
            previous_chain: Some(GENESIS),
            clean: true,
        }
    }

    /// The value the first record of this run links to.
    pub fn value(&self) -> ChainValue {
        self.previous_chain.unwrap_or(GENESIS)
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    instance_id: String,
    seq: u64,
    chain: String,
}

/// The state file: beside the spool, else beside the audit file.
pub fn path(spool_dir: Option<&Path>, audit_file: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = spool_dir {
        return Some(dir.join("chain"));
    }
    audit_file.map(|f| {
        let mut name = f.as_os_str().to_owned();
        name.push(".chain");
        PathBuf::from(name)
    })
}

/// Written at a clean stop, after the last record is flushed.
pub fn save(path: &Path, instance_id: &str, seq: u64, chain: &ChainValue) -> io::Result<()> {
    let saved = Saved {
        instance_id: instance_id.into(),
        seq,
        chain: ChainText::of(Some(chain)).as_str().into(),
    };
    let bytes = serde_json::to_vec(&saved)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Where the chain of `instance_id` continues, the next seq being
/// `next_seq`; `spool_last` is the spool's last record (seq, chain value).
pub fn start(
    state: Option<&Path>,
    audit_file: Option<&Path>,
    instance_id: &str,
    next_seq: u64,
    spool_last: Option<(u64, ChainValue)>,
) -> ChainStart {
    if next_seq <= 1 {
        return ChainStart::new_instance();
    }
    let saved = state.and_then(|p| read_saved(p, instance_id));
    if let Some((seq, chain)) = saved {
        if seq == next_seq - 1 {
            return ChainStart {
                previous_seq: seq,
                previous_chain: Some(chain),
                clean: true,
            };
        }
    }
    let last_line = audit_file.and_then(|f| last_line_chain(f, instance_id).ok().flatten());
    let last = match (last_line, spool_last) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    match last {
        Some((seq, chain)) => ChainStart {
            previous_seq: seq,
            previous_chain: Some(chain),
            clean: false,
        },
        None => ChainStart {
            previous_seq: next_seq - 1,
            previous_chain: None,
            clean: false,
        },
    }
}

fn read_saved(path: &Path, instance_id: &str) -> Option<(u64, ChainValue)> {
    let bytes = std::fs::read(path).ok()?;
    let saved: Saved = serde_json::from_slice(&bytes).ok()?;
    if saved.instance_id != instance_id {
        return None;
    }
    Some((saved.seq, parse_hex(&saved.chain)?))
}

#[derive(Deserialize)]
struct LineHeader {
    instance_id: String,
    seq: u64,
    #[serde(default)]
    chain: String,
}

/// The seq and chain of the last whole line of a JSON Lines file (its last
/// 1 MiB), when it is a record of `instance_id` with a chain value.
fn last_line_chain(file: &Path, instance_id: &str) -> io::Result<Option<(u64, ChainValue)>> {
    use crate::audit::sink::jsonl::{last_whole_line, read_tail};
    let Some(tail) = read_tail(file, 1 << 20)? else {
        return Ok(None);
    };
    let line = last_whole_line(&tail).and_then(|l| serde_json::from_slice::<LineHeader>(l).ok());
    Ok(line
        .filter(|l| l.instance_id == instance_id)
        .and_then(|l| parse_hex(&l.chain).map(|c| (l.seq, c))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_stop_is_continued_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("chain");
        let value = [7u8; 32];
        save(&state, "i", 41, &value).unwrap();
        let s = start(Some(&state), None, "i", 42, None);
        assert_eq!(
            (s.previous_seq, s.previous_chain, s.clean),
            (41, Some(value), true)
        );
        // Another instance's state, or records written after it: not clean.
        assert!(!start(Some(&state), None, "j", 42, None).clean);
        let s = start(Some(&state), None, "i", 50, None);
        assert_eq!(
            (s.previous_seq, s.previous_chain, s.clean),
            (49, None, false)
        );
        // After a crash, the spool's last record says where the chain stood.
        let s = start(Some(&state), None, "i", 50, Some((47, [3; 32])));
        assert_eq!(
            (s.previous_seq, s.previous_chain, s.clean),
            (47, Some([3; 32]), false)
        );
        assert_eq!(
            start(Some(&state), None, "i", 1, None),
            ChainStart::new_instance()
        );
    }

    #[test]
    fn after_a_crash_the_audit_file_says_where_the_chain_stood() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.jsonl");
        let hex = ChainText::of(Some(&[9u8; 32])).as_str().to_string();
        let lines = format!(
            "{{\"record\":\"gaps\",\"instance_id\":\"i\",\"seq\":3,\"chain\":\"{hex}\"}}\n{{\"record\":\"gaps\",\"instance_id\":\"i\",\"seq\":4,\"chain\":\"{hex}\"}}\n{{\"torn"
        );
        std::fs::write(&file, lines).unwrap();
        let s = start(None, Some(&file), "i", 9, Some((2, [1; 32])));
        assert_eq!(
            (s.previous_seq, s.previous_chain, s.clean),
            (4, Some([9u8; 32]), false)
        );
    }
}
