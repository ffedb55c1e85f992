//! Live reload (SIGHUP, or [`reload`] from an embedder or a test): the
//! configuration file is read again and what can change without a restart
//! is put in force for new sessions:
//!
//! - `log.level` (the subscriber's reload handle, when the binary installed one),
//! - `tls.*`: certificate, key, client CA and mode (a new acceptor; sessions
//!   already open keep the TLS they negotiated),
//! - `auth.users_file`: the users of proxy mode, read again,
//! - `audit.failure_policy` (at once, for every session) and
//!   `audit.log_parameters` (sessions that start from now on).
//!
//! Every other changed key is reported as needing a restart, one warning
//! each. Everything is loaded and checked before anything is applied: a
//! file that does not parse or validate, a certificate that does not load
//! or a users file that does not load rejects the whole reload, and the
//! settings in force stay as they were.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::auth::users::{Users, UsersError};
use crate::config::{AuthMode, Config, ConfigError};
use crate::context::{LiveSettings, ProxyContext};
use crate::tls::TlsError;

/// Keys a reload applies; every other key needs a restart.
const LIVE_KEYS: [&str; 8] = [
    "log.level",
    "tls.mode",
    "tls.cert_file",
    "tls.key_file",
    "tls.client_ca_file",
    "auth.users_file",
    "audit.failure_policy",
    "audit.log_parameters",
];

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Live keys whose value changed and is now in force.
    pub applied: Vec<String>,
    /// Keys whose value changed in the file but only apply after a restart.
    pub needs_restart: Vec<String>,
    /// `log.level` before and after, when it changed.
    pub log_level: Option<(String, String)>,
    /// The client TLS acceptor was rebuilt from the files (TLS enabled).
    pub tls_reloaded: bool,
    /// People in the users file (proxy mode).
    pub users: Option<usize>,
}

/// Why a reload changed nothing. `Display` is one line naming the file,
/// the key and why.
#[derive(Debug)]
pub enum ReloadError {
    /// The file does not read, parse or validate (`FILE:LINE:COL: ...`).
    Config(ConfigError),
    /// A TLS file named in `file` does not load.
    Tls {
        file: PathBuf,
        source: Box<TlsError>,
    },
    /// The users file named in `file` does not load.
    Users {
        file: PathBuf,
        source: Box<UsersError>,
    },
    /// Proxy mode, and the new file names no users file.
    NoUsersFile { file: PathBuf },
    /// A configuration that does not turn into TOML for the comparison.
    Compare(toml::ser::Error),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Config(e) => e.fmt(f),
            ReloadError::Tls { file, source } => write!(f, "{}: {source}", file.display()),
            ReloadError::Users { file, source } => write!(
                f,
                "{}: auth.users_file: {}",
                file.display(),
                crate::config_file::one_line(&source.to_string())
            ),
            ReloadError::NoUsersFile { file } => write!(
                f,
                "{}: auth.users_file: required in proxy mode",
                file.display()
            ),
            ReloadError::Compare(e) => write!(f, "configuration as TOML: {e}"),
        }
    }
}

impl std::error::Error for ReloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReloadError::Config(e) => Some(e),
            ReloadError::Tls { source, .. } => Some(&**source),
            ReloadError::Users { source, .. } => Some(&**source),
            ReloadError::NoUsersFile { .. } => None,
            ReloadError::Compare(e) => Some(e),
        }
    }
}

/// Reads `file` again and applies it (see the module doc). `Err` is one
/// line naming the file, the key and why; nothing was changed then.
pub fn reload(ctx: &ProxyContext, file: &Path) -> Result<ReloadSummary, ReloadError> {
    let config = crate::config_file::load(file).map_err(ReloadError::Config)?;
    apply(ctx, file, config)
}

/// Applies `new`, read from `file` (and possibly changed by command-line
/// flags since, which is why the binary passes it in).
pub fn apply(ctx: &ProxyContext, file: &Path, new: Config) -> Result<ReloadSummary, ReloadError> {
    crate::config_file::validate(file, &new).map_err(ReloadError::Config)?;
    // Load everything first: any failure leaves the running settings whole.
    let acceptor = crate::tls::acceptor(&new.tls).map_err(|source| ReloadError::Tls {
        file: file.to_path_buf(),
        source: Box::new(source),
    })?;
    let users = match (ctx.config.auth.mode, &new.auth.users_file) {
        (AuthMode::Proxy, Some(path)) => {
            Some(Users::load(path).map_err(|source| ReloadError::Users {
                file: file.to_path_buf(),
                source: Box::new(source),
            })?)
        }
        (AuthMode::Proxy, None) => {
            return Err(ReloadError::NoUsersFile {
                file: file.to_path_buf(),
            });
        }
        (AuthMode::Passthrough, _) => None,
    };

    let live = ctx.live();
    // The running configuration: what the server started with, its live
    // keys as the last reload left them.
    let mut running = (*ctx.config).clone();
    running.tls = live.tls.clone();
    running.log.level = live.log_level.clone();
    running.auth.users_file = live.users_file.clone();
    running.audit.log_parameters = live.log_parameters;
    running.audit.failure_policy = ctx.audit.policy();
    let mut changed = Vec::new();
    diff(&as_value(&running)?, &as_value(&new)?, "", &mut changed);
    let (applied, needs_restart): (Vec<String>, Vec<String>) = changed
        .into_iter()
        .partition(|k| LIVE_KEYS.contains(&k.as_str()));

    // From here on nothing fails.
    let summary = ReloadSummary {
        log_level: (live.log_level != new.log.level)
            .then(|| (live.log_level.clone(), new.log.level.clone())),
        tls_reloaded: acceptor.is_some(),
        users: users.as_ref().map(Users::len),
        applied,
        needs_restart,
    };
    if summary.log_level.is_some() {
        if let Some(log) = ctx.log.get() {
            if let Err(e) = log.set_level(&new.log.level) {
                // Only if the subscriber is gone: nothing else to restore.
                tracing::warn!(file = %file.display(), error = %e, "log.level not applied");
            }
        }
    }
    ctx.set_live(LiveSettings::new(&new, acceptor));
    ctx.audit.gate().set_policy(new.audit.failure_policy);
    if let Some(users) = users {
        ctx.set_users(users);
    }
    for key in &summary.needs_restart {
        tracing::warn!("changed in {} but needs a restart: {key}", file.display());
    }
    if !summary.applied.is_empty() || !summary.needs_restart.is_empty() {
        ctx.audit
            .send_soon(crate::audit::event::AuditEvent::Lifecycle {
                event_type: crate::audit::record::LifecycleEvent::Reload,
                config_digest: crate::secrets::config_digest(&new),
                detail: format!(
                    "{}: applied [{}]; needs a restart [{}]",
                    file.display(),
                    summary.applied.join(", "),
                    summary.needs_restart.join(", ")
                ),
            });
    }
    tracing::info!(
        file = %file.display(),
        applied = ?summary.applied,
        tls_reloaded = summary.tls_reloaded,
        users = ?summary.users,
        "configuration reloaded"
    );
    Ok(summary)
}

fn as_value(c: &Config) -> Result<toml::Value, ReloadError> {
    toml::Value::try_from(c).map_err(ReloadError::Compare)
}

/// Dotted keys whose values differ between `a` and `b` (tables compared
/// key by key, anything else as a whole).
fn diff(a: &toml::Value, b: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (ta.get(k), tb.get(k)) {
                    (Some(va), Some(vb)) => diff(va, vb, &key(k), out),
                    _ => out.push(key(k)),
                }
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_keys() {
        let a = Config::default();
        let mut b = Config::default();
        b.log.level = "debug".into();
        b.upstream.url = "postgres://db:5433".into();
        b.tls.cert_file = Some("x.pem".into());
        let mut keys = Vec::new();
        diff(
            &as_value(&a).expect("toml"),
            &as_value(&b).expect("toml"),
            "",
            &mut keys,
        );
        assert_eq!(keys, ["log.level", "tls.cert_file", "upstream.url"]);
    }
}
