//! The filters of a page's URL, checked: every value has a length limit
//! and a shape (times, fingerprints, SQLSTATEs, kinds); a value that fails
//! is a 400, never a query. Whatever passes reaches SQL only as a bound
//! value (`store::Sql`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::store::Range;
use crate::audit::record::{format_micros, parse_time_micros};

/// Longest accepted filter value, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;
/// Widest accepted time range.
const MAX_RANGE_DAYS: i64 = 400;
const DAY_US: i64 = 86_400_000_000;

/// The query string as sent (every field optional text).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Params {
    pub from: Option<String>,
    pub to: Option<String>,
    pub user: Option<String>,
    /// The end user an application claimed (`identity`).
    pub end_user: Option<String>,
    pub role: Option<String>,
    pub database: Option<String>,
    pub client: Option<String>,
    pub app: Option<String>,
    pub q: Option<String>,
    pub fingerprint: Option<String>,
    pub kind: Option<String>,
    pub class: Option<String>,
    pub table: Option<String>,
    pub sqlstate: Option<String>,
    pub session: Option<String>,
    pub key: Option<String>,
    pub name: Option<String>,
    pub instance: Option<String>,
    pub seq: Option<String>,
    pub t: Option<String>,
    pub action: Option<String>,
    /// `failed` or `ok`.
    pub outcome: Option<String>,
}

/// Why a filter was refused (shown to the person, who typed it).
#[derive(Debug, PartialEq, Eq)]
pub struct BadFilter {
    pub field: &'static str,
    pub why: &'static str,
}

impl fmt::Display for BadFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

/// Checked filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub range: Option<Range>,
    pub user: Option<String>,
    pub end_user: Option<String>,
    pub role: Option<String>,
    pub database: Option<String>,
    pub client: Option<String>,
    pub app: Option<String>,
    /// Words of a text search (letters, digits, `_`), at most 8.
    pub words: Vec<String>,
    pub fingerprint: Option<u64>,
    pub kind: Option<String>,
    pub class: Option<String>,
    pub table: Option<String>,
    pub sqlstate: Option<String>,
    pub session: Option<String>,
    pub key: Option<String>,
    pub name: Option<String>,
    pub instance: Option<String>,
    pub seq: Option<u64>,
    pub t: Option<i64>,
    pub action: Option<String>,
    /// `Some(true)`: only statements that succeeded; `Some(false)`: failed.
    pub success: Option<bool>,
}

fn text(field: &'static str, v: &Option<String>) -> Result<Option<String>, BadFilter> {
    let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.len() > MAX_VALUE_BYTES {
        return Err(BadFilter {
            field,
            why: "too long",
        });
    }
    Ok(Some(v.to_string()))
}

fn shaped(
    field: &'static str,
    v: &Option<String>,
    ok: impl Fn(char) -> bool,
    max: usize,
) -> Result<Option<String>, BadFilter> {
    let v = text(field, v)?;
    match v {
        Some(s) if s.len() > max || !s.chars().all(ok) => Err(BadFilter {
            field,
            why: "not a valid value",
        }),
        other => Ok(other),
    }
}

/// `YYYY-MM-DDTHH:MM[:SS]` (an HTML `datetime-local`, read as UTC) or
/// RFC 3339 with `Z`.
pub fn parse_time(s: &str) -> Option<i64> {
    let full = match s.len() {
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => s.to_string(),
    };
    parse_time_micros(&full)
}

/// `YYYY-MM-DDTHH:MM` of `micros`, for a `datetime-local` field.
pub fn input_time(micros: i64) -> String {
    format_micros(micros).chars().take(16).collect()
}

fn number<T: std::str::FromStr>(
    field: &'static str,
    v: &Option<String>,
) -> Result<Option<T>, BadFilter> {
    match text(field, v)? {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| BadFilter {
            field,
            why: "not a number",
        }),
    }
}

impl Params {
    /// Checks every field; the time range defaults to the `default_days`
    /// before `now` (`None`: no range, for pages keyed by an id).
    pub fn check(&self, now: i64, default_days: Option<i64>) -> Result<Filters, BadFilter> {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let ident = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        let fingerprint = match text("fingerprint", &self.fingerprint)? {
            None => None,
            Some(s) => Some(parse_fingerprint(&s).ok_or(BadFilter {
                field: "fingerprint",
                why: "not a fingerprint (16 hex digits or a number)",
            })?),
        };
        let words: Vec<String> = match text("q", &self.q)? {
            None => Vec::new(),
            Some(q) => q
                .split(|c: char| !word(c))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        };
        if words.is_empty() && self.q.as_deref().is_some_and(|q| !q.trim().is_empty()) {
            return Err(BadFilter {
                field: "q",
                why: "no words to search for (letters, digits, _)",
            });
        }
        if words.len() > 8 {
            return Err(BadFilter {
                field: "q",
                why: "at most 8 words",
            });
        }
        Ok(Filters {
            range: self.range(now, default_days)?,
            user: text("user", &self.user)?,
            end_user: text("end_user", &self.end_user)?,
            role: text("role", &self.role)?,
            database: text("database", &self.database)?,
            client: text("client", &self.client)?,
            app: text("app", &self.app)?,
            words,
            fingerprint,
            kind: shaped("kind", &self.kind, ident, 64)?,
            class: shaped("class", &self.class, ident, 16)?,
            table: text("table", &self.table)?,
            sqlstate: shaped("sqlstate", &self.sqlstate, |c| c.is_ascii_alphanumeric(), 5)?,
            session: text("session", &self.session)?,
            key: text("key", &self.key)?,
            name: text("name", &self.name)?,
            instance: text("instance", &self.instance)?,
            seq: number("seq", &self.seq)?,
            t: number("t", &self.t)?,
            action: shaped("action", &self.action, ident, 32)?,
            success: match text("outcome", &self.outcome)?.as_deref() {
                None => None,
                Some("ok") => Some(true),
                Some("failed") => Some(false),
                Some(_) => {
                    return Err(BadFilter {
                        field: "outcome",
                        why: "ok or failed",
                    })
                }
            },
        })
    }

    fn range(&self, now: i64, default_days: Option<i64>) -> Result<Option<Range>, BadFilter> {
        let time = |field: &'static str, v: &Option<String>| -> Result<Option<i64>, BadFilter> {
            match text(field, v)? {
                None => Ok(None),
                Some(s) => parse_time(&s).map(Some).ok_or(BadFilter {
                    field,
                    why: "not a time (YYYY-MM-DDTHH:MM, UTC)",
                }),
            }
        };
        let from = time("from", &self.from)?;
        let to = time("to", &self.to)?;
        let (from, to) = match (from, to, default_days) {
            (None, None, None) => return Ok(None),
            (from, to, days) => {
                let to = to.unwrap_or(now + 60_000_000);
                let from = from.unwrap_or(to - days.unwrap_or(1) * DAY_US);
                (from, to)
            }
        };
        if from >= to {
            return Err(BadFilter {
                field: "from",
                why: "must be before to",
            });
        }
        if to - from > MAX_RANGE_DAYS * DAY_US {
            return Err(BadFilter {
                field: "from",
                why: "the range is longer than 400 days",
            });
        }
        Ok(Some(Range { from, to }))
    }
}

/// 16 hex digits (as pages show it) or the decimal UInt64.
pub fn parse_fingerprint(s: &str) -> Option<u64> {
    if s.len() == 16 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return u64::from_str_radix(s, 16).ok();
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_765_000_000_000_000;

    #[test]
    fn checks_shapes_and_ranges() {
        let f = Params::default().check(NOW, Some(1)).unwrap();
        let r = f.range.unwrap();
        assert_eq!(r.to - r.from, DAY_US);
        let p = Params {
            from: Some("2025-01-02T03:04".into()),
            to: Some("2025-01-03T00:00:00Z".into()),
            q: Some("orders  'x' OR 1=1; --".into()),
            fingerprint: Some("00000000000000ff".into()),
            sqlstate: Some("42P01".into()),
            ..Params::default()
        };
        let f = p.check(NOW, Some(1)).unwrap();
        assert_eq!(f.words, ["orders", "x", "OR", "1", "1"]);
        assert_eq!(f.fingerprint, Some(255));
        assert_eq!(input_time(f.range.unwrap().from), "2025-01-02T03:04");
        let bad = |p: Params| p.check(NOW, Some(1)).unwrap_err().field;
        let refused: [(&str, Params); 6] = [
            (
                "sqlstate",
                Params {
                    sqlstate: Some("42P01' --".into()),
                    ..Params::default()
                },
            ),
            (
                "kind",
                Params {
                    kind: Some("select;drop".into()),
                    ..Params::default()
                },
            ),
            (
                "user",
                Params {
                    user: Some("x".repeat(300)),
                    ..Params::default()
                },
            ),
            (
                "from",
                Params {
                    from: Some("yesterday".into()),
                    ..Params::default()
                },
            ),
            (
                "seq",
                Params {
                    seq: Some("1 OR 1".into()),
                    ..Params::default()
                },
            ),
            (
                "from",
                Params {
                    from: Some("2001-01-01T00:00".into()),
                    ..Params::default()
                },
            ),
        ];
        for (field, params) in refused {
            assert_eq!(bad(params), field);
        }
        assert!(Params::default().check(NOW, None).unwrap().range.is_none());
    }
}
