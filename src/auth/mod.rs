//! Authentication: checking people in `proxy` mode (SCRAM-SHA-256, md5 or
//! cleartext against the users file) and logging in upstream with the
//! mapped role's credentials (answering SCRAM, md5 or cleartext).

pub mod scram;
pub mod users;

use md5::{Digest, Md5};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use crate::protocol::backend::{self, auth};
use crate::protocol::{build, MessageReader};
use crate::protocol::{tag, Frame, HEADER_LEN};
use crate::session::error::SessionError;
use crate::session::refusal::PersonRefusal;
use crate::session::stream::Framed;
use scram::{ScramError, ScramServer, Verifier};
use users::{Method, UserEntry, Users};

/// The result of checking a person.
pub enum ClientAuth {
    Ok {
        entry: UserEntry,
        method: &'static str,
    },
    /// The refusal is for the audit trail only; the client always hears
    /// the same 28P01 message, whatever went wrong. `method` is the one the
    /// exchange used (for an unknown user, the mock's), for the record's
    /// `auth_method`.
    Failed {
        refusal: PersonRefusal,
        method: &'static str,
    },
}

/// What every failed login tells the client, as PostgreSQL does.
pub fn failure_message(user: &str) -> String {
    format!("password authentication failed for user \"{user}\"")
}

/// Runs the exchange with the client; sends nothing after the last
/// challenge, so the caller sends AuthenticationOk or the error.
pub async fn authenticate_client(
    client: &mut Framed,
    user: &str,
    database: &str,
    users: &Users,
    unknown_user_method: Method,
) -> Result<ClientAuth, SessionError> {
    let Some(entry) = users.get(user) else {
        mock_exchange(client, user, users, unknown_user_method).await?;
        return Ok(ClientAuth::Failed {
            refusal: PersonRefusal::UnknownUser,
            method: unknown_user_method.name(),
        });
    };
    let (passed, method) = match (entry.method, entry.scram()) {
        (Method::ScramSha256 | Method::Md5, Some(v)) => {
            (scram_exchange(client, v).await?, Method::ScramSha256.name())
        }
        (Method::Md5, None) => (md5_exchange(client, entry).await?, Method::Md5.name()),
        (Method::Password, _) => (
            cleartext_exchange(client, entry).await?,
            Method::Password.name(),
        ),
        (Method::ScramSha256, None) => (false, Method::ScramSha256.name()),
    };
    if !passed {
        return Ok(ClientAuth::Failed {
            refusal: PersonRefusal::WrongPassword { method },
            method,
        });
    }
    if !entry.allows_database(database) {
        return Ok(ClientAuth::Failed {
            refusal: PersonRefusal::DatabaseNotAllowed {
                database: database.to_string(),
            },
            method,
        });
    }
    Ok(ClientAuth::Ok {
        entry: entry.clone(),
        method,
    })
}

/// The exchange an unknown user gets: the configured method, and for SCRAM
/// a salt derived from the users file's mock secret, so that the answer
/// looks like a real person's on every instance and across restarts.
async fn mock_exchange(
    client: &mut Framed,
    user: &str,
    users: &Users,
    method: Method,
) -> Result<(), SessionError> {
    match method {
        Method::ScramSha256 => {
            let mock = Verifier::mock(user.as_bytes(), users.mock_secret());
            scram_exchange(client, mock).await?;
        }
        Method::Md5 => {
            let mut salt = [0u8; 4];
            getrandom::fill(&mut salt).map_err(|e| SessionError::Protocol(e.to_string()))?;
            client.write(&build::auth_request(auth::MD5, &salt)).await?;
            read_password_message(client).await?;
        }
        Method::Password => {
            client
                .write(&build::auth_request(auth::CLEARTEXT, &[]))
                .await?;
            read_password_message(client).await?;
        }
    }
    Ok(())
}

/// Reads the client's PasswordMessage-family reply ('p').
async fn read_password_message(client: &mut Framed) -> Result<bytes::Bytes, SessionError> {
    let frame = client.read_auth_frame().await?;
    let got = Frame::of(&frame).tag;
    if got != tag::frontend::PASSWORD {
        return Err(SessionError::Protocol(format!(
            "expected a password message, got {}",
            crate::protocol::frame::tag_name(got)
        )));
    }
    Ok(frame.slice(HEADER_LEN..))
}

async fn scram_exchange(client: &mut Framed, verifier: Verifier) -> Result<bool, SessionError> {
    client.write(&build::auth_sasl(&[b"SCRAM-SHA-256"])).await?;
    let body = read_password_message(client).await?;
    let mut r = MessageReader::new(&body);
    let mechanism = r.cstr()?;
    if mechanism != b"SCRAM-SHA-256" {
        return Err(SessionError::Protocol("unsupported SASL mechanism".into()));
    }
    let len = r.i32()?;
    let first = r.bytes(
        usize::try_from(len).map_err(|_| SessionError::Protocol("missing SASL data".into()))?,
    )?;
    let (server, server_first) = ScramServer::start(verifier, first)
        .map_err(|e| SessionError::Protocol(format!("SCRAM: {e:?}")))?;
    client
        .write(&build::auth_request(
            auth::SASL_CONTINUE,
            server_first.as_bytes(),
        ))
        .await?;
    let client_final = read_password_message(client).await?;
    match server.finish(&client_final) {
        Ok(server_final) => {
            client
                .write(&build::auth_request(
                    auth::SASL_FINAL,
                    server_final.as_bytes(),
                ))
                .await?;
            Ok(true)
        }
        Err(ScramError::WrongProof) => Ok(false),
        Err(ScramError::Malformed(m)) => Err(SessionError::Protocol(format!("SCRAM: {m}"))),
    }
}

async fn md5_exchange(client: &mut Framed, entry: &UserEntry) -> Result<bool, SessionError> {
    let mut salt = [0u8; 4];
    getrandom::fill(&mut salt).map_err(|e| SessionError::Protocol(e.to_string()))?;
    client.write(&build::auth_request(auth::MD5, &salt)).await?;
    let body = read_password_message(client).await?;
    let answer = MessageReader::new(&body).cstr()?;
    let Some(stored) = entry.md5_hash() else {
        return Ok(false);
    };
    // The client sends "md5" + md5(hex(md5(password + user)) + salt).
    let mut h = Md5::new();
    h.update(&stored.as_bytes()[3..]);
    h.update(salt);
    let expected = format!("md5{}", hex(&h.finalize()));
    Ok(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), answer).into())
}

async fn cleartext_exchange(client: &mut Framed, entry: &UserEntry) -> Result<bool, SessionError> {
    client
        .write(&build::auth_request(auth::CLEARTEXT, &[]))
        .await?;
    let body = read_password_message(client).await?;
    let password = MessageReader::new(&body).cstr()?;
    if let Some(v) = entry.scram() {
        return Ok(v.matches_password(password));
    }
    let Some(stored) = entry.md5_hash() else {
        return Ok(false);
    };
    let mut h = Md5::new();
    h.update(password);
    h.update(entry.name.as_bytes());
    let computed = format!("md5{}", hex(&h.finalize()));
    Ok(subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), stored.as_bytes()).into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How an upstream login ended.
pub enum UpstreamLogin {
    /// AuthenticationOk arrived; the method the server asked for.
    Ok { method: &'static str },
    /// The server refused; its ErrorResponse frame, to pass on.
    Refused {
        error: bytes::Bytes,
        sqlstate: String,
        message: String,
    },
}

/// Answers the server's authentication requests as `role`.
pub async fn login_upstream(
    up: &mut Framed,
    role: &str,
    password: Option<&str>,
) -> Result<UpstreamLogin, SessionError> {
    let mut method = "trust";
    let mut scram: Option<ScramSha256> = None;
    let need_password = || {
        password.ok_or_else(|| {
            SessionError::Upstream(format!(
                "server asks for a password and none is configured for role \"{role}\""
            ))
        })
    };
    loop {
        let frame = up.read_frame().await?;
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::AUTHENTICATION => {
                let (code, data) = backend::auth_request(view.body)?;
                match code {
                    auth::OK => return Ok(UpstreamLogin::Ok { method }),
                    auth::CLEARTEXT => {
                        method = "password";
                        up.write(&build::password_message(need_password()?.as_bytes()))
                            .await?;
                    }
                    auth::MD5 => {
                        method = "md5";
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or(SessionError::Upstream("short md5 salt".into()))?;
                        let hash = postgres_protocol::authentication::md5_hash(
                            role.as_bytes(),
                            need_password()?.as_bytes(),
                            salt,
                        );
                        up.write(&build::password_message(hash.as_bytes())).await?;
                    }
                    auth::SASL => {
                        method = "scram-sha-256";
                        if !backend::sasl_mechanisms(data).contains(&&b"SCRAM-SHA-256"[..]) {
                            return Err(SessionError::Upstream(
                                "server offers no SASL mechanism pgtrail supports".into(),
                            ));
                        }
                        let client = ScramSha256::new(
                            need_password()?.as_bytes(),
                            ChannelBinding::unsupported(),
                        );
                        up.write(&build::sasl_initial_response(
                            b"SCRAM-SHA-256",
                            client.message(),
                        ))
                        .await?;
                        scram = Some(client);
                    }
                    auth::SASL_CONTINUE => {
                        let s = scram
                            .as_mut()
                            .ok_or(SessionError::Upstream("SASLContinue out of order".into()))?;
                        s.update(data)
                            .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
                        up.write(&build::sasl_response(s.message())).await?;
                    }
                    auth::SASL_FINAL => {
                        let s = scram
                            .as_mut()
                            .ok_or(SessionError::Upstream("SASLFinal out of order".into()))?;
                        s.finish(data).map_err(|e| {
                            SessionError::Upstream(format!("SCRAM server signature: {e}"))
                        })?;
                    }
                    other => {
                        return Err(SessionError::Upstream(format!(
                            "unsupported authentication request {other}"
                        )))
                    }
                }
            }
            tag::backend::ERROR_RESPONSE => {
                let fields = backend::error_fields(view.body).unwrap_or_default();
                return Ok(UpstreamLogin::Refused {
                    error: frame,
                    sqlstate: fields.code,
                    message: fields.message,
                });
            }
            tag::backend::NOTICE_RESPONSE | tag::backend::NEGOTIATE_PROTOCOL_VERSION => {}
            other => {
                return Err(SessionError::Upstream(format!(
                    "unexpected message {} during login",
                    crate::protocol::frame::tag_name(other)
                )))
            }
        }
    }
}
