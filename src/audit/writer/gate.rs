//! Whether the audit path can take new records right now.
//!
//! The parts that can stall or fail (the spool, the sinks) raise a flag
//! here; the relay reads it before it lets a new statement through. Under
//! `audit.failure_policy = "fail_closed"` a session that is idle outside a
//! transaction then gets an ErrorResponse instead of running the statement,
//! so nothing runs that cannot be audited. A lock-free read: one atomic load
//! per statement.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use crate::config::FailurePolicy;

/// Why the gate is closed; several can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Blocked {
    /// The spool reached `audit.spool_max_bytes` (ClickHouse behind or down).
    SpoolFull = 1,
    /// A spool write or fsync failed and the segment could not be cut back
    /// to its last durable length: the spool takes nothing until restart.
    SpoolFailed = 2,
    /// The last write to an audit sink failed (for example a full disk).
    SinkFailing = 4,
    /// No spool and ClickHouse failed or did not acknowledge for
    /// `audit.clickhouse_stall_timeout_ms` while the in-memory backlog is full.
    ClickHouseBehind = 8,
    /// A spool write failed (disk full, I/O error); retried until it works.
    SpoolDisk = 16,
    /// An audit file write failed (disk full, I/O error); retried until it works.
    FileDisk = 32,
}

#[derive(Debug, Default)]
pub struct AuditGate {
    blocked: AtomicU8,
    /// Records a sink did not keep under `fail_open` (the spool, the audit
    /// file, ClickHouse's backlog), counted by `policy::Destination`.
    dropped: AtomicU64,
    /// Events the full audit queue did not take under `fail_open`: the
    /// writer tells the ones it has not told yet in a gap record.
    queue_dropped: AtomicU64,
    /// `audit.failure_policy`, changeable by a reload: 1 = `fail_open`.
    fail_open: AtomicBool,
    /// The server is shutting down: nothing waits for room any more.
    stopping: AtomicBool,
}

impl AuditGate {
    pub fn set(&self, why: Blocked, on: bool) {
        if on {
            self.blocked.fetch_or(why as u8, Ordering::Relaxed);
        } else {
            self.blocked.fetch_and(!(why as u8), Ordering::Relaxed);
        }
    }

    /// `None` when records can be taken, else why not (for the client).
    pub fn blocked(&self) -> Option<&'static str> {
        let bits = self.blocked.load(Ordering::Relaxed);
        if bits == 0 {
            None
        } else if bits & Blocked::SpoolFailed as u8 != 0 {
            Some("the audit spool failed to write to disk")
        } else if bits & (Blocked::SpoolDisk as u8 | Blocked::FileDisk as u8) != 0 {
            Some("the audit disk is full or failing (records are kept in memory and retried)")
        } else if bits & Blocked::SpoolFull as u8 != 0 {
            Some("the audit spool is full (ClickHouse is behind or unreachable)")
        } else if bits & Blocked::ClickHouseBehind as u8 != 0 {
            Some("ClickHouse is failing or stalled and the in-memory audit backlog is full")
        } else {
            Some("an audit destination is failing")
        }
    }

    pub fn policy(&self) -> FailurePolicy {
        if self.fail_open.load(Ordering::Relaxed) {
            FailurePolicy::FailOpen
        } else {
            FailurePolicy::FailClosed
        }
    }

    pub fn set_policy(&self, policy: FailurePolicy) {
        let open = policy == FailurePolicy::FailOpen;
        self.fail_open.store(open, Ordering::Relaxed);
    }

    /// Shutdown: a full spool stops waiting for ClickHouse and takes the
    /// last records past its limit (they are sent at the next start).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_queue_drop(&self) {
        self.queue_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Events the queue did not take, since the start.
    pub fn queue_drops(&self) -> u64 {
        self.queue_dropped.load(Ordering::Relaxed)
    }

    /// Every record not kept, wherever it was lost: the one total behind
    /// `pgtrail_audit_records_dropped_total`. Gap records name the same.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.queue_drops()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_combine_and_clear_independently() {
        let gate = AuditGate::default();
        assert_eq!(gate.blocked(), None);
        gate.set(Blocked::SpoolFull, true);
        gate.set(Blocked::SinkFailing, true);
        assert!(gate.blocked().is_some_and(|m| m.contains("full")));
        gate.set(Blocked::SpoolFull, false);
        assert!(gate.blocked().is_some_and(|m| m.contains("failing")));
        gate.set(Blocked::SinkFailing, false);
        assert_eq!(gate.blocked(), None);
    }
}
