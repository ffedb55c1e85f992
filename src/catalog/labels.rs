//! `[labels]`: label → column patterns, and the labels of the columns a
//! statement touched.

use crate::config::LabelsConfig;

/// One pattern: `schema.table.column` or `table.column` (any schema); a
/// part may be `*` or hold `*` wildcards.
#[derive(Debug, Clone)]
struct Pattern {
    schema: Option<String>,
    table: String,
    column: String,
}

/// Why a `[labels]` pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern {
    pub label: String,
    pub pattern: String,
}

impl std::fmt::Display for BadPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "labels.{}: {:?} is not schema.table.column or table.column",
            self.label, self.pattern
        )
    }
}

/// The compiled `[labels]`.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    patterns: Vec<(String, Pattern)>,
}

impl Labels {
    pub fn new(config: &LabelsConfig) -> Result<Labels, BadPattern> {
        let mut patterns = Vec::new();
        for (label, list) in config {
            for p in list {
                let parts: Vec<&str> = p.split('.').collect();
                let pattern = match parts.as_slice() {
                    [t, c] if !t.is_empty() && !c.is_empty() => Pattern {
                        schema: None,
                        table: t.to_string(),
                        column: c.to_string(),
                    },
                    [s, t, c] if !s.is_empty() && !t.is_empty() && !c.is_empty() => Pattern {
                        schema: Some(s.to_string()),
                        table: t.to_string(),
                        column: c.to_string(),
                    },
                    _ => {
                        return Err(BadPattern {
                            label: label.clone(),
                            pattern: p.clone(),
                        })
                    }
                };
                patterns.push((label.clone(), pattern));
            }
        }
        Ok(Labels { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The labels of `columns` (as records hold them: `schema.table.column`
    /// resolved; `table.column` or `table.*` as written, `?.column` for an
    /// unplaced one), sorted, each once. A column not fully known matches
    /// every pattern it could be: an audit must over-report, not miss.
    pub fn of<'a>(&self, columns: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in columns {
            let Some(name) = ColumnName::of(c) else {
                continue;
            };
            for (label, p) in &self.patterns {
                if !out.contains(label) && p.matches(&name) {
                    out.push(label.clone());
                }
            }
        }
        out.sort();
        out
    }
}

/// A column as records name it, split once for every pattern:
/// `schema.table.column` or `table.column`.
struct ColumnName<'a> {
    schema: Option<&'a str>,
    table: &'a str,
    column: &'a str,
}

impl<'a> ColumnName<'a> {
    fn of(name: &'a str) -> Option<Self> {
        let parts: Vec<&str> = name.split('.').collect();
        let (schema, table, column) = match parts.as_slice() {
            [s, t, c] => (Some(*s), *t, *c),
            [t, c] => (None, *t, *c),
            _ => return None,
        };
        Some(ColumnName {
            schema,
            table,
            column,
        })
    }
}

impl Pattern {
    fn matches(&self, c: &ColumnName<'_>) -> bool {
        let schema_ok = match (&self.schema, c.schema) {
            (Some(p), Some(s)) => glob(p, s),
            _ => true,
        };
        schema_ok
            && (c.table == "?" || glob(&self.table, c.table))
            && (c.column == "*" || glob(&self.column, c.column))
    }
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut text) = text.strip_prefix(head) else {
        return false;
    };
    let pieces: Vec<&str> = rest.split('*').collect();
    let (last, middle) = pieces.split_last().unwrap_or((&"", &[]));
    for piece in middle {
        match text.find(piece) {
            Some(i) => text = &text[i + piece.len()..],
            None => return false,
        }
    }
    text.len() >= last.len() && text.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        let mut c = LabelsConfig::new();
        c.insert(
            "pci".into(),
            vec!["public.customers.card_number".into(), "*.cards.num*".into()],
        );
        c.insert(
            "pii".into(),
            vec!["customers.name".into(), "hr.*.ssn".into()],
        );
        Labels::new(&c).unwrap()
    }

    #[test]
    fn patterns_match_resolved_and_written_columns() {
        let l = labels();
        let of = |cols: &[&str]| {
            l.of(cols
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .iter())
        };
        assert_eq!(of(&["public.customers.card_number"]), ["pci"]);
        assert_eq!(of(&["public.customers.id"]), Vec::<String>::new());
        assert_eq!(of(&["billing.cards.number"]), ["pci"]);
        assert_eq!(of(&["public.customers.name", "hr.staff.ssn"]), ["pii"]);
        assert_eq!(of(&["other.customers.card_number"]), Vec::<String>::new());
        // As written (no catalog): no schema, `*`, an unplaced column.
        assert_eq!(of(&["customers.card_number"]), ["pci"]);
        assert_eq!(of(&["customers.*"]), ["pci", "pii"]);
        assert_eq!(of(&["?.card_number"]), ["pci"]);
        assert_eq!(of(&["?.id"]), Vec::<String>::new());
    }

    #[test]
    fn glob_matches_wildcards() {
        assert!(glob("*", "x"));
        assert!(glob("card*", "card_number"));
        assert!(glob("*number", "card_number"));
        assert!(glob("c*_n*r", "card_number"));
        assert!(!glob("card*", "number"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        let mut c = LabelsConfig::new();
        c.insert("pci".into(), vec!["card_number".into()]);
        assert!(Labels::new(&c).is_err());
    }
}
