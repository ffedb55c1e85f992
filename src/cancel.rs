//! Cancel keys. Each client sees the server's own backend pid (so
//! `pg_backend_pid()`, notifications, `pg_terminate_backend` and
//! `pg_stat_activity` all agree with what the driver was told) and a secret
//! that pgtrail issues. The registry maps (pid, pgtrail's secret) to the
//! server's key, so a CancelRequest reaches the right server process and a
//! guessed secret cancels nothing: as with PostgreSQL itself, the pid is
//! public and only the 32-bit secret authorises a cancel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::audit::SessionInfo;
use crate::protocol::build;

/// Where a cancel for one client session must go, and whose session it is
/// (for the cancel's audit record).
#[derive(Debug, Clone)]
pub struct UpstreamKey {
    pub addr: SocketAddr,
    pub pid: i32,
    pub secret: Vec<u8>,
    pub session: Arc<SessionInfo>,
}

struct Entry {
    /// Tells this session's entry apart from another one under the same pid.
    id: u64,
    secret: [u8; 4],
    upstream: UpstreamKey,
}

/// Live sessions by server pid. A pid usually has one entry; it can briefly
/// have two when a backend has exited and the kernel reuses its pid for a
/// new session before the old session's key is dropped.
#[derive(Default)]
pub struct CancelRegistry {
    map: Mutex<HashMap<i32, Vec<Entry>>>,
    next_id: AtomicU64,
    /// Unmatched cancels are logged at most this often: forged cancels
    /// cost an attacker one packet each and must not flood the log.
    unmatched_log: LogBudget,
}

/// The key handed to one client; removes itself when the session ends.
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    id: u64,
    /// The server's backend pid, passed on unchanged.
    pub pid: i32,
    /// pgtrail's secret, never the server's.
    pub secret: i32,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        let mut map = self.registry.entries();
        if let Some(entries) = map.get_mut(&self.pid) {
            entries.retain(|e| e.id != self.id);
            if entries.is_empty() {
                map.remove(&self.pid);
            }
        }
    }
}

impl CancelRegistry {
    fn entries(&self) -> MutexGuard<'_, HashMap<i32, Vec<Entry>>> {
        // The map holds no invariant a panic could break half-way.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session: the client gets the server's pid and a fresh
    /// secret of pgtrail's.
    pub fn register(self: &Arc<Self>, upstream: UpstreamKey) -> std::io::Result<CancelKey> {
        let secret = random_i32()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let pid = upstream.pid;
        self.entries().entry(pid).or_default().push(Entry {
            id,
            secret: secret.to_be_bytes(),
            upstream,
        });
        Ok(CancelKey {
            registry: self.clone(),
            id,
            pid,
            secret,
        })
    }

    /// The upstream key for a client's (pid, secret). Every entry of the pid
    /// is compared, each in constant time, so the time taken does not tell
    /// how much of a guessed secret was right.
    pub fn lookup(&self, pid: i32, secret: &[u8]) -> Option<UpstreamKey> {
        let map = self.entries();
        let mut found = None;
        for entry in map.get(&pid)? {
            if bool::from(entry.secret[..].ct_eq(secret)) {
                found = Some(entry.upstream.clone());
            }
        }
        found
    }

    /// Sessions with a key.
    pub fn len(&self) -> usize {
        self.entries().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts an unmatched cancel; `Some(n)` when it may be logged and
    /// audited now, `n` being the unmatched cancels since the last time.
    pub fn unmatched_report(&self) -> Option<u64> {
        self.unmatched_log.take(Instant::now())
    }
}

/// One log line per `LOG_EVERY` at most; the lines in between are counted.
#[derive(Default)]
struct LogBudget {
    state: Mutex<(Option<Instant>, u64)>,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl LogBudget {
    fn take(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, suppressed) = &mut *state;
        if last.is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY) {
            *suppressed += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(suppressed))
    }
}

/// Sends a CancelRequest to the server. PostgreSQL answers by closing.
pub async fn send_cancel(key: &UpstreamKey) -> std::io::Result<()> {
    let mut conn = TcpStream::connect(key.addr).await?;
    conn.write_all(&build::cancel_request(key.pid, &key.secret))
        .await?;
    conn.shutdown().await
}

fn random_i32() -> std::io::Result<i32> {
    getrandom::u32()
        .map(|v| v as i32)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(pid: i32, secret: [u8; 4]) -> UpstreamKey {
        UpstreamKey {
            addr: SocketAddr::from(([127, 0, 0, 1], 5432)),
            pid,
            secret: secret.to_vec(),
            session: Arc::new(SessionInfo {
                session_id: "s".into(),
                user: "alice".into(),
                ..SessionInfo::unidentified(SocketAddr::from(([127, 0, 0, 1], 5000)))
            }),
        }
    }

    #[test]
    fn the_client_sees_the_server_pid_and_a_secret_of_pgtrails() {
        let reg = Arc::new(CancelRegistry::default());
        let key = reg.register(upstream(4242, [1, 2, 3, 4])).unwrap();
        assert_eq!(key.pid, 4242);
        let found = reg.lookup(4242, &key.secret.to_be_bytes()).unwrap();
        assert_eq!(found.secret, vec![1, 2, 3, 4]);
        // The server's own secret is not what pgtrail accepts (unless by a
        // 1 in 2^32 chance equal to the one it issued).
        if key.secret.to_be_bytes() != [1, 2, 3, 4] {
            assert!(reg.lookup(4242, &[1, 2, 3, 4]).is_none());
        }
    }

    #[test]
    fn wrong_secret_finds_nothing_and_drop_unregisters() {
        let reg = Arc::new(CancelRegistry::default());
        let key = reg.register(upstream(42, [1, 2, 3, 4])).unwrap();
        assert!(reg.lookup(key.pid, &key.secret.to_be_bytes()).is_some());
        assert!(reg
            .lookup(key.pid, &key.secret.wrapping_add(1).to_be_bytes())
            .is_none());
        assert!(reg.lookup(key.pid, &[0; 3]).is_none());
        assert!(reg.lookup(key.pid + 1, &key.secret.to_be_bytes()).is_none());
        let pid = key.pid;
        drop(key);
        assert!(reg.lookup(pid, &[0; 4]).is_none());
        assert!(reg.is_empty());
    }

    #[test]
    fn unmatched_cancels_are_logged_once_per_interval_and_counted() {
        let budget = LogBudget::default();
        let t0 = Instant::now();
        assert_eq!(budget.take(t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(budget.take(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(budget.take(t0 + LOG_EVERY), Some(1000));
        assert_eq!(budget.take(t0 + LOG_EVERY), None);
    }

    #[test]
    fn a_reused_pid_keeps_both_sessions_apart() {
        let reg = Arc::new(CancelRegistry::default());
        let old = reg.register(upstream(7, [1, 1, 1, 1])).unwrap();
        let new = reg.register(upstream(7, [2, 2, 2, 2])).unwrap();
        assert_eq!(reg.len(), 2);
        let to_new = reg.lookup(7, &new.secret.to_be_bytes()).unwrap();
        assert_eq!(to_new.secret, vec![2, 2, 2, 2]);
        drop(old);
        assert_eq!(reg.len(), 1);
        assert!(reg.lookup(7, &new.secret.to_be_bytes()).is_some());
        drop(new);
        assert!(reg.is_empty());
    }
}
