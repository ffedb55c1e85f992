//! What `cdc setup` found: each check, the SQL that fixes it or what a
//! person must do, and why setup could not finish.

use super::super::replication::wire::quote_ident;
use super::super::replication::ReplicationError;

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub fix: Fix,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// In place.
    Ready,
    /// Missing; this SQL adds it (`--apply` runs it).
    Apply(String),
    /// Missing, and pgtrail cannot add it: what a person must do.
    Manual(String),
    /// In place but risky: advice, not required.
    Advice(String),
}

/// Every finding, in the order they are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub findings: Vec<Finding>,
}

impl Plan {
    /// The SQL that `--apply` runs, in order.
    pub fn sql(&self) -> impl Iterator<Item = &str> {
        self.findings.iter().filter_map(|f| match &f.fix {
            Fix::Apply(sql) => Some(sql.as_str()),
            _ => None,
        })
    }

    /// Whether nothing is missing (advice aside).
    pub fn is_ready(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f.fix, Fix::Ready | Fix::Advice(_)))
    }

    /// Whether a person must act before `--apply` can finish.
    pub fn needs_a_person(&self) -> bool {
        self.findings
            .iter()
            .any(|f| matches!(f.fix, Fix::Manual(_)))
    }

    /// The plan as an SQL script with comments, for `--print`.
    pub fn script(&self, cdc: &crate::config::CdcConfig) -> String {
        let mut out = format!(
            "-- pgtrail cdc setup: database {}, slot {}, publication {}, role {}\n",
            quote_ident(&cdc.database),
            quote_ident(&cdc.slot),
            quote_ident(&cdc.publication),
            quote_ident(&cdc.user)
        );
        for f in &self.findings {
            match &f.fix {
                Fix::Ready => out.push_str(&format!("-- ok: {}\n", f.what)),
                Fix::Apply(sql) => out.push_str(&format!("-- missing: {}\n{sql};\n", f.what)),
                Fix::Manual(why) => {
                    out.push_str(&format!("-- NEEDS A PERSON: {}: {why}\n", f.what))
                }
                Fix::Advice(why) => out.push_str(&format!("-- advice: {}: {why}\n", f.what)),
            }
        }
        out
    }
}

/// Why setup could not run at all.
#[derive(Debug)]
pub enum SetupError {
    /// The replication connection was refused or failed; `hint` says what
    /// to change for the refusals a person can fix.
    Connect {
        source: ReplicationError,
        hint: Option<String>,
    },
    Query(ReplicationError),
    /// `--apply` ran and something is still missing.
    Incomplete(Plan),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Connect { source, hint } => {
                write!(f, "replication connection: {source}")?;
                match hint {
                    Some(h) => write!(f, " ({h})"),
                    None => Ok(()),
                }
            }
            SetupError::Query(e) => write!(f, "setup query: {e}"),
            SetupError::Incomplete(plan) => {
                let left: Vec<&str> = plan
                    .findings
                    .iter()
                    .filter(|x| !matches!(x.fix, Fix::Ready | Fix::Advice(_)))
                    .map(|x| x.what.as_str())
                    .collect();
                write!(f, "still missing after apply: {}", left.join("; "))
            }
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Connect { source, .. } | SetupError::Query(source) => Some(source),
            SetupError::Incomplete(_) => None,
        }
    }
}
