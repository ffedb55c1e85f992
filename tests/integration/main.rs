//! Integration tests: real PostgreSQL (and ClickHouse), pgtrail in-process.

mod harness;

mod ack_order;
mod auth;
mod backend_pid;
mod bad_input;
mod ch_errors;
mod clickhouse;
mod clients;
mod cookbook;
mod cookbook_scale;
mod dashboards;
mod delivery;
mod docs;
mod events;
mod hardening;
mod identity;
mod log_colour;
mod metrics;
mod python;
mod relay;
mod reload;
mod sighup;
mod startup;
mod tls;
