//! Integration tests: real PostgreSQL (and ClickHouse), pgtrail in-process.

mod harness;

mod auth;
mod backpressure;
mod bad_input;
mod ch_errors;
mod clickhouse;
mod clients;
mod cookbook;
mod delivery;
mod docs;
mod events;
mod full_disk;
mod full_disk_restart;
mod locks;
mod metrics;
mod python;
mod relay;
mod reload;
mod seq_mark;
mod sighup;
mod startup;
mod tls;
