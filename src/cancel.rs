//! Cancel keys: each client gets pgtrail's own BackendKeyData, mapped here
//! to the upstream server's key, so a CancelRequest reaches the right server
//! process and a guessed key cancels nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::protocol::build;

/// Where a cancel for one client session must go.
#[derive(Debug, Clone)]
pub struct UpstreamKey {
    pub addr: SocketAddr,
    pub pid: i32,
    pub secret: Vec<u8>,
}

struct Entry {
    secret: [u8; 4],
    upstream: UpstreamKey,
}

#[derive(Default)]
pub struct CancelRegistry {
    map: Mutex<HashMap<i32, Entry>>,
}

/// Removes the session's key when the session ends.
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub secret: i32,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        if let Ok(mut map) = self.registry.map.lock() {
            map.remove(&self.pid);
        }
    }
}

impl CancelRegistry {
    /// Issues a fresh (pid, secret) for a session.
    pub fn register(self: &Arc<Self>, upstream: UpstreamKey) -> std::io::Result<CancelKey> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| std::io::Error::other("cancel map poisoned"))?;
        let secret = random_i32()?;
        let pid = loop {
            // Positive and unused: clients treat the pid as a process id.
            let pid = random_i32()? & 0x7fff_ffff;
            if pid != 0 && !map.contains_key(&pid) {
                break pid;
            }
        };
        map.insert(
            pid,
            Entry {
                secret: secret.to_be_bytes(),
                upstream,
            },
        );
        Ok(CancelKey {
            registry: self.clone(),
            pid,
            secret,
        })
    }

    /// The upstream key for a client's (pid, secret), compared in constant time.
    pub fn lookup(&self, pid: i32, secret: &[u8]) -> Option<UpstreamKey> {
        let map = self.map.lock().ok()?;
        let entry = map.get(&pid)?;
        let matches: bool = entry.secret[..].ct_eq(secret).into();
        matches.then(|| entry.upstream.clone())
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    #[test]
    fn wrong_secret_finds_nothing_and_drop_unregisters() {
        let reg = Arc::new(CancelRegistry::default());
        let up = UpstreamKey {
            addr: SocketAddr::from(([127, 0, 0, 1], 5432)),
            pid: 42,
            secret: vec![1, 2, 3, 4],
        };
        let key = reg.register(up).unwrap();
        assert!(reg.lookup(key.pid, &key.secret.to_be_bytes()).is_some());
        assert!(reg
            .lookup(key.pid, &key.secret.wrapping_add(1).to_be_bytes())
            .is_none());
        assert!(reg.lookup(key.pid, &[0; 3]).is_none());
        let pid = key.pid;
        drop(key);
        assert!(reg.lookup(pid, &[0; 4]).is_none());
        assert!(reg.is_empty());
    }
}
