//! What a `pgtrail` command reports when it fails, printed as
//! `pgtrail: <Display>` before the process exits with status 1.

use std::fmt;
use std::io;
use std::path::PathBuf;

use pgtrail::auth::users::{UnknownMethod, UsersError};
use pgtrail::config::ConfigError;
use pgtrail::fdlimit::FdLimitError;
use pgtrail::reload::ReloadError;
use pgtrail::startup_error::StartupError;
use pgtrail::tls::TlsError;

#[derive(Debug)]
pub enum CliError {
    /// The configuration file or the flags (`FILE:LINE:COL: key: why`).
    Config(ConfigError),
    /// The open file limit cannot hold `max_connections`.
    FileLimit(FdLimitError),
    /// The tokio runtime could not be built.
    Runtime(io::Error),
    /// The server did not start.
    Startup(StartupError),
    /// A SIGHUP reload was rejected (logged, never printed on exit).
    Reload(ReloadError),
    /// `schema --server-version` is not `MAJOR.MINOR`.
    ServerVersion(String),
    /// `check-config`: the users file the configuration names.
    CheckUsers { file: PathBuf, source: UsersError },
    /// `check-config`: a TLS file the configuration names.
    CheckTls {
        file: PathBuf,
        source: Box<TlsError>,
    },
    /// `user add --method`.
    Method(UnknownMethod),
    /// `user add/remove/list`: the users file.
    Users(UsersError),
    /// `user remove` of a name the file does not have.
    NotInFile { name: String, path: PathBuf },
    /// `user add`: stdin could not be read.
    ReadPassword(io::Error),
    /// `user add`: the first line of stdin is empty.
    EmptyPassword,
    /// `cdc setup`: the check or the apply failed.
    CdcSetup(Box<pgtrail::cdc::setup::SetupError>),
    /// `cdc setup`: pieces only a person can add are missing.
    CdcNeedsAPerson,
    /// `keygen`: the key files could not be written.
    Keygen(io::Error),
    /// `verify --public-key`.
    Key(pgtrail::audit::chain::signing::KeyError),
    /// `verify`: the trail could not be read.
    Verify(io::Error),
    /// `console`: the console did not start.
    Console(pgtrail::console::ConsoleError),
    /// `console user`: the console's users file.
    ConsoleUsers(pgtrail::console::users::ConsoleUsersError),
    /// `console user add --role`.
    ConsoleRole(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Config(e) => e.fmt(f),
            CliError::FileLimit(e) => e.fmt(f),
            CliError::Runtime(e) => write!(f, "tokio runtime: {e}"),
            CliError::Startup(e) => e.fmt(f),
            CliError::Reload(e) => e.fmt(f),
            CliError::ServerVersion(v) => {
                write!(f, "--server-version {v:?}: expected MAJOR.MINOR")
            }
            CliError::CheckUsers { file, source } => write!(
                f,
                "{}: auth.users_file: {}",
                file.display(),
                pgtrail::config_file::one_line(&source.to_string())
            ),
            CliError::CheckTls { file, source } => write!(f, "{}: {source}", file.display()),
            CliError::Method(e) => e.fmt(f),
            CliError::Users(e) => e.fmt(f),
            CliError::NotInFile { name, path } => write!(f, "{name}: not in {}", path.display()),
            CliError::ReadPassword(e) => write!(f, "reading password from stdin: {e}"),
            CliError::EmptyPassword => f.write_str("empty password on stdin"),
            CliError::CdcSetup(e) => write!(f, "cdc setup: {e}"),
            CliError::CdcNeedsAPerson => {
                f.write_str("cdc setup: some pieces need a person (lines NEEDS A PERSON above)")
            }
            CliError::Keygen(e) => write!(f, "keygen: {e}"),
            CliError::Key(e) => write!(f, "--public-key {e}"),
            CliError::Verify(e) => write!(f, "verify: {e}"),
            CliError::Console(e) => write!(f, "console: {e}"),
            CliError::ConsoleUsers(e) => write!(f, "console user: {e}"),
            CliError::ConsoleRole(r) => write!(f, "--role {r:?}: expected auditor or dba"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Config(e) => Some(e),
            CliError::FileLimit(e) => Some(e),
            CliError::Runtime(e) | CliError::ReadPassword(e) => Some(e),
            CliError::Startup(e) => Some(e),
            CliError::Reload(e) => Some(e),
            CliError::CheckUsers { source, .. } => Some(source),
            CliError::CheckTls { source, .. } => Some(&**source),
            CliError::Method(e) => Some(e),
            CliError::Users(e) => Some(e),
            CliError::CdcSetup(e) => Some(&**e),
            CliError::ServerVersion(_)
            | CliError::NotInFile { .. }
            | CliError::EmptyPassword
            | CliError::CdcNeedsAPerson
            | CliError::ConsoleRole(_) => None,
            CliError::Console(e) => Some(e),
            CliError::ConsoleUsers(e) => Some(e),
            CliError::Keygen(e) | CliError::Verify(e) => Some(e),
            CliError::Key(e) => Some(e),
        }
    }
}

macro_rules! from {
    ($($variant:ident($t:ty)),* $(,)?) => {
        $(impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::$variant(e)
            }
        })*
    };
}

from!(
    Config(ConfigError),
    FileLimit(FdLimitError),
    Startup(StartupError),
    Reload(ReloadError),
    Method(UnknownMethod),
    Users(UsersError),
);

impl From<pgtrail::cdc::setup::SetupError> for CliError {
    fn from(e: pgtrail::cdc::setup::SetupError) -> Self {
        CliError::CdcSetup(Box::new(e))
    }
}
