//! The users file of `proxy` mode: people, their secrets (PostgreSQL's
//! `rolpassword` formats), the upstream role each maps to, and the
//! databases each may use.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

use super::scram::Verifier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    #[default]
    ScramSha256,
    Md5,
    /// Cleartext password over the wire: only sensible under TLS.
    Password,
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

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    #[serde(default, rename = "user")]
    pub users: Vec<UserEntry>,
}

/// The users file, indexed by name.
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, UserEntry>,
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let file: UsersFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_file(file).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_file(file: UsersFile) -> Result<Users, String> {
        let mut by_name = HashMap::new();
        for u in file.users {
            if u.scram().is_none() && u.md5_hash().is_none() {
                return Err(format!(
                    "user {:?}: secret is neither a SCRAM-SHA-256 verifier nor an md5 hash",
                    u.name
                ));
            }
            if u.method == Method::ScramSha256 && u.scram().is_none() {
                return Err(format!(
                    "user {:?}: method scram-sha-256 needs a SCRAM-SHA-256 secret",
                    u.name
                ));
            }
            if by_name.insert(u.name.clone(), u).is_some() {
                return Err("duplicate user name".into());
            }
        }
        Ok(Users { by_name })
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
}

/// Adds or replaces a person in the users file, keeping the others.
pub fn upsert(path: &Path, entry: UserEntry) -> Result<(), String> {
    let mut file: UsersFile = match std::fs::read_to_string(path) {
        Ok(t) => toml::from_str(&t).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => UsersFile::default(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    file.users.retain(|u| u.name != entry.name);
    file.users.push(entry);
    write_file(path, &file)
}

/// Removes a person; returns whether they were there.
pub fn remove(path: &Path, name: &str) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file: UsersFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let before = file.users.len();
    file.users.retain(|u| u.name != name);
    let removed = file.users.len() != before;
    write_file(path, &file)?;
    Ok(removed)
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_file(path: &Path, file: &UsersFile) -> Result<(), String> {
    let text = toml::to_string(file).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rejects_bad_secrets() {
        let file = UsersFile {
            users: vec![UserEntry {
                name: "x".into(),
                secret: "plain".into(),
                method: Method::Password,
                db_role: None,
                databases: vec![],
            }],
        };
        assert!(Users::from_file(file).is_err());
    }
}
