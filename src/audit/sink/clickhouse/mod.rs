//! ClickHouse delivery: the schema per server version (`schema`), the row
//! types sent over RowBinary (`rows`), the sinks the audit writer writes to
//! (`sink`: the sender thread they share; `memory`, `spooled`), the thread
//! that batches and sends (`sender`), how a failed request is judged
//! (`errors`), pgtrail's own RowBinary encoding (`rowbinary`), and what the
//! spool's frames hold for ClickHouse (`spool_rows`).

mod batch;
pub mod errors;
mod memory;
mod retry;
pub mod rowbinary;
pub mod rows;
pub mod schema;
mod sender;
pub mod sink;
pub(crate) mod spool_rows;
mod spooled;

pub use schema::{SchemaOptions, ServerVersion};
pub use sink::{ClickHouseSink, ClickHouseStats, SpooledClickHouseSink};
