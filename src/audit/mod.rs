//! The audit path: events from sessions, records for sinks.
//!
//! In the order a statement's record travels:
//!
//! | module | job |
//! | --- | --- |
//! | `event` | what a session sends: statement and session events; `change_event`, what the decoding consumer sends |
//! | `writer` | the bounded queue from every session, the writer thread, the failure policy (`policy`) and the gate (`gate`) |
//! | `build` | event → record: seq, ids, text policy, classification, the acting role |
//! | `record` | the record types and their JSON encoding |
//! | `chain` | tamper evidence: each record's `chain` over its canonical bytes, signed checkpoints, the chain's state across restarts |
//! | `sink` | where records go: the audit file (`jsonl`) and ClickHouse (`clickhouse`: the sinks through memory or the spool, schema, row encoding, sender thread) |
//! | `spool` | the durable spool in front of ClickHouse |
//! | `disk` | small durable files: two-slot numbers, the seq high-water mark, path locks |
//! | `start` | assembling all of it from `[audit]` |

pub mod build;
pub mod chain;
pub mod change_event;
pub mod disk;
pub mod event;
pub mod record;
pub mod sink;
pub mod spool;
pub mod start;
pub mod writer;

pub use event::{
    AuditEvent, Failure, Param, Protocol, SessionEvent, SessionEventType, SessionInfo,
    StatementEvent,
};
pub use sink::{AuditSink, Offer, Room};
pub use writer::gate::AuditGate;
pub use writer::{AuditSender, AuditStats, AuditWorker, DurableAck};
