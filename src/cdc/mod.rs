//! Row changes from PostgreSQL's logical decoding (issue 14): the
//! replication connection, the `pgoutput` decoder, and the consumer that
//! turns the stream into `changes` records attributed by markers.
//!
//! - [`consumer`]: the decoding consumer task (`cdc.enabled`).
//! - [`lsn`]: WAL positions and their `X/Y` text form.
//! - [`marker`]: the signed attribution markers sessions leave in a
//!   client's transaction, and their check.
//! - [`pgoutput`]: the plugin's messages, decoded without I/O.
//! - [`relation`]: the Relation cache: tuples as named columns, key columns.
//! - [`replication`]: the replication connection: login, slot commands,
//!   `START_REPLICATION`, XLogData and keepalives, standby status updates
//!   that move the slot only to what the caller confirmed.
//! - [`setup`]: `pgtrail cdc setup`: what the server needs, checked, and
//!   the SQL that adds it.

pub mod consumer;
pub mod lsn;
pub mod marker;
pub mod pgoutput;
pub mod relation;
pub mod replication;
pub mod setup;

pub use lsn::Lsn;
pub use pgoutput::{Decoder, LogicalMessage};
pub use relation::{Relation, RelationCache};
