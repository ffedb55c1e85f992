//! What can go wrong with the users file: reading, parsing, its entries,
//! writing it back. `Display` is the one line operators see (`FILE: why`);
//! `source()` is the underlying io, TOML or file-writing error.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// `--method` or a configuration value that names no [`super::Method`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMethod(pub String);

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown method {:?}: use scram-sha-256, md5 or password",
            self.0
        )
    }
}

impl std::error::Error for UnknownMethod {}

/// A users file that parses but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidUsers {
    /// `mock_secret` is not 64 hex digits.
    MockSecret,
    /// A secret that is neither a SCRAM-SHA-256 verifier nor an md5 hash.
    UnknownSecret { user: String },
    /// `method = "scram-sha-256"` with an md5 secret.
    ScramWithoutVerifier { user: String },
    /// Two entries with one name.
    DuplicateName,
}

impl fmt::Display for InvalidUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidUsers::MockSecret => f.write_str("mock_secret: expected 64 hex digits"),
            InvalidUsers::UnknownSecret { user } => write!(
                f,
                "user {user:?}: secret is neither a SCRAM-SHA-256 verifier nor an md5 hash"
            ),
            InvalidUsers::ScramWithoutVerifier { user } => write!(
                f,
                "user {user:?}: method scram-sha-256 needs a SCRAM-SHA-256 secret"
            ),
            InvalidUsers::DuplicateName => f.write_str("duplicate user name"),
        }
    }
}

impl std::error::Error for InvalidUsers {}

/// The users file could not be read, used or written.
#[derive(Debug)]
pub enum UsersError {
    /// Reading the file failed (for `remove` and `list`, also when it is missing).
    Read { path: PathBuf, source: io::Error },
    /// The file is not valid TOML or not a users file.
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// The file parses, but an entry or the mock secret is unusable.
    Invalid { path: PathBuf, source: InvalidUsers },
    /// No randomness for a new `mock_secret`.
    Random(getrandom::Error),
    /// The entries could not be turned into TOML.
    Encode(toml::ser::Error),
    /// Writing the file (temporary file, sync, rename) failed.
    Write(crate::files::WriteError),
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            UsersError::Parse { path, source } => write!(f, "{}: {source}", path.display()),
            UsersError::Invalid { path, source } => write!(f, "{}: {source}", path.display()),
            UsersError::Random(e) => write!(f, "mock_secret: {e}"),
            UsersError::Encode(e) => e.fmt(f),
            UsersError::Write(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for UsersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UsersError::Read { source, .. } => Some(source),
            UsersError::Parse { source, .. } => Some(&**source),
            UsersError::Invalid { source, .. } => Some(source),
            UsersError::Random(e) => Some(e),
            UsersError::Encode(e) => Some(e),
            UsersError::Write(e) => Some(e),
        }
    }
}

impl From<crate::files::WriteError> for UsersError {
    fn from(e: crate::files::WriteError) -> Self {
        UsersError::Write(e)
    }
}
