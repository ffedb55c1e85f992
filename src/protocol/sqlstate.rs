//! The SQLSTATE codes pgtrail itself answers with, named as PostgreSQL's
//! `errcodes.txt` names them. Codes the server sends are passed on as they
//! are, never mapped.

/// `08P01` protocol_violation: a malformed or oversized message.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `08006` connection_failure: the server could not be reached or went away.
pub const CONNECTION_FAILURE: &str = "08006";
/// `0A000` feature_not_supported (replication connections).
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `28000` invalid_authorization_specification (no user, TLS required).
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// `28P01` invalid_password: every failed login in proxy mode.
pub const INVALID_PASSWORD: &str = "28P01";
/// `53000` insufficient_resources: a statement refused because its audit
/// record could not be written (`fail_closed`).
pub const INSUFFICIENT_RESOURCES: &str = "53000";
/// `53300` too_many_connections: `max_connections` reached.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `57P01` admin_shutdown: pgtrail is shutting down.
pub const ADMIN_SHUTDOWN: &str = "57P01";
