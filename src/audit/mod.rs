//! The audit path: events from sessions, records for sinks.

pub mod builder;
pub mod class_stats;
mod classify;
pub mod clickhouse;
pub mod event;
pub mod gate;
pub mod json;
pub mod jsonl;
pub mod lockfile;
pub mod pipeline;
pub mod policy;
pub mod record;
pub mod role;
pub mod seqmark;
pub mod slotfile;
pub mod spool;
pub mod start;

pub use event::{
    AuditEvent, Failure, Param, Protocol, SessionEvent, SessionEventType, SessionInfo,
    StatementEvent,
};
pub use gate::AuditGate;
pub use pipeline::{AuditSender, AuditStats, AuditWorker, DurableAck};
pub use policy::{AuditSink, Offer, Room};
