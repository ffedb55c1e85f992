//! What the relay hands to the audit path: small events holding bytes and
//! numbers. Parsing, classification and serialisation happen later, off the
//! relay's hot path.

pub use crate::protocol::backend::TxnStatus;
use bytes::Bytes;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub use super::change_event::{Attribution, ChangeEvent, ChangeOp, Columns};

/// Facts about one client session that every event of it shares.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// UUIDv7, unique across instances.
    pub session_id: String,
    /// The server's process id for this session (BackendKeyData), as the
    /// client also sees it; 0 until the login completed.
    pub backend_pid: u32,
    /// The authenticated person (passthrough: the role PostgreSQL accepted).
    pub user: String,
    /// The role pgtrail is logged in as upstream.
    pub db_role: String,
    pub database: String,
    pub client_addr: IpAddr,
    pub client_port: u16,
    pub application_name: String,
    pub tls: bool,
    pub auth_method: String,
    /// Roles the StartupMessage sets (`options`, `role`,
    /// `session_authorization`): see `audit::role`.
    pub startup_identity: super::build::role::StartupIdentity,
}

impl SessionInfo {
    /// A peer nobody has logged in as yet: only the address is known (a
    /// cancel request's sender, or the base of a test's session).
    pub fn unidentified(peer: std::net::SocketAddr) -> Self {
        SessionInfo {
            session_id: String::new(),
            backend_pid: 0,
            user: String::new(),
            db_role: String::new(),
            database: String::new(),
            client_addr: peer.ip(),
            client_port: peer.port(),
            application_name: String::new(),
            tls: false,
            auth_method: String::new(),
            startup_identity: Default::default(),
        }
    }
}

/// How a statement reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Simple,
    Extended,
    FunctionCall,
}

impl Protocol {
    /// The name records use (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
            Protocol::FunctionCall => "function_call",
        }
    }
}

/// The outcome of a statement that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
    /// 1-based character position in the query text, when the server gave one.
    pub position: Option<u32>,
}

/// A bind parameter value as sent; `value: None` is SQL NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub value: Option<Bytes>,
    pub binary: bool,
}

/// One executed (or failed) statement.
#[derive(Debug, Clone)]
pub struct StatementEvent {
    pub session: Arc<SessionInfo>,
    /// `application_name` when the statement ran (it can change mid-session).
    pub application_name: Arc<str>,
    pub protocol: Protocol,
    /// The text as sent: the whole Query string, or the prepared statement's text.
    pub text: Bytes,
    /// Which statement of a multi-statement Query string (0-based).
    pub statement_index: u32,
    /// Bind parameters, when configured.
    pub params: Option<Vec<Param>>,
    pub started_at: SystemTime,
    pub duration_us: u64,
    pub command_tag: Option<String>,
    pub rows: Option<u64>,
    pub failure: Option<Failure>,
    /// The status of the ReadyForQuery that ended the statement's batch (a
    /// Query string, or the messages up to a Sync): `I`, `T` or `E`; or
    /// `Unknown` when the record had to be released before that
    /// ReadyForQuery arrived (see `Tracker::take_finished`).
    pub txn_status: TxnStatus,
    /// The transaction the statement ran in.
    pub transaction: TxnRef,
    /// The end user claimed for it (`identity`); shared, since a session's
    /// statements mostly carry the same claim.
    pub end_user: Arc<crate::identity::EndUser>,
}

/// A statement's transaction, and its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnRef {
    pub id: uuid::Uuid,
    /// 0-based statement index within the transaction.
    pub index: u32,
    /// A savepoint was open when it ran, so a ROLLBACK TO may undo it.
    pub after_savepoint: bool,
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionOutcome {
    Committed,
    /// `ROLLBACK`, a `COMMIT` of an aborted block (PostgreSQL answers
    /// `ROLLBACK`), or an implicit transaction in which a statement failed.
    RolledBack,
    /// The `COMMIT` itself failed (a deferred constraint, a serialization
    /// failure): nothing was committed.
    Failed,
    /// `PREPARE TRANSACTION`: a later `COMMIT PREPARED` or `ROLLBACK
    /// PREPARED`, in any session, decides.
    Prepared,
    /// The connection was lost with the transaction open.
    Unknown,
}

impl TransactionOutcome {
    /// The name records use (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            TransactionOutcome::Committed => "committed",
            TransactionOutcome::RolledBack => "rolled_back",
            TransactionOutcome::Failed => "failed",
            TransactionOutcome::Prepared => "prepared",
            TransactionOutcome::Unknown => "unknown",
        }
    }
}

/// A transaction that ended, after its last statement's event.
#[derive(Debug, Clone)]
pub struct TransactionEvent {
    pub session: Arc<SessionInfo>,
    pub application_name: Arc<str>,
    pub transaction_id: uuid::Uuid,
    pub statements: u32,
    pub outcome: TransactionOutcome,
    /// When its first statement started.
    pub started_at: SystemTime,
    /// From its first statement's start to the answer that ended it.
    pub duration_us: u64,
    /// Statement index ranges (inclusive) undone by `ROLLBACK TO SAVEPOINT`.
    pub undone: Vec<(u32, u32)>,
    /// The end user claimed when it ended.
    pub end_user: Arc<crate::identity::EndUser>,
    /// The statement a `Before` attribution marker named for the changes
    /// after it, when the session saw no other statement that may write
    /// in the transaction after that one (the writer confirms the claim
    /// with it; not a record field).
    pub tail_statement: Option<u32>,
}

/// The kinds of session record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEventType {
    Connect,
    AuthOk,
    AuthFailed,
    Disconnect,
    /// A CancelRequest: the session it named (or none), from the sender's
    /// address.
    Cancel,
}

impl SessionEventType {
    /// The name records use (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            SessionEventType::Connect => "connect",
            SessionEventType::AuthOk => "auth_ok",
            SessionEventType::AuthFailed => "auth_failed",
            SessionEventType::Disconnect => "disconnect",
            SessionEventType::Cancel => "cancel",
        }
    }
}

/// Connect, authentication outcome and disconnect.
#[derive(Debug, Clone)]
pub struct SessionEvent {
    pub event_type: SessionEventType,
    pub session: Arc<SessionInfo>,
    pub at: SystemTime,
    /// Why authentication failed or the session ended; kept for the audit
    /// trail, never told to the client.
    pub reason: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub statements: u64,
    pub duration_us: u64,
}

/// Anything the audit path receives.
#[derive(Debug, Clone)]
pub enum AuditEvent {
    Statement(Box<StatementEvent>),
    Session(Box<SessionEvent>),
    Transaction(Box<TransactionEvent>),
    /// A row change from the decoding consumer (`cdc::consumer`).
    Change(Box<ChangeEvent>),
    /// Records that cannot exist, told by a component other than the
    /// writer (the decoding consumer, when its slot is gone): written as a
    /// `gaps` record by the writer, which numbers it.
    Gap {
        missing_events: u64,
        reason: String,
    },
    /// pgtrail's own configuration or users file changed (a reload).
    Lifecycle {
        event_type: crate::audit::record::LifecycleEvent,
        config_digest: String,
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for p in [Protocol::Simple, Protocol::Extended, Protocol::FunctionCall] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
        for t in [
            SessionEventType::Connect,
            SessionEventType::AuthOk,
            SessionEventType::AuthFailed,
            SessionEventType::Disconnect,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
    }
}
