//! ClickHouse delivery: the schema per server version (`schema`), the row
//! types sent over RowBinary (`rows`), the sinks the audit writer writes to
//! (`sink`: the sender thread they share; `memory`, `spooled`), the thread that batches and sends (`sender`), how a failed
//! request is judged (`errors`), and pgtrail's own RowBinary encoding, which
//! the spool stores (`rowbinary`).

mod batch;
pub mod errors;
mod memory;
mod retry;
pub mod rowbinary;
pub mod rows;
pub mod schema;
mod sender;
pub mod sink;
mod spooled;

pub use schema::{SchemaOptions, ServerVersion};
pub use sink::{ClickHouseSink, ClickHouseStats, SpooledClickHouseSink};
