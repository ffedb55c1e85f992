//! The users file of `proxy` mode: people, their secrets (PostgreSQL's
//! `rolpassword` formats), the upstream role each maps to, and the
//! databases each may use.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

use super::scram::Verifier;

mod error;
pub use error::{InvalidUsers, UnknownMethod, UsersError};

/// How a person proves their password. One spelling everywhere, as
/// PostgreSQL's `pg_hba.conf` has it: `scram-sha-256`, `md5`, `password`
/// (users file, `pgtrail user add --method`, `user list`, configuration,
/// records). Files written by earlier builds said `scram-sha256`; it is
/// still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    #[default]
    #[serde(rename = "scram-sha-256", alias = "scram-sha256")]
    ScramSha256,
    Md5,
    /// Cleartext password over the wire: only sensible under TLS.
    Password,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ScramSha256 => "scram-sha-256",
            Method::Md5 => "md5",
            Method::Password => "password",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, UnknownMethod> {
        [Method::ScramSha256, Method::Md5, Method::Password]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMethod(s.to_string()))
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    /// `SCRAM-SHA-256$...` or `md5<hex>`.
    pub secret: String,
    #[serde(default)]
    pub method: Method,
    /// Upstream role; `auth.default_db_role` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_role: Option<String>,
    /// Databases this person may use; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("db_role", &self.db_role)
            .field("databases", &self.databases)
            .finish_non_exhaustive()
    }
}

impl UserEntry {
    pub fn allows_database(&self, db: &str) -> bool {
        self.databases.is_empty() || self.databases.iter().any(|d| d == db)
    }

    pub fn scram(&self) -> Option<Verifier> {
        Verifier::parse(&self.secret)
    }

    /// The stored md5 hash (`md5` + 32 hex digits), if that is the secret's form.
    pub fn md5_hash(&self) -> Option<&str> {
        let hex = self.secret.strip_prefix("md5")?;
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(&self.secret)
    }
}

#[derive(Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Salts the mock SCRAM exchange of unknown users (hex, 32 bytes), as
    /// PostgreSQL's per-cluster mock authentication nonce does: one value
    /// for every instance sharing the file, kept across restarts.
    /// `pgtrail user add` writes it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock_secret: Option<String>,
    #[serde(default, rename = "user")]
    pub users: Vec<UserEntry>,
}

impl std::fmt::Debug for UsersFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsersFile")
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

/// The users file, indexed by name.
#[derive(Default)]
pub struct Users {
    by_name: HashMap<String, UserEntry>,
    mock_secret: Vec<u8>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("by_name", &self.by_name)
            .finish_non_exhaustive()
    }
}

/// The mock secret of a file: its `mock_secret`, or for a file written
/// without one (by hand, or by an earlier pgtrail) a hash of every entry's
/// secret, which every instance reading the file computes alike and no
/// client knows. It changes when the entries change; `pgtrail user add`
/// writes a `mock_secret` so that it does not.
fn mock_secret_of(file: &UsersFile) -> Result<Vec<u8>, InvalidUsers> {
    if let Some(hex) = &file.mock_secret {
        return from_hex(hex).ok_or(InvalidUsers::MockSecret);
    }
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"pgtrail mock secret\0");
    for u in &file.users {
        h.update(u.name.as_bytes());
        h.update(b"\0");
        h.update(u.secret.as_bytes());
        h.update(b"\0");
    }
    Ok(h.finalize().to_vec())
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A new random mock secret, as hex.
fn new_mock_secret() -> Result<String, UsersError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(UsersError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Users {
    /// Reads the users file; a missing file has no users.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let file = read_file(path, Missing::Empty)?;
        Self::from_file(file).map_err(|source| UsersError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn from_file(file: UsersFile) -> Result<Users, InvalidUsers> {
        let mock_secret = mock_secret_of(&file)?;
        let mut by_name = HashMap::new();
        for u in file.users {
            if u.scram().is_none() && u.md5_hash().is_none() {
                return Err(InvalidUsers::UnknownSecret { user: u.name });
            }
            if u.method == Method::ScramSha256 && u.scram().is_none() {
                return Err(InvalidUsers::ScramWithoutVerifier { user: u.name });
            }
            if by_name.insert(u.name.clone(), u).is_some() {
                return Err(InvalidUsers::DuplicateName);
            }
        }
        Ok(Users {
            by_name,
            mock_secret,
        })
    }

    /// What salts the mock exchange of unknown users (see `UsersFile`).
    pub fn mock_secret(&self) -> &[u8] {
        &self.mock_secret
    }

    pub fn get(&self, name: &str) -> Option<&UserEntry> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// What changed since `before`, one line per person, sorted by name
    /// (added, removed, method, password, role, databases; never a secret).
    pub fn changes_since(&self, before: &Users) -> Vec<String> {
        let mut names: Vec<&String> = self.by_name.keys().chain(before.by_name.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            match (before.by_name.get(name), self.by_name.get(name)) {
                (None, Some(u)) => out.push(format!(
                    "added {name} ({}, role {})",
                    u.method.name(),
                    u.db_role.as_deref().unwrap_or("default")
                )),
                (Some(_), None) => out.push(format!("removed {name}")),
                (Some(a), Some(b)) => {
                    let mut what = Vec::new();
                    if a.method != b.method {
                        what.push(format!("method {} -> {}", a.method.name(), b.method.name()));
                    }
                    if a.secret != b.secret {
                        what.push("password changed".to_string());
                    }
                    if a.db_role != b.db_role {
                        what.push(format!(
                            "role {} -> {}",
                            a.db_role.as_deref().unwrap_or("default"),
                            b.db_role.as_deref().unwrap_or("default")
                        ));
                    }
                    if a.databases != b.databases {
                        what.push(format!("databases {:?} -> {:?}", a.databases, b.databases));
                    }
                    if !what.is_empty() {
                        out.push(format!("changed {name}: {}", what.join(", ")));
                    }
                }
                (None, None) => {}
            }
        }
        out
    }
}

/// What [`read_file`] makes of a file that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A file without users (starting a new file, or no file yet).
    Empty,
    /// An error (removing from or listing a file).
    Error,
}

/// Reads and parses the users file, without checking the entries.
pub fn read_file(path: &Path, missing: Missing) -> Result<UsersFile, UsersError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing == Missing::Empty => {
            return Ok(UsersFile::default());
        }
        Err(source) => {
            return Err(UsersError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|source| UsersError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Adds or replaces a person in the users file, keeping the others.
pub fn upsert(path: &Path, entry: UserEntry) -> Result<(), UsersError> {
    let mut file = read_file(path, Missing::Empty)?;
    file.users.retain(|u| u.name != entry.name);
    file.users.push(entry);
    write_file(path, &mut file)
}

/// Removes a person; returns whether they were there.
pub fn remove(path: &Path, name: &str) -> Result<bool, UsersError> {
    let mut file = read_file(path, Missing::Error)?;
    let before = file.users.len();
    file.users.retain(|u| u.name != name);
    let removed = file.users.len() != before;
    write_file(path, &mut file)?;
    Ok(removed)
}

/// Writes through a temporary file and a rename, so a reader never sees
/// half a file; the file holds secrets, so it is 0600 from its creation.
/// A file without `mock_secret` gets one.
fn write_file(path: &Path, file: &mut UsersFile) -> Result<(), UsersError> {
    if file.mock_secret.is_none() {
        file.mock_secret = Some(new_mock_secret()?);
    }
    let text = toml::to_string(&*file).map_err(UsersError::Encode)?;
    Ok(crate::files::write_private(path, text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_since_names_people_and_never_secrets() {
        let entry = |name: &str, secret: &str, role: Option<&str>| UserEntry {
            name: name.into(),
            secret: secret.into(),
            method: Method::Md5,
            db_role: role.map(Into::into),
            databases: Vec::new(),
        };
        let md5 = |c: char| format!("md5{}", c.to_string().repeat(32));
        let file = |users: Vec<UserEntry>| {
            Users::from_file(UsersFile {
                mock_secret: None,
                users,
            })
            .unwrap()
        };
        let before = file(vec![
            entry("alice", &md5('a'), None),
            entry("bob", &md5('b'), Some("app")),
        ]);
        let after = file(vec![
            entry("bob", &md5('c'), Some("admin")),
            entry("carol", &md5('d'), None),
        ]);
        assert_eq!(
            after.changes_since(&before),
            [
                "removed alice",
                "changed bob: password changed, role app -> admin",
                "added carol (md5, role default)",
            ]
        );
        assert!(after.changes_since(&after).is_empty());
    }

    #[test]
    fn one_spelling_of_scram_sha_256_and_the_old_one_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let secret = postgres_protocol::password::scram_sha_256(b"pw");
        upsert(
            &path,
            UserEntry {
                name: "alice".into(),
                secret: secret.clone(),
                method: Method::ScramSha256,
                db_role: None,
                databases: vec![],
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("method = \"scram-sha-256\""), "{text}");
        assert_eq!("scram-sha-256".parse::<Method>(), Ok(Method::ScramSha256));
        assert_eq!(Method::ScramSha256.name(), "scram-sha-256");
        assert!(
            "scram-sha256".parse::<Method>().is_err(),
            "flags take one spelling"
        );
        // A file written by an earlier build.
        std::fs::write(
            &path,
            format!("[[user]]\nname = \"bob\"\nsecret = \"{secret}\"\nmethod = \"scram-sha256\"\n"),
        )
        .unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(users.get("bob").unwrap().method, Method::ScramSha256);
    }

    #[test]
    fn upsert_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let secret = postgres_protocol::password::scram_sha_256(b"pw");
        let entry = |name: &str| UserEntry {
            name: name.into(),
            secret: secret.clone(),
            method: Method::ScramSha256,
            db_role: Some("app".into()),
            databases: vec!["db1".into()],
        };
        upsert(&path, entry("alice")).unwrap();
        upsert(&path, entry("bob")).unwrap();
        upsert(&path, entry("alice")).unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        let alice = users.get("alice").unwrap();
        assert!(alice.allows_database("db1") && !alice.allows_database("db2"));
        assert!(!format!("{alice:?}").contains("SCRAM"));
        assert!(remove(&path, "bob").unwrap());
        assert_eq!(Users::load(&path).unwrap().len(), 1);
    }

    #[test]
    fn writes_the_file_private_with_a_lasting_mock_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        // A file someone made world-readable, without a mock secret.
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let entry = UserEntry {
            name: "alice".into(),
            secret: postgres_protocol::password::md5(b"pw", "alice"),
            method: Method::Md5,
            db_role: None,
            databases: vec![],
        };
        upsert(&path, entry.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = Users::load(&path).unwrap().mock_secret().to_vec();
        assert_eq!(first.len(), 32);
        upsert(
            &path,
            UserEntry {
                name: "bob".into(),
                ..entry
            },
        )
        .unwrap();
        assert_eq!(Users::load(&path).unwrap().mock_secret(), first);
        assert!(!std::fs::read_to_string(&path).unwrap().is_empty());
        // Without one, the secret is a hash of the entries, the same twice.
        let file: UsersFile = toml::from_str("[[user]]\nname = \"a\"\nsecret = \"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nmethod = \"md5\"\n").unwrap();
        let a = Users::from_file(file.clone()).unwrap();
        assert_eq!(
            a.mock_secret(),
            Users::from_file(file).unwrap().mock_secret()
        );
    }

    #[test]
    fn rejects_bad_secrets() {
        let file = UsersFile {
            mock_secret: None,
            users: vec![UserEntry {
                name: "x".into(),
                secret: "plain".into(),
                method: Method::Password,
                db_role: None,
                databases: vec![],
            }],
        };
        assert_eq!(
            Users::from_file(file).err(),
            Some(InvalidUsers::UnknownSecret { user: "x".into() })
        );
    }
}
