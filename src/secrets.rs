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

/// Whether the configuration file itself holds a secret.
pub fn config_holds_secrets(c: &Config) -> bool {
    let in_url = |u: &str| masked_url(u) != u;
    !c.auth.role_passwords.is_empty()
        || !c.audit.clickhouse.password.0.is_empty()
        || !c.cdc.password.0.is_empty()
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
