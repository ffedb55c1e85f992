//! Whether the audit path can take new records right now.
//!
//! The parts that can stall or fail (the spool, the sinks) raise a flag
//! here; the relay reads it before it lets a new statement through. Under
//! `audit.failure_policy = "fail_closed"` a session that is idle outside a
//! transaction then gets an ErrorResponse instead of running the statement,
//! so nothing runs that cannot be audited. A lock-free read: one atomic load
//! per statement.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Why the gate is closed; several can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Blocked {
    /// The spool reached `audit.spool_max_bytes` (ClickHouse behind or down).
    SpoolFull = 1,
    /// A spool write or fsync failed; the spool takes nothing until restart.
    SpoolFailed = 2,
    /// The last write to an audit sink failed (for example a full disk).
    SinkFailing = 4,
}

#[derive(Debug, Default)]
pub struct AuditGate {
    blocked: AtomicU8,
    /// Records not kept because of a closed gate under `fail_open`; the
    /// gap rows count them too.
    dropped: AtomicU64,
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
        } else if bits & Blocked::SpoolFull as u8 != 0 {
            Some("the audit spool is full (ClickHouse is behind or unreachable)")
        } else {
            Some("an audit destination is failing")
        }
    }

    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
