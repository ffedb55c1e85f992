//! Refusing statements while the audit path cannot record them
//! (`audit.failure_policy = "fail_closed"`, see `audit::gate`).
//!
//! Only a session that is idle outside a transaction is refused: then
//! nothing is in flight, the server's state is known (`I`), and answering
//! in PostgreSQL's own shape (ErrorResponse, then ReadyForQuery `I`) leaves
//! client and server agreeing. Statements inside an open transaction are
//! let through (they wait for room in the audit queue), because refusing
//! one would leave the server's transaction open while the client believes
//! it failed.
//!
//! The extended protocol is refused the way PostgreSQL rejects a message:
//! an ErrorResponse for the first message, every later message discarded up
//! to Sync, which is answered with ReadyForQuery.

use bytes::{BufMut, BytesMut};

use crate::protocol::build::{self, Severity};
use crate::protocol::sqlstate;

/// SQLSTATE 53000 (insufficient_resources): the proxy, not the statement,
/// is short of something; drivers treat it as retryable later.
pub const REFUSED_SQLSTATE: &str = sqlstate::INSUFFICIENT_RESOURCES;

/// What to do with one client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    /// Not forwarded; pgtrail answers (the bytes may be empty).
    Refuse,
}

/// Per-session state: whether messages are being discarded up to Sync.
#[derive(Debug, Default, Clone)]
pub struct Refuser {
    discarding: bool,
}

impl Refuser {
    /// Whether every message would be forwarded now, so judging each one
    /// (and taking the replies lock for it) can be skipped.
    pub fn passes_all(&self, why: Option<&str>) -> bool {
        !self.discarding && why.is_none()
    }

    /// Judges one message. `why` is the gate's reason (`None`: audit is
    /// healthy), `idle` whether nothing is in flight outside a transaction.
    /// Answers for the client are appended to `replies`.
    pub fn judge(
        &mut self,
        tag: u8,
        why: Option<&str>,
        idle: bool,
        replies: &mut BytesMut,
    ) -> Verdict {
        if self.discarding {
            return match tag {
                b'X' => {
                    self.discarding = false;
                    Verdict::Forward
                }
                b'S' => {
                    self.discarding = false;
                    replies.put(build::ready_for_query(b'I'));
                    Verdict::Refuse
                }
                _ => Verdict::Refuse,
            };
        }
        let Some(why) = why.filter(|_| idle) else {
            return Verdict::Forward;
        };
        match tag {
            // Simple query and function call: error, then ready again.
            b'Q' | b'F' => {
                replies.put(refusal(why));
                replies.put(build::ready_for_query(b'I'));
                Verdict::Refuse
            }
            // Parse, Bind, Execute: error now, the rest up to Sync dropped.
            b'P' | b'B' | b'E' => {
                replies.put(refusal(why));
                self.discarding = true;
                Verdict::Refuse
            }
            _ => Verdict::Forward,
        }
    }
}

fn refusal(why: &str) -> bytes::Bytes {
    let message = format!(
        "pgtrail: statement refused because it cannot be audited now: {why} (audit.failure_policy = fail_closed); retry later"
    );
    build::error_response(Severity::Error, REFUSED_SQLSTATE, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHY: Option<&str> = Some("the audit spool is full");

    fn tags(replies: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 5 <= replies.len() {
            out.push(replies[at]);
            let len = u32::from_be_bytes([
                replies[at + 1],
                replies[at + 2],
                replies[at + 3],
                replies[at + 4],
            ]);
            at += 1 + len as usize;
        }
        out
    }

    #[test]
    fn healthy_audit_forwards_everything() {
        let mut r = Refuser::default();
        let mut replies = BytesMut::new();
        for tag in *b"QPBEDSXF" {
            assert_eq!(r.judge(tag, None, true, &mut replies), Verdict::Forward);
        }
        assert!(replies.is_empty());
    }

    #[test]
    fn simple_query_gets_error_and_ready() {
        let mut r = Refuser::default();
        let mut replies = BytesMut::new();
        assert_eq!(r.judge(b'Q', WHY, true, &mut replies), Verdict::Refuse);
        assert_eq!(tags(&replies), b"EZ");
        let text = String::from_utf8_lossy(&replies);
        assert!(text.contains("53000") && text.contains("spool is full"));
    }

    #[test]
    fn extended_batch_is_refused_up_to_sync() {
        let mut r = Refuser::default();
        let mut replies = BytesMut::new();
        for tag in *b"PBDE" {
            assert_eq!(r.judge(tag, WHY, true, &mut replies), Verdict::Refuse);
        }
        assert_eq!(tags(&replies), b"E");
        assert_eq!(r.judge(b'S', WHY, true, &mut replies), Verdict::Refuse);
        assert_eq!(tags(&replies), b"EZ");
        // The next batch starts afresh.
        assert_eq!(r.judge(b'S', None, true, &mut replies), Verdict::Forward);
    }

    #[test]
    fn busy_or_in_transaction_sessions_go_on() {
        let mut r = Refuser::default();
        let mut replies = BytesMut::new();
        assert_eq!(r.judge(b'Q', WHY, false, &mut replies), Verdict::Forward);
        assert_eq!(r.judge(b'P', WHY, false, &mut replies), Verdict::Forward);
        assert!(replies.is_empty());
    }

    #[test]
    fn harmless_messages_and_terminate_pass() {
        let mut r = Refuser::default();
        let mut replies = BytesMut::new();
        for tag in *b"SHCDX" {
            assert_eq!(r.judge(tag, WHY, true, &mut replies), Verdict::Forward);
        }
        r.judge(b'P', WHY, true, &mut replies);
        assert_eq!(r.judge(b'X', WHY, true, &mut replies), Verdict::Forward);
    }
}
