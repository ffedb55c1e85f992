//! ClickHouse delivery: the schema per server version (`schema`), the row
//! types sent over RowBinary (`rows`), and the batching sink (`sink`).

pub mod rows;
pub mod schema;
pub mod sink;

pub use schema::{SchemaOptions, ServerVersion};
pub use sink::{ClickHouseSink, ClickHouseStats};
