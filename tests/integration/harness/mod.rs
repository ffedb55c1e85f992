//! Test harness: real PostgreSQL and ClickHouse servers, pgtrail in-process.

pub mod clickhouse;
pub mod modern;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod spool;
pub mod tmpfs;
