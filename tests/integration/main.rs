//! Integration tests: real PostgreSQL (and ClickHouse), pgtrail in-process.

mod harness;

mod ack_order;
mod auth;
mod backend_pid;
mod backpressure;
mod bad_input;
mod cdc_setup;
mod cdc_stream;
mod ch_errors;
mod changes;
mod clickhouse;
mod clients;
mod cookbook;
mod cookbook_scale;
mod dashboards;
mod delivery;
mod docs;
mod events;
mod full_disk;
mod full_disk_restart;
mod hardening;
mod identity;
mod locks;
mod log_colour;
mod markers;
mod metrics;
mod python;
mod relay;
mod reload;
mod seq_mark;
mod sighup;
mod spool_tags;
mod startup;
mod tls;
mod transactions;
