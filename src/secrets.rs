//! Keeping secrets out of logs and error messages: URLs with their
//! passwords masked, and the start-up check of files that hold secrets.

use std::path::Path;

use crate::config::{AuthMode, Config};

/// `url` with the password of its user info and of any `password=` query
/// parameter replaced by `***`: `postgres://u:***@host/db`. Everything
/// pgtrail logs or reports about a configured URL goes through this.
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return mask_query(url);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{}", mask_query(tail))
}

/// `password=...` (and `passwd=`) query values replaced by `***`.
fn mask_query(s: &str) -> String {
    let Some((path, query)) = s.split_once('?') else {
        return s.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if matches!(k.to_ascii_lowercase().as_str(), "password" | "passwd") => {
                format!("{k}=***")
            }
            _ => p.to_string(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// SHA-256 (hex) of the configuration with its secrets left out (role
/// passwords, ClickHouse and replication passwords, URL passwords): what
/// lifecycle records name, so an auditor sees that it changed without
/// learning a secret from the digest.
pub fn config_digest(c: &Config) -> String {
    use sha2::{Digest, Sha256};
    let mut c = c.clone();
    for password in c.auth.role_passwords.values_mut() {
        password.0.clear();
    }
    c.audit.clickhouse.password.0.clear();
    c.cdc.password.0.clear();
    c.catalog.url.0.clear();
    for key in &mut c.identity.keys {
        key.hmac_secret = key.hmac_secret.as_ref().map(|_| Default::default());
    }
    c.upstream.url = masked_url(&c.upstream.url);
    c.audit.clickhouse_url = c.audit.clickhouse_url.as_deref().map(masked_url);
    // serde_json's maps are sorted, so the text is the same for the same
    // settings.
    let text = serde_json::to_value(&c)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default();
    crate::audit::chain::signing::hex(&Sha256::digest(&text))
}

/// Whether the configuration file itself holds a secret.
pub fn config_holds_secrets(c: &Config) -> bool {
    let in_url = |u: &str| masked_url(u) != u;
    !c.auth.role_passwords.is_empty()
        || !c.audit.clickhouse.password.0.is_empty()
        || !c.cdc.password.0.is_empty()
        || in_url(&c.catalog.url.0)
        || c.identity.keys.iter().any(|k| k.hmac_secret.is_some())
        || in_url(&c.upstream.url)
        || c.audit.clickhouse_url.as_deref().is_some_and(in_url)
}

/// Warns (naming the file and its mode) about files holding secrets that
/// group or others may read: the configuration file when it holds one,
/// and the users file of proxy mode.
pub fn warn_about_readable_secrets(c: &Config, config_file: Option<&Path>) {
    if let Some(path) = config_file.filter(|_| config_holds_secrets(c)) {
        crate::files::warn_if_readable(path, "the configuration file");
    }
    if let (AuthMode::Proxy, Some(path)) = (c.auth.mode, &c.auth.users_file) {
        crate::files::warn_if_readable(path, "the users file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_digest_changes_with_settings_but_not_with_secrets() {
        let base = Config::default();
        let mut secret = base.clone();
        secret.audit.clickhouse.password.0 = "s3cret".into();
        secret.upstream.url = "postgres://u:other@localhost:5432/db".into();
        let mut plain = base.clone();
        plain.upstream.url = "postgres://u:pw@localhost:5432/db".into();
        assert_eq!(config_digest(&plain), config_digest(&secret_url(&plain)));
        assert_eq!(config_digest(&base).len(), 64);
        let mut changed = base.clone();
        changed.audit.flush_interval_ms += 1;
        assert_ne!(config_digest(&base), config_digest(&changed));
        assert_ne!(config_digest(&base), config_digest(&secret));
        let mut pw_only = base.clone();
        pw_only.audit.clickhouse.password.0 = "another".into();
        assert_eq!(config_digest(&base), config_digest(&pw_only));
    }

    fn secret_url(c: &Config) -> Config {
        let mut c = c.clone();
        c.upstream.url = "postgres://u:different@localhost:5432/db".into();
        c
    }

    #[test]
    fn masks_passwords_in_urls() {
        assert_eq!(
            masked_url("postgres://u:s3cret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(masked_url("postgres://u@db"), "postgres://u@db");
        assert_eq!(masked_url("postgres://db:5432"), "postgres://db:5432");
        assert_eq!(
            masked_url("http://default:p@ss@ch:8123/?password=x&db=a"),
            "http://default:***@ch:8123/?password=***&db=a"
        );
        assert_eq!(
            masked_url("postgresql://[::1]:5/db?PassWord=z"),
            "postgresql://[::1]:5/db?PassWord=***"
        );
    }
}
