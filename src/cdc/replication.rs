//! The replication connection: pgtrail logs in with `replication=database`
//! (over the same TCP + TLS as sessions, answering the login as a role with
//! `auth::login_upstream`), runs the walsender's commands in the simple
//! protocol, and `START_REPLICATION` turns it into a [`ReplicationStream`].

pub mod error;
mod stream;
pub mod wire;

use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::net::TcpStream;

use super::Lsn;
use crate::auth::{self, UpstreamLogin};
use crate::config::UpstreamConfig;
use crate::protocol::backend;
use crate::protocol::frame::{FrameLimits, LARGE_MESSAGE_LIMIT};
use crate::protocol::{build, tag, Frame};
use crate::session::error::SessionError;
use crate::session::stream::{Framed, Stream};
pub use error::{ReplicationError, ServerError, ServerErrorKind};
pub use stream::{ReplicationStream, StreamEvent};

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// Host, port, TLS mode and connect timeout, as for sessions.
    pub upstream: UpstreamConfig,
    pub role: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: String,
    /// `replication=database` at login; without it the connection is a
    /// plain SQL one (the catalog loader's), with the same login and
    /// `simple_query`.
    pub replication: bool,
    /// How often a Standby status update goes out unasked (10 s, as
    /// `wal_receiver_status_interval`).
    pub status_interval: Duration,
    /// Silence from the server after which the connection is given up
    /// (60 s, as `wal_sender_timeout`; the server sends keepalives well
    /// within it).
    pub server_timeout: Duration,
}

impl ReplicationConfig {
    pub fn new(upstream: UpstreamConfig, role: &str, database: &str) -> Self {
        ReplicationConfig {
            upstream,
            role: role.to_string(),
            password: None,
            database: database.to_string(),
            application_name: "pgtrail-cdc".to_string(),
            replication: true,
            status_interval: Duration::from_secs(10),
            server_timeout: Duration::from_secs(60),
        }
    }
}

/// What `START_REPLICATION` asks for.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub slot: String,
    pub publications: Vec<String>,
    /// `Lsn::INVALID` starts at the slot's confirmed position.
    pub start: Lsn,
    /// Large transactions streamed before they commit (protocol 2, on
    /// servers from 14); otherwise protocol 1, whole transactions.
    pub streaming: bool,
    /// `pg_logical_emit_message` records (pgtrail's signed markers).
    pub messages: bool,
}

/// `IDENTIFY_SYSTEM`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    pub system_id: String,
    pub timeline: u32,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
    pub database: Option<String>,
}

/// `CREATE_REPLICATION_SLOT`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    pub name: String,
    /// Changes committed after this position are decoded.
    pub consistent_point: Lsn,
}

/// One row of a command's answer; `None` for NULL.
pub type Row = Vec<Option<Bytes>>;

/// A logged-in replication connection, before `START_REPLICATION`.
pub struct ReplicationClient {
    conn: Framed,
    server_major: u32,
    config: ReplicationConfig,
}

impl ReplicationClient {
    /// Connects, logs in as `config.role` and waits for ReadyForQuery.
    pub async fn connect(config: &ReplicationConfig) -> Result<Self, ReplicationError> {
        let mut conn = open(&config.upstream).await?;
        let mut params: Vec<(&[u8], &[u8])> = vec![
            (b"user", config.role.as_bytes()),
            (b"database", config.database.as_bytes()),
            (b"application_name", config.application_name.as_bytes()),
            // Names and message prefixes then arrive as UTF-8.
            (b"client_encoding", b"UTF8"),
        ];
        if config.replication {
            params.push((b"replication", b"database"));
        }
        conn.write(&build::startup_message(params)).await?;
        let login = auth::login_upstream(&mut conn, &config.role, config.password.as_deref());
        if let UpstreamLogin::Refused {
            sqlstate, message, ..
        } = login.await?
        {
            return Err(ReplicationError::Server(ServerError {
                severity: "FATAL".into(),
                sqlstate,
                message,
            }));
        }
        let server_major = until_ready(&mut conn).await?;
        Ok(ReplicationClient {
            conn,
            server_major,
            config: config.clone(),
        })
    }

    /// The server's major version (15 for 15.4; 9 for 9.6).
    pub fn server_major(&self) -> u32 {
        self.server_major
    }

    pub async fn identify_system(&mut self) -> Result<SystemIdentity, ReplicationError> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = rows.first().ok_or(ReplicationError::BadAnswer("no row"))?;
        Ok(SystemIdentity {
            system_id: text(row, 0)?.ok_or(ReplicationError::BadAnswer("systemid"))?,
            timeline: parsed(row, 1)?.ok_or(ReplicationError::BadAnswer("timeline"))?,
            xlogpos: parsed(row, 2)?.ok_or(ReplicationError::BadAnswer("xlogpos"))?,
            database: text(row, 3)?,
        })
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] LOGICAL pgoutput
    /// NOEXPORT_SNAPSHOT`: the spelling every server from 10 accepts.
    pub async fn create_slot(
        &mut self,
        name: &str,
        temporary: bool,
    ) -> Result<CreatedSlot, ReplicationError> {
        let sql = format!(
            "CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput NOEXPORT_SNAPSHOT",
            wire::quote_ident(name),
            if temporary { " TEMPORARY" } else { "" }
        );
        let rows = self.simple_query(&sql).await?;
        let row = rows.first().ok_or(ReplicationError::BadAnswer("no row"))?;
        Ok(CreatedSlot {
            name: text(row, 0)?.ok_or(ReplicationError::BadAnswer("slot_name"))?,
            consistent_point: parsed(row, 1)?
                .ok_or(ReplicationError::BadAnswer("consistent_point"))?,
        })
    }

    pub async fn drop_slot(&mut self, name: &str) -> Result<(), ReplicationError> {
        let sql = format!("DROP_REPLICATION_SLOT {}", wire::quote_ident(name));
        self.simple_query(&sql).await.map(drop)
    }

    /// Runs one command (a replication command, or SQL: a walsender with
    /// a database runs both) and returns its rows.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>, ReplicationError> {
        self.conn.write(&wire::query(sql)).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = self.conn.read_frame().await?;
            let view = Frame::of(&frame);
            match view.tag {
                tag::backend::DATA_ROW => rows.push(backend::data_row(frame.slice(5..))?),
                tag::backend::ERROR_RESPONSE => error = Some(server_error(view.body)),
                tag::backend::READY_FOR_QUERY => break,
                tag::backend::ROW_DESCRIPTION
                | tag::backend::COMMAND_COMPLETE
                | tag::backend::EMPTY_QUERY_RESPONSE
                | tag::backend::NOTICE_RESPONSE
                | tag::backend::PARAMETER_STATUS => {}
                other => return Err(unexpected(other, "a command")),
            }
        }
        match error {
            Some(e) => Err(ReplicationError::Server(e)),
            None => Ok(rows),
        }
    }

    /// The `START_REPLICATION` command for `options` on this server.
    pub fn start_command(&self, options: &StartOptions) -> String {
        start_command(options, self.server_major)
    }

    /// Starts streaming; the server answers CopyBothResponse, or an error
    /// (missing or invalidated slot, a slot in use, no permission).
    pub async fn start(
        mut self,
        options: &StartOptions,
    ) -> Result<ReplicationStream, ReplicationError> {
        let sql = self.start_command(options);
        self.conn.write(&wire::query(&sql)).await?;
        loop {
            let frame = self.conn.read_frame().await?;
            let view = Frame::of(&frame);
            match view.tag {
                wire::tag::COPY_BOTH_RESPONSE => break,
                tag::backend::ERROR_RESPONSE => {
                    return Err(ReplicationError::Server(server_error(view.body)))
                }
                tag::backend::NOTICE_RESPONSE | tag::backend::PARAMETER_STATUS => {}
                other => return Err(unexpected(other, "START_REPLICATION")),
            }
        }
        Ok(ReplicationStream::new(
            self.conn,
            options.start,
            self.config.status_interval,
            self.config.server_timeout,
        ))
    }
}

/// `START_REPLICATION`: protocol 2 with streaming when asked for and the
/// server (14+) has it, otherwise protocol 1.
pub fn start_command(options: &StartOptions, server_major: u32) -> String {
    let streaming = options.streaming && server_major >= 14;
    let mut args = vec![
        format!("proto_version '{}'", if streaming { 2 } else { 1 }),
        format!(
            "publication_names {}",
            wire::publication_names(&options.publications)
        ),
    ];
    if options.messages {
        args.push("messages 'true'".into());
    }
    if streaming {
        args.push("streaming 'on'".into());
    }
    format!(
        "START_REPLICATION SLOT {} LOGICAL {} ({})",
        wire::quote_ident(&options.slot),
        options.start,
        args.join(", ")
    )
}

/// TCP (with the connect timeout) and TLS per `upstream.tls`, as sessions
/// connect.
async fn open(cfg: &UpstreamConfig) -> Result<Framed, ReplicationError> {
    let (host, port) = cfg.host_port().map_err(ReplicationError::Url)?;
    let tls = crate::tls::connector(cfg).map_err(ReplicationError::Tls)?;
    let tcp = tokio::time::timeout(
        cfg.connect_timeout(),
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| SessionError::Upstream(format!("connect to {host}:{port} timed out")))?
    .map_err(|e| SessionError::Upstream(format!("connect to {host}:{port}: {e}")))?;
    tcp.set_nodelay(true).map_err(SessionError::from)?;
    let stream = match &tls {
        None => Stream::Plain(tcp),
        Some((connector, name)) => {
            crate::session::upstream::negotiate_tls(tcp, connector, name, cfg.tls).await?
        }
    };
    // One XLogData carries a whole row, TOASTed values included.
    let limits = FrameLimits::backend(LARGE_MESSAGE_LIMIT);
    Ok(Framed::new(stream, BytesMut::new(), limits))
}

/// Reads ParameterStatus, BackendKeyData and notices up to ReadyForQuery;
/// returns the major version from `server_version`.
async fn until_ready(conn: &mut Framed) -> Result<u32, ReplicationError> {
    let mut major = 0;
    loop {
        let frame = conn.read_frame().await?;
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::PARAMETER_STATUS => {
                let (name, value) = backend::parameter_status(view.body)?;
                if name == b"server_version" {
                    major = major_version(value);
                }
            }
            tag::backend::READY_FOR_QUERY => return Ok(major),
            tag::backend::ERROR_RESPONSE => {
                return Err(ReplicationError::Server(server_error(view.body)))
            }
            tag::backend::BACKEND_KEY_DATA | tag::backend::NOTICE_RESPONSE => {}
            other => return Err(unexpected(other, "login")),
        }
    }
}

/// `15.4 (Debian ...)` → 15; `9.6.24` → 9.
fn major_version(value: &[u8]) -> u32 {
    let digits = value.iter().take_while(|b| b.is_ascii_digit());
    digits.fold(0u32, |n, &d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    })
}

pub(crate) fn server_error(body: &[u8]) -> ServerError {
    ServerError::from_fields(backend::error_fields(body).unwrap_or_default())
}

pub(crate) fn unexpected(tag: u8, during: &'static str) -> ReplicationError {
    ReplicationError::Unexpected { tag, during }
}

fn text(row: &Row, i: usize) -> Result<Option<String>, ReplicationError> {
    match row.get(i) {
        None => Err(ReplicationError::BadAnswer("too few columns")),
        Some(None) => Ok(None),
        Some(Some(b)) => String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| ReplicationError::BadAnswer("not UTF-8")),
    }
}

fn parsed<T: std::str::FromStr>(row: &Row, i: usize) -> Result<Option<T>, ReplicationError> {
    match text(row, i)? {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ReplicationError::BadAnswer("unparsable column")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_command_picks_the_protocol_by_server_version() {
        let mut options = StartOptions {
            slot: "s\"1".into(),
            publications: vec!["p".into()],
            start: Lsn(0x1_0000_00A0),
            streaming: true,
            messages: true,
        };
        assert_eq!(
            start_command(&options, 15),
            "START_REPLICATION SLOT \"s\"\"1\" LOGICAL 1/A0 (proto_version '2', \
             publication_names '\"p\"', messages 'true', streaming 'on')"
        );
        assert_eq!(
            start_command(&options, 13),
            "START_REPLICATION SLOT \"s\"\"1\" LOGICAL 1/A0 (proto_version '1', \
             publication_names '\"p\"', messages 'true')"
        );
        options.streaming = false;
        options.messages = false;
        assert!(
            start_command(&options, 15).ends_with("(proto_version '1', publication_names '\"p\"')")
        );
    }

    #[test]
    fn major_version_from_server_version() {
        assert_eq!(super::major_version(b"15.4 (Debian 15.4-1)"), 15);
        assert_eq!(super::major_version(b"9.6.24"), 9);
        assert_eq!(super::major_version(b"devel"), 0);
    }
}
