//! The consumer's counters, read by `/metrics` at scrape time.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::audit::event::ChangeOp;

#[derive(Debug, Default)]
pub struct CdcStats {
    /// Change records sent, by `ChangeOp` (in `ChangeOp::ALL` order).
    pub changes: [AtomicU64; 4],
    /// Of those, `attribution = none`: writes that bypassed pgtrail.
    pub unattributed: AtomicU64,
    /// `pgtrail` messages that failed verification.
    pub forged_markers: AtomicU64,
    /// Non-transactional logical messages (ignored).
    pub untransactional_messages: AtomicU64,
    /// Transactions decoded again after a restart and skipped, their
    /// records being durable already.
    pub replayed_transactions: AtomicU64,
    /// Transactions held partly on disk (past the memory bound).
    pub spilled_transactions: AtomicU64,
    /// Times the slot was found missing or invalidated.
    pub slot_lost: AtomicU64,
    pub reconnects: AtomicU64,
    pub connected: AtomicBool,
    /// The server's WAL position as its last message or keepalive said.
    pub server_lsn: AtomicU64,
    /// What pgtrail last confirmed to the slot.
    pub confirmed_lsn: AtomicU64,
    /// Commit time (µs since the epoch) of the last confirmed transaction.
    pub confirmed_commit_time: AtomicI64,
}

impl CdcStats {
    pub fn count_change(&self, op: ChangeOp, attributed: bool) {
        let i = ChangeOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        self.changes[i].fetch_add(1, Ordering::Relaxed);
        if !attributed {
            self.unattributed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn changes_of(&self, op: ChangeOp) -> u64 {
        let i = ChangeOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        self.changes[i].load(Ordering::Relaxed)
    }

    /// Bytes of WAL the slot holds that pgtrail has not confirmed.
    pub fn lag_bytes(&self) -> u64 {
        let server = self.server_lsn.load(Ordering::Relaxed);
        server.saturating_sub(self.confirmed_lsn.load(Ordering::Relaxed))
    }

    /// Seconds since the commit of the last confirmed transaction, while
    /// WAL is waiting to be confirmed; 0 when caught up.
    pub fn lag_seconds(&self, now_micros: i64) -> f64 {
        let at = self.confirmed_commit_time.load(Ordering::Relaxed);
        if self.lag_bytes() == 0 || at == 0 {
            return 0.0;
        }
        (now_micros.saturating_sub(at)).max(0) as f64 / 1e6
    }
}
