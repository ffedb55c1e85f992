//! The console's people: a TOML file of SCRAM-SHA-256 verifiers (the
//! format of PostgreSQL's `pg_authid.rolpassword`, checked by the proxy's
//! own `auth::scram::Verifier`) with a role each, written 0600.
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! role = "auditor"
//! secret = "SCRAM-SHA-256$4096:...$...:..."
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::scram::Verifier;

/// What a console person may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including statement parameters and row values of
    /// redacted columns, and the console's own access records.
    Auditor,
    /// Everything except statement parameters and the (hashed) values of
    /// redacted columns.
    Dba,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::Dba => "dba",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "auditor" => Some(Role::Auditor),
            "dba" => Some(Role::Dba),
            _ => None,
        }
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub secret: String,
}

impl fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default, rename = "user")]
    users: Vec<ConsoleUser>,
}

#[derive(Debug)]
pub enum ConsoleUsersError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Parse {
        path: PathBuf,
        message: String,
    },
    BadSecret {
        path: PathBuf,
        name: String,
    },
    Write(crate::files::WriteError),
    Encode(String),
}

impl fmt::Display for ConsoleUsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleUsersError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            ConsoleUsersError::Parse { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
            ConsoleUsersError::BadSecret { path, name } => write!(
                f,
                "{}: {name}: secret is not a SCRAM-SHA-256 verifier",
                path.display()
            ),
            ConsoleUsersError::Write(e) => write!(f, "{e}"),
            ConsoleUsersError::Encode(e) => write!(f, "console users file: {e}"),
        }
    }
}

impl std::error::Error for ConsoleUsersError {}

/// The loaded file, by name, with each verifier parsed once.
pub struct ConsoleUsers {
    by_name: HashMap<String, (Role, Verifier)>,
    /// Salts the verifier an unknown name is checked against, so that a
    /// wrong name costs what a wrong password costs.
    mock_secret: [u8; 32],
}

impl ConsoleUsers {
    pub fn load(path: &Path) -> Result<ConsoleUsers, ConsoleUsersError> {
        crate::files::warn_if_readable(path, "console users file");
        let file = read(path, false)?;
        let mut by_name = HashMap::new();
        for u in file.users {
            let verifier =
                Verifier::parse(&u.secret).ok_or_else(|| ConsoleUsersError::BadSecret {
                    path: path.to_path_buf(),
                    name: u.name.clone(),
                })?;
            by_name.insert(u.name, (u.role, verifier));
        }
        let mut mock_secret = [0u8; 32];
        // Without randomness the mock salt is merely predictable.
        let _ = getrandom::fill(&mut mock_secret);
        Ok(ConsoleUsers {
            by_name,
            mock_secret,
        })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The person's role when `password` is theirs. An unknown name is
    /// checked against a mock verifier, so both cost the same.
    pub fn check(&self, name: &str, password: &str) -> Option<Role> {
        match self.by_name.get(name) {
            Some((role, verifier)) => verifier
                .matches_password(password.as_bytes())
                .then_some(*role),
            None => {
                let mock = Verifier::mock(name.as_bytes(), &self.mock_secret);
                let _ = mock.matches_password(password.as_bytes());
                None
            }
        }
    }
}

fn read(path: &Path, missing_is_empty: bool) -> Result<UsersFile, ConsoleUsersError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if missing_is_empty && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(UsersFile::default())
        }
        Err(source) => {
            return Err(ConsoleUsersError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|e| ConsoleUsersError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Adds or replaces a person (`pgtrail console user add`); the file is
/// written 0600 through a temporary file and a rename.
pub fn upsert(
    path: &Path,
    name: &str,
    role: Role,
    password: &str,
) -> Result<(), ConsoleUsersError> {
    let mut file = read(path, true)?;
    file.users.retain(|u| u.name != name);
    file.users.push(ConsoleUser {
        name: name.to_string(),
        role,
        secret: postgres_protocol::password::scram_sha_256(password.as_bytes()),
    });
    write(path, &file)
}

/// Removes a person; whether they were there.
pub fn remove(path: &Path, name: &str) -> Result<bool, ConsoleUsersError> {
    let mut file = read(path, false)?;
    let before = file.users.len();
    file.users.retain(|u| u.name != name);
    let removed = before != file.users.len();
    write(path, &file)?;
    Ok(removed)
}

/// Names and roles, never secrets.
pub fn list(path: &Path) -> Result<Vec<(String, Role)>, ConsoleUsersError> {
    Ok(read(path, false)?
        .users
        .into_iter()
        .map(|u| (u.name, u.role))
        .collect())
}

fn write(path: &Path, file: &UsersFile) -> Result<(), ConsoleUsersError> {
    let text = toml::to_string(file).map_err(|e| ConsoleUsersError::Encode(e.to_string()))?;
    crate::files::write_private(path, text.as_bytes()).map_err(ConsoleUsersError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn add_check_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console-users.toml");
        upsert(&path, "ann", Role::Auditor, "pw1").unwrap();
        upsert(&path, "bob", Role::Dba, "pw2").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let users = ConsoleUsers::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.check("ann", "pw1"), Some(Role::Auditor));
        assert_eq!(users.check("bob", "pw2"), Some(Role::Dba));
        assert_eq!(users.check("ann", "pw2"), None);
        assert_eq!(users.check("nobody", "pw1"), None);
        assert!(remove(&path, "bob").unwrap());
        assert!(!remove(&path, "bob").unwrap());
        assert_eq!(list(&path).unwrap(), vec![("ann".into(), Role::Auditor)]);
        assert!(!std::fs::read_to_string(&path).unwrap().contains("pw1"));
    }
}
