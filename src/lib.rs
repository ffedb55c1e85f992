//! pgtrail: a PostgreSQL wire-protocol proxy that authenticates people,
//! forwards their traffic byte for byte, and audits every statement.
//!
//! - [`config`]: the TOML configuration, validated; secrets hidden in `Debug`.
//! - [`config_file`]: reading it with `FILE:LINE:COL: key: why` errors.
//! - [`reload`]: SIGHUP: log level, client TLS and users file without a restart.
//! - [`server`]: accept loop, connection limit, graceful shutdown.
//! - [`startup_error`]: why a server could not start, by what failed.
//! - [`admin`]: the admin HTTP listener: `/metrics`, `/healthz`, `/readyz`.
//! - [`context`]: what every session of one server shares.
//! - [`session`]: one client connection: startup, login, relay, response tracking.
//! - [`protocol`]: wire protocol framing, message views and builders, no I/O.
//! - [`auth`]: SCRAM/md5/cleartext checks of people, upstream login, the users file.
//! - [`cancel`]: cancel keys (the server's pid, pgtrail's secret) mapped to the server's.
//! - [`fdlimit`]: the open file limit raised and checked against `max_connections`.
//! - [`files`]: files holding secrets, written 0600; warnings for readable ones.
//! - [`secrets`]: URLs with their passwords masked for logs and errors.
//! - [`tls`]: rustls acceptor and upstream connector (sslmode semantics).
//! - [`sql`]: statement analysis: kind, class, objects, functions, fingerprint, redaction, cache.
//! - [`audit`]: statement and session events, records, the writer thread, sinks.
//! - [`catalog`]: tables, columns, views and function bodies per database, loaded over a read-only connection, to resolve and label the columns statements touch.
//! - [`cdc`]: row changes from logical decoding: the replication client, the pgoutput decoder, attribution markers, and the consumer that writes `changes` records.
//! - [`identity`]: end users behind service accounts: claims from comments, `pgtrail.*` settings and startup options, scoped as PostgreSQL scopes settings, verified when signed.
//! - [`hooks`]: extension points, a trait of session phases with no-op defaults.
//! - [`text`]: lossless text for records (UTF-8 as is, other bytes escaped).
//! - [`logging`]: tracing subscriber setup, text or JSON.
//! - [`latency`]: the latency histogram behind the `*_seconds` metrics.
//! - [`console`]: `pgtrail console`, the web console that reads the trail from ClickHouse (login, roles, pages, exports, its own access records).
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cancel;
pub mod catalog;
pub mod cdc;
pub mod config;
pub mod config_file;
pub mod console;
pub mod context;
pub mod fdlimit;
pub mod files;
pub mod hooks;
pub mod identity;
pub mod latency;
pub mod logging;
pub mod protocol;
pub mod reload;
pub mod secrets;
pub mod server;
pub mod session;
pub mod sql;
pub mod startup_error;
pub mod text;
pub mod tls;
