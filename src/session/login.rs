//! From StartupMessage to ReadyForQuery: checking the request, authenticating
//! (relayed, or by pgtrail itself), logging in upstream and handing the
//! client the server's backend pid with a cancel secret of pgtrail's.

use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;

use super::error::SessionError;
use super::refusal::LoginRefused;
use super::stream::Framed;
use super::upstream;
use crate::audit::build::role::StartupIdentity;
use crate::audit::SessionInfo;
use crate::auth::{self, AuthIo, ClientAuth, UpstreamLogin};
use crate::cancel::{CancelKey, UpstreamKey};
use crate::config::{AuthMode, ClientTlsMode};
use crate::context::ProxyContext;
use crate::protocol::backend::{self, auth as codes};
use crate::protocol::build::{self, Severity};
use crate::protocol::sqlstate;
use crate::protocol::startup::Startup;
use crate::protocol::{tag, Frame};
use crate::text::lossless;

/// A logged-in session, ready for the relay.
pub struct Established {
    pub client: Framed,
    pub upstream: Framed,
    pub info: Arc<SessionInfo>,
    pub cancel_key: Option<CancelKey>,
    /// The role may emit attribution markers (`marker_probe`).
    pub markers_allowed: bool,
}

/// The upstream side of a successful login.
pub struct LoggedIn {
    pub upstream: Framed,
    pub cancel_key: Option<CancelKey>,
    pub markers_allowed: bool,
}

/// `auth` runs its exchanges over the session's framed streams.
impl AuthIo for Framed {
    type Error = SessionError;

    async fn read_auth_message(&mut self) -> Result<Bytes, SessionError> {
        self.read_auth_frame().await
    }

    async fn read_message(&mut self) -> Result<Bytes, SessionError> {
        self.read_frame().await
    }

    async fn write_message(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.write(bytes).await
    }
}

/// Refusals that need no authentication: (SQLSTATE, message).
pub fn check_startup(
    s: &Startup,
    tls: bool,
    ctx: &ProxyContext,
) -> Result<(), (&'static str, String)> {
    if let Some(name) = s.repeated_param() {
        return Err((
            sqlstate::PROTOCOL_VIOLATION,
            format!(
                "startup parameter \"{}\" given more than once",
                lossless(name).0
            ),
        ));
    }
    if s.param("user").is_none_or(|u| u.is_empty()) {
        return Err((
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "no PostgreSQL user name specified in startup packet".into(),
        ));
    }
    if let Some(r) = s.param("replication") {
        if !matches!(r, b"false" | b"off" | b"no" | b"0") {
            return Err((
                sqlstate::FEATURE_NOT_SUPPORTED,
                "pgtrail does not proxy replication connections".into(),
            ));
        }
    }
    // With `client_ca_file` every client must present a certificate, which
    // a plain connection cannot do, whatever `tls.mode` says.
    // The live settings: a reload may have changed `tls.mode`.
    let live = ctx.live();
    let tls_cfg = &live.tls;
    if (tls_cfg.mode == ClientTlsMode::Require || tls_cfg.client_ca_file.is_some()) && !tls {
        return Err((
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "pgtrail requires an encrypted connection (use sslmode=require)".into(),
        ));
    }
    Ok(())
}

fn param_text(s: &Startup, name: &str) -> String {
    s.param(name)
        .map(|v| lossless(v).0.into_owned())
        .unwrap_or_default()
}

/// Session facts known from the StartupMessage.
pub fn session_info(s: &Startup, peer: SocketAddr, tls: bool) -> SessionInfo {
    let user = param_text(s, "user");
    let database = s
        .param("database")
        .filter(|d| !d.is_empty())
        .map_or_else(|| user.clone(), |d| lossless(d).0.into_owned());
    SessionInfo {
        backend_pid: 0,
        session_id: uuid::Uuid::now_v7().to_string(),
        db_role: user.clone(),
        user,
        database,
        client_addr: peer.ip(),
        client_port: peer.port(),
        application_name: param_text(s, "application_name"),
        tls,
        auth_method: String::new(),
        startup_identity: startup_identity(s),
    }
}

/// Roles the StartupMessage sets, for `effective_role` on records.
fn startup_identity(s: &Startup) -> StartupIdentity {
    let params: Vec<(String, String)> = s
        .upstream_params()
        .map(|(k, v)| (lossless(k).0.into_owned(), lossless(v).0.into_owned()))
        .collect();
    StartupIdentity::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Authenticates and logs in. `Ok(Err(refused))` is a refused login that
/// has already been reported to the client; `info` is updated with the
/// outcome.
pub async fn authenticate(
    client: &mut Framed,
    s: &Startup,
    ctx: &ProxyContext,
    info: &mut Option<SessionInfo>,
) -> Result<Result<LoggedIn, LoginRefused>, SessionError> {
    let Some(session) = info.as_mut() else {
        return Err(SessionError::Protocol("no session".into()));
    };
    if s.minor > 0 || !s.protocol_options().is_empty() {
        client
            .write(&build::negotiate_protocol_version(0, &s.protocol_options()))
            .await?;
    }
    let (mut up, addr) = match ctx.config.auth.mode {
        AuthMode::Passthrough => {
            let (mut up, addr) = upstream::connect(ctx).await?;
            up.write(&build::startup_message(s.upstream_params()))
                .await?;
            match relay_auth(client, &mut up).await? {
                Ok(method) => session.auth_method = method.into(),
                Err(reason) => return Ok(Err(reason)),
            }
            (up, addr)
        }
        AuthMode::Proxy => match proxy_auth(client, s, ctx, session).await? {
            Ok(up) => up,
            Err(reason) => return Ok(Err(reason)),
        },
    };
    let (cancel_key, markers_allowed) =
        match finish_startup(client, &mut up, ctx, addr, session).await? {
            Ok(done) => done,
            Err(reason) => return Ok(Err(reason)),
        };
    Ok(Ok(LoggedIn {
        upstream: up,
        cancel_key,
        markers_allowed,
    }))
}

/// Relays the authentication exchange between client and server, removing
/// SCRAM channel binding from the offer: the client's TLS ends at pgtrail,
/// so a binding to the server's certificate could never match.
async fn relay_auth(
    client: &mut Framed,
    up: &mut Framed,
) -> Result<Result<&'static str, LoginRefused>, SessionError> {
    let mut method = "trust";
    loop {
        let frame = up.read_frame().await?;
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::AUTHENTICATION => {
                let (code, data) = backend::auth_request(view.body)?;
                match code {
                    codes::OK => {
                        client.write(&frame).await?;
                        return Ok(Ok(method));
                    }
                    codes::SASL => {
                        method = "scram-sha-256";
                        let offered: Vec<&[u8]> = backend::sasl_mechanisms(data)
                            .into_iter()
                            .filter(|m| !m.ends_with(b"-PLUS"))
                            .collect();
                        client.write(&build::auth_sasl(&offered)).await?;
                    }
                    codes::SASL_FINAL => {
                        client.write(&frame).await?;
                        continue;
                    }
                    c => {
                        method = match c {
                            codes::MD5 => "md5",
                            codes::CLEARTEXT => "password",
                            codes::SASL_CONTINUE => method,
                            _ => "other",
                        };
                        client.write(&frame).await?;
                    }
                }
                let answer = client.read_auth_frame().await?;
                if Frame::of(&answer).tag != tag::frontend::PASSWORD {
                    return Err(SessionError::Protocol("expected a password message".into()));
                }
                up.write(&answer).await?;
            }
            tag::backend::ERROR_RESPONSE => {
                client.write(&frame).await?;
                return Ok(Err(server_refusal(&frame)?));
            }
            _ => client.write(&frame).await?,
        }
    }
}

/// pgtrail checks the person, then logs in upstream as the mapped role.
async fn proxy_auth(
    client: &mut Framed,
    s: &Startup,
    ctx: &ProxyContext,
    session: &mut SessionInfo,
) -> Result<Result<(Framed, SocketAddr), LoginRefused>, SessionError> {
    let users = ctx.users();
    let outcome = auth::authenticate_client(
        client,
        &session.user,
        &session.database,
        &users,
        ctx.config.auth.unknown_user_method,
    )
    .await?;
    let entry = match outcome {
        ClientAuth::Ok { entry, method } => {
            session.auth_method = method.into();
            entry
        }
        ClientAuth::Failed { refusal, method } => {
            session.auth_method = method.into();
            let message = auth::failure_message(&session.user);
            client
                .write(&build::error_response(
                    Severity::Fatal,
                    sqlstate::INVALID_PASSWORD,
                    &message,
                ))
                .await?;
            return Ok(Err(LoginRefused::Person(refusal)));
        }
    };
    let auth_cfg = &ctx.config.auth;
    session.db_role = entry
        .db_role
        .or_else(|| auth_cfg.default_db_role.clone())
        .unwrap_or_else(|| session.user.clone());
    client.write(&build::auth_request(codes::OK, &[])).await?;
    let (mut up, addr) = upstream::connect(ctx).await?;
    let role = session.db_role.as_bytes();
    // The default database is the user name the client sent (the person, as
    // checked and audited above), not the role pgtrail logs in as: name it.
    let database = s
        .param("database")
        .filter(|d| !d.is_empty())
        .or_else(|| s.param("user"))
        .unwrap_or_default();
    let params = s
        .upstream_params()
        .filter(|(k, _)| *k != b"database")
        .map(|(k, v)| if k == b"user" { (k, role) } else { (k, v) })
        .chain(std::iter::once((&b"database"[..], database)));
    up.write(&build::startup_message(params)).await?;
    let password = auth_cfg
        .role_passwords
        .get(&session.db_role)
        .map(|p| p.0.as_str());
    match auth::login_upstream(&mut up, &session.db_role, password).await? {
        UpstreamLogin::Ok { .. } => Ok(Ok((up, addr))),
        UpstreamLogin::Refused {
            error,
            sqlstate,
            message,
        } => {
            client.write(&error).await?;
            Ok(Err(LoginRefused::Role {
                role: session.db_role.clone(),
                sqlstate,
                message,
            }))
        }
    }
}

/// The server's ErrorResponse during login, typed.
fn server_refusal(frame: &[u8]) -> Result<LoginRefused, SessionError> {
    let fields = backend::error_fields(Frame::of(frame).body)?;
    Ok(LoginRefused::Server {
        sqlstate: fields.code,
        message: fields.message,
    })
}

/// Passes ParameterStatus and notices on, replaces the secret in
/// BackendKeyData with one of pgtrail's (the pid stays the server's, so it
/// matches `pg_backend_pid()` and notifications), and ends with the
/// server's ReadyForQuery; with markers on, asks first whether the role
/// may emit them (`marker_probe`).
async fn finish_startup(
    client: &mut Framed,
    up: &mut Framed,
    ctx: &ProxyContext,
    addr: SocketAddr,
    session: &mut SessionInfo,
) -> Result<Result<(Option<CancelKey>, bool), LoginRefused>, SessionError> {
    let mut out = BytesMut::new();
    let mut key = None;
    loop {
        let frame = up.read_frame().await?;
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::BACKEND_KEY_DATA => {
                let (pid, secret) = backend::backend_key(view.body)?;
                // Records name the server's process; a pid is never negative.
                session.backend_pid = u32::try_from(pid).unwrap_or(0);
                let issued = ctx.cancel.register(UpstreamKey {
                    addr,
                    pid,
                    secret,
                    session: Arc::new(session.clone()),
                })?;
                out.put_slice(&build::backend_key_data(issued.pid, issued.secret));
                key = Some(issued);
            }
            tag::backend::READY_FOR_QUERY => {
                let markers_allowed =
                    super::marker_probe::markers_allowed(ctx, session, up, &mut out).await?;
                out.put_slice(&frame);
                client.write(&out).await?;
                return Ok(Ok((key, markers_allowed)));
            }
            tag::backend::ERROR_RESPONSE => {
                out.put_slice(&frame);
                client.write(&out).await?;
                return Ok(Err(server_refusal(&frame)?));
            }
            _ => out.put_slice(&frame),
        }
    }
}
