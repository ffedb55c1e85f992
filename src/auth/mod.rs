//! Authentication: checking people in `proxy` mode (SCRAM-SHA-256, md5 or
//! cleartext against the users file) and logging in upstream with the
//! mapped role's credentials (answering SCRAM, md5 or cleartext).

pub mod io;
pub mod scram;
pub mod users;

use bytes::Bytes;
use md5::{Digest, Md5};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use crate::protocol::backend::{self, auth};
use crate::protocol::{build, MessageReader};
use crate::protocol::{tag, Frame, HEADER_LEN};
pub use io::{AuthError, AuthIo, Side, MAX_AUTH_MESSAGE};
use scram::{ScramError, ScramServer, Verifier};
use users::{Method, UserEntry, Users};

/// What pgtrail itself found wrong with a person (proxy mode). The client
/// always hears the same 28P01 message, whatever went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonRefusal {
    WrongPassword { method: &'static str },
    UnknownUser,
    DatabaseNotAllowed { database: String },
}

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
pub async fn authenticate_client<C: AuthIo>(
    client: &mut C,
    user: &str,
    database: &str,
    users: &Users,
    unknown_user_method: Method,
) -> Result<ClientAuth, C::Error> {
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
async fn mock_exchange<C: AuthIo>(
    client: &mut C,
    user: &str,
    users: &Users,
    method: Method,
) -> Result<(), C::Error> {
    match method {
        Method::ScramSha256 => {
            let mock = Verifier::mock(user.as_bytes(), users.mock_secret());
            scram_exchange(client, mock).await?;
        }
        Method::Md5 => {
            client
                .write_message(&build::auth_request(auth::MD5, &md5_salt()?))
                .await?;
            read_password_message(client).await?;
        }
        Method::Password => {
            client
                .write_message(&build::auth_request(auth::CLEARTEXT, &[]))
                .await?;
            read_password_message(client).await?;
        }
    }
    Ok(())
}

/// A fresh salt for AuthenticationMD5Password.
fn md5_salt() -> Result<[u8; 4], AuthError> {
    let mut salt = [0u8; 4];
    getrandom::fill(&mut salt).map_err(AuthError::Random)?;
    Ok(salt)
}

/// Reads the client's PasswordMessage-family reply ('p').
async fn read_password_message<C: AuthIo>(client: &mut C) -> Result<Bytes, C::Error> {
    let frame = client.read_auth_message().await?;
    let got = Frame::of(&frame).tag;
    if got != tag::frontend::PASSWORD {
        return Err(AuthError::NotPassword { got }.into());
    }
    Ok(frame.slice(HEADER_LEN..))
}

async fn scram_exchange<C: AuthIo>(client: &mut C, verifier: Verifier) -> Result<bool, C::Error> {
    client
        .write_message(&build::auth_sasl(&[b"SCRAM-SHA-256"]))
        .await?;
    let body = read_password_message(client).await?;
    let mut r = MessageReader::new(&body);
    let mechanism = r.cstr()?;
    if mechanism != b"SCRAM-SHA-256" {
        return Err(AuthError::UnsupportedMechanism.into());
    }
    let len = usize::try_from(r.i32()?).map_err(|_| AuthError::MissingSaslData)?;
    let first = r.bytes(len)?;
    let (server, server_first) =
        ScramServer::start(verifier, first).map_err(AuthError::ScramStart)?;
    client
        .write_message(&build::auth_request(
            auth::SASL_CONTINUE,
            server_first.as_bytes(),
        ))
        .await?;
    let client_final = read_password_message(client).await?;
    match server.finish(&client_final) {
        Ok(server_final) => {
            client
                .write_message(&build::auth_request(
                    auth::SASL_FINAL,
                    server_final.as_bytes(),
                ))
                .await?;
            Ok(true)
        }
        Err(ScramError::WrongProof) => Ok(false),
        Err(ScramError::Malformed(m)) => Err(AuthError::ScramFinal(m).into()),
    }
}

async fn md5_exchange<C: AuthIo>(client: &mut C, entry: &UserEntry) -> Result<bool, C::Error> {
    let salt = md5_salt()?;
    client
        .write_message(&build::auth_request(auth::MD5, &salt))
        .await?;
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

async fn cleartext_exchange<C: AuthIo>(
    client: &mut C,
    entry: &UserEntry,
) -> Result<bool, C::Error> {
    client
        .write_message(&build::auth_request(auth::CLEARTEXT, &[]))
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
pub async fn login_upstream<S: AuthIo>(
    up: &mut S,
    role: &str,
    password: Option<&str>,
) -> Result<UpstreamLogin, S::Error> {
    let mut login = RoleLogin {
        role,
        password,
        method: "trust",
        scram: None,
    };
    loop {
        let frame = up.read_message().await?;
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::AUTHENTICATION => {
                let (code, data) = backend::auth_request(view.body)?;
                if code == auth::OK {
                    return Ok(UpstreamLogin::Ok {
                        method: login.method,
                    });
                }
                if let Some(reply) = login.answer(code, data)? {
                    up.write_message(&reply).await?;
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
            other => return Err(AuthError::UnexpectedMessage(other).into()),
        }
    }
}

/// pgtrail's side of an upstream login as one role: which method the
/// server asked for, and the SCRAM client while one runs.
struct RoleLogin<'a> {
    role: &'a str,
    password: Option<&'a str>,
    method: &'static str,
    scram: Option<ScramSha256>,
}

impl RoleLogin<'_> {
    fn password(&self) -> Result<&[u8], AuthError> {
        self.password
            .map(str::as_bytes)
            .ok_or_else(|| AuthError::NoRolePassword {
                role: self.role.to_string(),
            })
    }

    /// The reply to one authentication request other than
    /// AuthenticationOk; SASLFinal needs none.
    fn answer(&mut self, code: i32, data: &[u8]) -> Result<Option<Bytes>, AuthError> {
        match code {
            auth::CLEARTEXT => {
                self.method = "password";
                Ok(Some(build::password_message(self.password()?)))
            }
            auth::MD5 => {
                self.method = "md5";
                let salt: [u8; 4] = data
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(AuthError::ShortMd5Salt)?;
                let hash = postgres_protocol::authentication::md5_hash(
                    self.role.as_bytes(),
                    self.password()?,
                    salt,
                );
                Ok(Some(build::password_message(hash.as_bytes())))
            }
            auth::SASL => {
                self.method = "scram-sha-256";
                if !backend::sasl_mechanisms(data).contains(&&b"SCRAM-SHA-256"[..]) {
                    return Err(AuthError::NoScramOffered);
                }
                let client = ScramSha256::new(self.password()?, ChannelBinding::unsupported());
                let reply = build::sasl_initial_response(b"SCRAM-SHA-256", client.message());
                self.scram = Some(client);
                Ok(Some(reply))
            }
            auth::SASL_CONTINUE => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or(AuthError::OutOfOrder("SASLContinue"))?;
                s.update(data).map_err(AuthError::UpstreamScram)?;
                Ok(Some(build::sasl_response(s.message())))
            }
            auth::SASL_FINAL => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or(AuthError::OutOfOrder("SASLFinal"))?;
                s.finish(data).map_err(AuthError::ServerSignature)?;
                Ok(None)
            }
            other => Err(AuthError::UnsupportedRequest(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_requests_without_a_password_name_the_role() {
        let mut login = RoleLogin {
            role: "app",
            password: None,
            method: "trust",
            scram: None,
        };
        let e = login.answer(auth::CLEARTEXT, &[]).unwrap_err();
        assert_eq!(e.side(), Side::Upstream);
        assert_eq!(
            e.to_string(),
            "server asks for a password and none is configured for role \"app\""
        );
        assert_eq!(login.method, "password");
        let e = login.answer(auth::SASL_FINAL, b"v=x").unwrap_err();
        assert_eq!(e.to_string(), "SASLFinal out of order");
        assert!(matches!(
            login.answer(7, &[]),
            Err(AuthError::UnsupportedRequest(7))
        ));
    }

    #[test]
    fn md5_answers_with_the_hash_for_the_salt() {
        let mut login = RoleLogin {
            role: "app",
            password: Some("pw"),
            method: "trust",
            scram: None,
        };
        assert!(matches!(
            login.answer(auth::MD5, &[1, 2]),
            Err(AuthError::ShortMd5Salt)
        ));
        let reply = login.answer(auth::MD5, &[1, 2, 3, 4]).unwrap().unwrap();
        let hash = postgres_protocol::authentication::md5_hash(b"app", b"pw", [1, 2, 3, 4]);
        assert_eq!(reply, build::password_message(hash.as_bytes()));
        assert_eq!(login.method, "md5");
    }
}
