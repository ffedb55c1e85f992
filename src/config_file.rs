//! Reading the configuration file with errors an operator can act on:
//! `FILE:LINE:COLUMN: KEY: why` for what TOML or serde reject (syntax, wrong
//! type, unknown key, bad value) and `FILE:LINE:COLUMN: message` for what
//! [`Config::validate`] rejects (its messages start with the key). Used by
//! `pgtrail check-config`, `pgtrail run` and reloads.

use std::path::Path;

use crate::config::{Config, ConfigError};

/// Reads and parses `path` (not yet validated).
pub fn parse(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    parse_text(path, &text)
}

/// Reads, parses and validates `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let config = parse_text(path, &text)?;
    config
        .validate()
        .map_err(|e| locate_validation(path, &text, &e))?;
    Ok(config)
}

/// Validates a configuration read from `path` (maybe changed by
/// command-line flags since); errors point into the file when they can.
pub fn validate(path: &Path, config: &Config) -> Result<(), ConfigError> {
    config.validate().map_err(|e| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        locate_validation(path, &text, &e)
    })
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// Parses TOML text read from `path`.
pub fn parse_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let why = e.message().trim_end();
        let Some(span) = e.span() else {
            return ConfigError(format!("{}: {why}", path.display()));
        };
        let (line, col) = line_col(text, span.start);
        match key_at(text, span.start, why) {
            Some(key) => ConfigError(format!("{}:{line}:{col}: {key}: {why}", path.display())),
            None => ConfigError(format!("{}:{line}:{col}: {why}", path.display())),
        }
    })
}

/// Adds the file and, when the key is written in it, its line and column
/// to an error of [`Config::validate`].
fn locate_validation(path: &Path, text: &str, e: &ConfigError) -> ConfigError {
    let key = e.0.split([' ', ',', ':']).next().filter(|k| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b"._".contains(&b))
    });
    match key.and_then(|k| locate(text, k)) {
        Some((line, col)) => ConfigError(format!("{}:{line}:{col}: {}", path.display(), e.0)),
        None => ConfigError(format!("{}: {}", path.display(), e.0)),
    }
}

/// Joins a multi-line error (toml's `Display` draws the offending line
/// under the position) into one line for the log: the code excerpt is
/// dropped, position and message are kept.
pub fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| {
            let excerpt = l.starts_with('|')
                || l.split_once(" |")
                    .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()));
            !l.is_empty() && !excerpt
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// One `key = value` line of the file: its dotted key and where it starts.
struct KeyLine {
    key: String,
    line: usize,
    col: usize,
    start: usize,
}

/// The `key = value` lines (and `[table]` headers, as the table's key),
/// with the table headers above them applied. A line scan, not a TOML
/// parser: it only has to name the key of an error in a file TOML has
/// already read up to that error.
fn key_lines(text: &str) -> Vec<KeyLine> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut start = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        let key = if let Some(header) = line.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            table = clean_key(name.split(']').next().unwrap_or_default());
            Some(table.clone())
        } else {
            match line.split_once('=') {
                Some((k, _)) if is_key(k) => Some(if table.is_empty() {
                    clean_key(k)
                } else {
                    format!("{table}.{}", clean_key(k))
                }),
                _ => None,
            }
        };
        if let Some(key) = key {
            out.push(KeyLine {
                key,
                line: i + 1,
                col: raw[..indent].chars().count() + 1,
                start: start + indent,
            });
        }
        start += raw.len();
    }
    out
}

/// Text before `=` that is a (dotted, maybe quoted) key, not a comment or
/// a piece of a multi-line value.
fn is_key(k: &str) -> bool {
    let k = k.trim();
    !k.is_empty()
        && (!k.contains(['"', '\'']) || k.starts_with(['"', '\'']))
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-. \"'".contains(c))
}

/// `a . "b"` -> `a.b`.
fn clean_key(k: &str) -> String {
    k.split('.')
        .map(|p| p.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".")
}

/// The dotted key of the line holding byte `offset`; for an unknown field,
/// the field serde names in `why` under that line's table.
fn key_at(text: &str, offset: usize, why: &str) -> Option<String> {
    let lines = key_lines(text);
    let at = lines.iter().rev().find(|k| k.start <= offset)?;
    let unknown = why
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next());
    match unknown {
        Some(field) if at.key != field && !at.key.ends_with(&format!(".{field}")) => {
            // The span is the table holding the unknown key (an inline table, say).
            Some(format!("{}.{field}", at.key))
        }
        _ => Some(at.key.clone()),
    }
}

/// Line and column of `key` in the file, if it is written there.
fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    key_lines(text)
        .into_iter()
        .find(|k| k.key == key)
        .map(|k| (k.line, k.col))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(toml_text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pgtrail.toml");
        std::fs::write(&path, toml_text).expect("write config");
        let e = load(&path).expect_err("config must be rejected").0;
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        e
    }

    #[test]
    fn unknown_key_names_file_key_and_position() {
        let e = error_of("listen = \"127.0.0.1:6432\"\n\n[upstream]\nurl = \"postgres://db:5432\"\ntimeout_ms = 5\n");
        assert!(
            e.contains(":5:1: upstream.timeout_ms: unknown field `timeout_ms`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_file_key_and_position() {
        let e = error_of("[limits]\nmax_message_bytes = \"big\"\n");
        assert!(e.contains(":2:"), "{e}");
        assert!(
            e.contains("limits.max_message_bytes: invalid type: string \"big\""),
            "{e}"
        );
    }

    #[test]
    fn invalid_value_names_file_key_and_position() {
        let e = error_of("worker_threads = 2\n[audit.clickhouse]\ndatabase = \"audit-db\"\n");
        assert!(
            e.contains(":3:1: audit.clickhouse.database \"audit-db\" must be a plain identifier"),
            "{e}"
        );
        let e = error_of("[tls]\nmode = \"sometimes\"\n");
        assert!(
            e.contains(":2:8: tls.mode: unknown variant `sometimes`"),
            "{e}"
        );
    }

    #[test]
    fn toml_excerpts_become_one_line() {
        let e = "u.toml: TOML parse error at line 1, column 1\n  |\n1 | [[user]]\n  | ^^^^\nmissing field `secret`\n";
        assert_eq!(
            one_line(e),
            "u.toml: TOML parse error at line 1, column 1: missing field `secret`"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = error_of("[upstream]\nurl = \"postgres://db\n");
        assert!(e.contains(":2:"), "{e}");
    }
}
